"""The training order: reshuffled every epoch, the same for the same seed, another for another
seed; seen through the batches a real fit receives, so a sampler Lightning never advanced would
fail here."""

from __future__ import annotations

import pytorch_lightning as pl

from surrogate.training.run import build
from tests.app.helpers import compose_config

ARGS = ["op=ste", "trainer.max_epochs=3", "trainer.limit_train_batches=2", "logger=none",
        "trainer.limit_val_batches=1", "callbacks.progress_refresh_rate=0",
        "trainer.enable_model_summary=false"]  # fmt: skip


class FirstBatches(pl.Callback):
    def __init__(self):
        self.labels: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.labels.append(batch[1].tolist())


def first_batches(tmp_path, seed: int) -> list[list[int]]:
    out = tmp_path / f"seed{seed}_{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    config = compose_config([*ARGS, f"seed={seed}"], out)
    pl.seed_everything(seed, verbose=False)
    data, module, trainer, _ = build(config, out)
    recorder = FirstBatches()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=data)
    return recorder.labels


def test_each_epoch_is_reshuffled_and_the_order_repeats_for_the_same_seed(tmp_path):
    first = first_batches(tmp_path, seed=0)
    assert len(first) == 3
    assert len({tuple(labels) for labels in first}) == 3  # every epoch its own order
    assert first_batches(tmp_path, seed=0) == first  # the same seed, the same orders
    assert first_batches(tmp_path, seed=1) != first  # another seed, other orders

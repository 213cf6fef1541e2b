"""The training order: reshuffled every epoch, the same for the same seed, another for another
seed; seen through the batches a real fit receives, so a sampler Lightning never advanced would
fail here."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from surrogate.training.data.datamodule import DataModule


class FirstBatches(pl.LightningModule):
    """A linear model that records the labels of each epoch's first training batch."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.labels: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        if batch_idx == 0:
            self.labels.append(y.tolist())
        return nn.functional.cross_entropy(self.linear(x.flatten(1)), y)

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def first_batches(tmp_path, seed: int) -> list[list[int]]:
    data = DataModule("digits", batch_size=64, shuffle_seed=seed)
    module = FirstBatches()
    trainer = pl.Trainer(
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    return module.labels


def test_each_epoch_is_reshuffled_and_the_order_repeats_for_the_same_seed(tmp_path):
    first = first_batches(tmp_path, seed=0)
    assert len(first) == 3
    assert len({tuple(labels) for labels in first}) == 3  # every epoch its own order
    assert first_batches(tmp_path, seed=0) == first  # the same seed, the same orders
    assert first_batches(tmp_path, seed=1) != first  # another seed, other orders

"""Resume loses nothing: a run killed after its best validation and resumed from ``last.ckpt``,
into its own folder or a new one, ends with the metrics of the same run never stopped, and the
test accuracy is the best checkpoint's, not the last one's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from surrogate.training.data.datamodule import load_splits
from surrogate.training.module import HardOpModule
from surrogate.training.run import run
from tests.app.helpers import ROOT, compose_config, train_cli

# Digits with a learning rate too high to keep improving: its best validation comes before its
# last epoch (checked below, so the test cannot pass by a run whose best is its end). Gumbel on the
# bottleneck: the noise it draws must continue as if the run had never stopped.
ARGS = [
    "op=atan",
    "op.argmax.name=gumbel",
    "model.optimizer.lr=0.2",
    "model.scheduler.name=none",
    "model.channels=[8,16]",
    "data.batch_size=16",
    "data.train_subset=400",
    "trainer.max_epochs=8",
    "callbacks.progress_refresh_rate=0",
    "trainer.enable_model_summary=false",
]
COMPARED = ("test_acc", "best_val_acc", "epochs", "steps", "val_acc", "train_loss", "val_steps",
            "val_epochs", "diagnostics")  # fmt: skip

# Runs ARGS in a child process that kills itself (SIGKILL, no clean-up) when the epoch after
# validation number KILL_AFTER starts, i.e. after that validation's checkpoints are written.
KILLED_RUN = """
import os, signal, sys
import pytorch_lightning as pl
import surrogate.training.run as run_module
from tests.app.helpers import compose_config

kill_after, out, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]

class Kill(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == kill_after + 1:
            os.kill(os.getpid(), signal.SIGKILL)

build = run_module.build
def build_with_kill(config, output_dir, ops=None):
    data, module, trainer, best = build(config, output_dir, ops)
    trainer.callbacks.append(Kill())
    return data, module, trainer, best
run_module.build = build_with_kill
run_module.run(compose_config(args, out), out, "atan")
"""


def _kill_after(validation: int, out) -> None:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(validation), str(out), *ARGS],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert not (out / "metrics.json").exists()


def _test_accuracy(checkpoint, splits) -> float:
    model = HardOpModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    x, y = splits["test"].tensors
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The run never stopped, and the index of its best validation."""
    out = tmp_path_factory.mktemp("straight")
    metrics = run(compose_config(ARGS, out), out, "atan")
    best = max(range(len(metrics["val_acc"])), key=metrics["val_acc"].__getitem__)
    assert best < len(metrics["val_acc"]) - 1, metrics["val_acc"]  # its best is not its end
    return out, metrics, best


@pytest.mark.slow
def test_the_best_checkpoint_is_tested_not_the_last(straight):
    out, metrics, _ = straight
    config = compose_config(ARGS, out)
    data = config["data"]
    splits = load_splits(data["name"], data["root"], data["val_fraction"], data["test_fraction"],
                         data["split_seed"], data["train_subset"])  # fmt: skip
    best = _test_accuracy(out / "checkpoints" / "best.ckpt", splits)
    last = _test_accuracy(out / "checkpoints" / "last.ckpt", splits)
    assert best != last  # the run can tell them apart
    assert metrics["test_acc"] == pytest.approx(best, abs=1e-6)


@pytest.mark.slow
def test_last_checkpoint_is_the_latest_validation_even_when_it_is_not_the_best(straight):
    out, metrics, best = straight
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] + 1 == metrics["epochs"]
    assert torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == best


@pytest.mark.slow
@pytest.mark.parametrize("where", ["same folder", "new folder from the command line"])
def test_killed_after_its_best_and_resumed_ends_like_the_run_never_stopped(
    straight, tmp_path, where
):
    _, expected, best = straight
    killed = tmp_path / "killed"
    _kill_after(best, killed)
    last = killed / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == best  # saved right after the best
    if where == "same folder":
        config = compose_config(ARGS, killed)
        config["ckpt_path"] = str(last)
        resumed = run(config, killed, "atan")
    else:
        result = train_cli(*ARGS, f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'new'}",
                           cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        resumed = json.loads((tmp_path / "new" / "metrics.json").read_text())
    assert {k: resumed[k] for k in COMPARED} == {k: expected[k] for k in COMPARED}
    if where != "same folder":
        assert "dirpath has changed" not in result.stderr

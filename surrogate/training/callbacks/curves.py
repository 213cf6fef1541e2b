"""The learning curves of a run, recorded at every validation and kept across a resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from surrogate.training.atomic import write_json_atomic
from surrogate.training.module import RunningMean


class CurveRecorder(pl.Callback):
    """At every validation: the task's validation metric (``val_<metric>``: ``val_acc``), the
    mean training loss per step since the previous one, the step, the epoch (fractional when
    validating mid-epoch) and the training seconds so far.

    Recorded when validation ends, before the checkpoint callbacks save, so the state saved in a
    checkpoint includes its own epoch and a resumed run continues its curves. Rank 0 also writes
    the state to ``path`` after every validation, and with the epoch and step counts when training
    ends, so the launching process can read it back (also after ``ddp_spawn``).
    """

    def __init__(self, path: str | Path, metric: str = "acc"):
        self.path, self.metric = Path(path), metric
        self.names = (f"val_{metric}", "train_loss", "val_steps", "val_epochs", "val_seconds")
        self.curves: dict[str, list[float]] = {name: [] for name in self.names}
        self.wall_seconds = 0.0
        self.loss = RunningMean()
        self._since = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._since = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.loss.add(outputs["loss"])

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        now = time.perf_counter()
        self.wall_seconds += now - self._since
        self._since = now
        point = {
            f"val_{self.metric}": float(trainer.callback_metrics[f"val/{self.metric}"]),
            "train_loss": self.loss.item(),
            "val_steps": trainer.global_step,
            "val_epochs": round(trainer.current_epoch + self._epoch_fraction(trainer), 4),
            "val_seconds": round(self.wall_seconds, 3),
        }
        for name, value in point.items():
            self.curves[name].append(value)
        self.loss.reset()
        if trainer.is_global_zero:
            write_json_atomic(self.path, self.state_dict())

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            done = {"epochs": trainer.current_epoch, "steps": trainer.global_step}
            write_json_atomic(self.path, self.state_dict() | done)

    @staticmethod
    def _epoch_fraction(trainer: pl.Trainer) -> float:
        """How much of the current epoch has been trained when validation runs."""
        done = trainer.fit_loop.epoch_loop.batch_idx + 1
        return min(1.0, done / max(1, trainer.num_training_batches))

    def state_dict(self) -> dict[str, Any]:
        return {**self.curves, "wall_seconds": self.wall_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.curves = {name: list(state[name]) for name in self.names}
        self.wall_seconds = float(state["wall_seconds"])

"""``ValidationRecorder``: the base of the callbacks that measure something at every validation.

A subclass's ``measure(trainer, pl_module)`` returns ``{name: value}`` (``{}``: nothing this time,
None: nothing at all). At each validation of a fit the recorder keeps the values as curves, one
entry per validation (``None`` where a name has no value that time), logs them to every logger as
``<prefix>/<name>``, and rank 0 writes ``{**describe(pl_module), "curves": ...}`` to ``path``. The
values travel in checkpoints, so a resumed run continues its curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from surrogate.training.atomic import write_json_atomic


class ValidationRecorder(pl.Callback):
    """See the module docstring."""

    prefix = ""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.points: list[dict[str, float]] = []

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict | None:
        raise NotImplementedError

    def describe(self, pl_module: pl.LightningModule) -> dict[str, Any]:
        """What the file holds beside the curves."""
        return {}

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        values = self.measure(trainer, pl_module)
        if values is None:
            return
        self.points.append(values)
        logged = {f"{self.prefix}/{name}": value for name, value in values.items()}
        for logger in trainer.loggers if logged else ():
            logger.log_metrics(logged, trainer.global_step)
        if trainer.is_global_zero:
            write_json_atomic(self.path, {**self.describe(pl_module), "curves": self.curves()})

    def curves(self) -> dict[str, list[float | None]]:
        """Each name's value at every validation so far (None where it had none)."""
        names = list(dict.fromkeys(name for point in self.points for name in point))
        return {name: [point.get(name) for point in self.points] for name in names}

    def state_dict(self) -> dict[str, Any]:
        return {"points": self.points}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.points = [dict(point) for point in state["points"]]

"""``DiagnosticsRecorder``: the hard-op diagnostics (``diagnostics.measure``) at every validation.

The probe is the first ``probe_size`` images of the validation set, fixed for the whole run. At
each validation of a fit the recorder measures the LightningModule on it, logs the values to every
logger as ``diag/<layer>/<metric>`` (``diag/sign1/dead_fraction``, ``diag/network/grad_cosine``),
and keeps them as curves, one value per validation (``None`` where a value is not defined: the
first flip ratio). Rank 0 writes the curves to ``path`` after each validation. The curves and the
previous decisions travel in checkpoints, so a resumed run continues both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from surrogate.training.atomic import write_json_atomic
from surrogate.training.diagnostics import hard_layers, measure


class DiagnosticsRecorder(pl.Callback):
    """See the module docstring."""

    def __init__(self, path: str | Path, probe_size: int = 64):
        self.path = Path(path)
        self.probe_size = int(probe_size)
        self.points: list[dict[str, float]] = []
        self.previous: dict[str, torch.Tensor] | None = None
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        xs, ys, count = [], [], 0
        for x, y in trainer.datamodule.val_dataloader():
            xs.append(x), ys.append(y)
            count += len(y)
            if count >= self.probe_size:
                break
        x, y = torch.cat(xs)[: self.probe_size], torch.cat(ys)[: self.probe_size]
        self._probe = (x.to(pl_module.device), y.to(pl_module.device))

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit" or self._probe is None:
            return
        with torch.inference_mode(False):
            values, self.previous = measure(pl_module, *self._probe, previous=self.previous)
        self.previous = {name: d.cpu() for name, d in self.previous.items()}
        self.points.append(values)
        for logger in trainer.loggers:
            logger.log_metrics({f"diag/{k}": v for k, v in values.items()}, trainer.global_step)
        if trainer.is_global_zero:
            layers = {layer.name: layer.path for layer in hard_layers(pl_module)}
            write_json_atomic(self.path, {"layers": layers, "curves": self.curves()})

    def curves(self) -> dict[str, list[float | None]]:
        """Each diagnostic's value at every validation so far (None where not defined)."""
        names = list(dict.fromkeys(name for point in self.points for name in point))
        return {name: [point.get(name) for point in self.points] for name in names}

    def state_dict(self) -> dict[str, Any]:
        return {"points": self.points, "previous": self.previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.points = [dict(point) for point in state["points"]]
        self.previous = state["previous"]

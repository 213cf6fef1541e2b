"""``DiagnosticsRecorder``: the hard-op diagnostics (``diagnostics.measure``) at every validation.

The probe is the first ``probe_size`` images of the validation set, fixed for the whole run; the
measurement runs at the first validation and every ``every``-th after it (the others record
``None``, so the curves keep one entry per validation, and a flip ratio compares two measurements).
The values are logged as ``diag/<layer>/<metric>`` (``diag/features.3/dead_fraction``,
``diag/network/grad_cosine``), a layer named by its path in the LightningModule's ``net``, and
kept as curves (``None`` for the first flip ratio, which is not defined); the previous decisions
travel in checkpoints with the curves, so a resumed run continues both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from surrogate.training.callbacks.diagnostics import hard_layers, measure
from surrogate.training.callbacks.recorder import ValidationRecorder


def _loss(pl_module):
    """The loss the LightningModule trains on (its task's), or cross-entropy."""
    task = getattr(pl_module, "task", None)
    return task.loss if task is not None else F.cross_entropy


def _net(pl_module):
    """The network the LightningModule runs (its ``net``), or the module itself."""
    return getattr(pl_module, "net", pl_module)


class DiagnosticsRecorder(ValidationRecorder):
    """See the module docstring."""

    prefix = "diag"

    def __init__(self, path: str | Path, probe_size: int = 32, every: int = 1):
        super().__init__(path)
        self.probe_size, self.every = int(probe_size), int(every)
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

    def measure(self, trainer, pl_module) -> dict[str, float] | None:
        if self._probe is None:
            return None
        if len(self.points) % self.every:
            return {}
        with torch.inference_mode(False):
            values, decisions = measure(
                _net(pl_module), *self._probe, previous=self.previous, loss=_loss(pl_module)
            )
        self.previous = {name: d.cpu() for name, d in decisions.items()}
        return values

    def describe(self, pl_module) -> dict[str, Any]:
        return {
            "layers": {layer.name: layer.module.op_name for layer in hard_layers(_net(pl_module))}
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "previous": self.previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.previous = state["previous"]

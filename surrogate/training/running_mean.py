"""A weighted running mean of a loss kept on the loss's device: adding a step costs no host sync."""

from __future__ import annotations

import torch


class RunningMean:
    """Sum of ``value * weight`` and of ``weight`` since the last ``reset``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.weight = 0

    def add(self, value: torch.Tensor, weight: int = 1) -> None:
        """Add a detached ``value`` with ``weight`` (e.g. a batch's mean loss and its size)."""
        value = value.detach()
        self.total = self.total + (value if weight == 1 else value * weight)
        self.weight += weight

    def mean(self) -> torch.Tensor | float:
        """The weighted mean, on the loss's device (0.0 when nothing was added)."""
        return self.total / max(1, self.weight)

    def item(self) -> float:
        """The weighted mean as a Python float, divided in double precision (a host sync)."""
        return float(self.total) / max(1, self.weight)

"""The optimizer and learning-rate schedule of the config node ``model``.

``model.optimizer`` is ``{name, lr, weight_decay, momentum}`` (``momentum`` for SGD only) and
``model.scheduler`` is ``{name}``: ``cosine`` anneals the rate to 0 over ``trainer.max_epochs``
(stepped once per epoch), ``none`` keeps it.
"""

from __future__ import annotations

from typing import Any

import torch

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("cosine", "none")


def check_optimization(optimizer: dict[str, Any], scheduler: dict[str, Any]) -> None:
    """Refuse an unknown optimizer or schedule, or a learning rate that is not > 0."""
    if optimizer["name"] not in OPTIMIZERS:
        raise ValueError(
            f"model.optimizer.name: unknown {optimizer['name']!r}; choose one of: "
            f"{', '.join(OPTIMIZERS)}"
        )
    if scheduler["name"] not in SCHEDULERS:
        raise ValueError(
            f"model.scheduler.name: unknown {scheduler['name']!r}; choose one of: "
            f"{', '.join(SCHEDULERS)}"
        )
    if not optimizer["lr"] > 0:
        raise ValueError(f"model.optimizer.lr must be > 0, got {optimizer['lr']!r}")


def build_optimizer(params, optimizer: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer that ``optimizer`` names, over ``params``."""
    opt = dict(optimizer)
    cls = OPTIMIZERS[opt.pop("name")]
    if cls is not torch.optim.SGD:
        opt.pop("momentum", None)
    return cls(params, **opt)


def build_scheduler(
    optimizer: torch.optim.Optimizer, scheduler: dict[str, Any], max_epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch schedule that ``scheduler`` names, or None for ``none``."""
    if scheduler["name"] == "none":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))

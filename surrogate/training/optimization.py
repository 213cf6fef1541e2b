"""The optimizer and learning-rate schedule of the config node ``model``.

``model.optimizer`` is ``{name, lr, weight_decay, momentum, gamma, threshold}`` (``momentum`` for
SGD only, ``gamma`` and ``threshold`` for Bop only) and ``model.scheduler`` is ``{name}``:
``cosine`` anneals the rate to 0 over ``trainer.max_epochs`` (stepped once per epoch), ``none``
keeps it. ``bop`` trains the network's binary weights (``surrogate.binary_weights``) with
``surrogate.Bop`` and every other parameter with Adam (``lr``, ``weight_decay``), as larq's
``CaseOptimizer(Bop, Adam)``; the schedule decays Adam's rate and Bop's γ alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from surrogate import Bop, binary_weights

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
NAMES = (*OPTIMIZERS, "bop")
SCHEDULERS = ("cosine", "none")
OWN_KEYS = {"sgd": ("momentum",), "bop": ("gamma", "threshold")}  # keys only these read


def check_optimization(optimizer: dict[str, Any], scheduler: dict[str, Any]) -> None:
    """Refuse an unknown optimizer or schedule, or a learning rate that is not > 0."""
    if optimizer["name"] not in NAMES:
        raise ValueError(
            f"model.optimizer.name: unknown {optimizer['name']!r}; choose one of: "
            f"{', '.join(NAMES)}"
        )
    if scheduler["name"] not in SCHEDULERS:
        raise ValueError(
            f"model.scheduler.name: unknown {scheduler['name']!r}; choose one of: "
            f"{', '.join(SCHEDULERS)}"
        )
    if not optimizer["lr"] > 0:
        raise ValueError(f"model.optimizer.lr must be > 0, got {optimizer['lr']!r}")


def _arguments(optimizer: dict[str, Any], name: str) -> dict[str, Any]:
    """The config's keys that ``name``'s optimizer takes."""
    others = {key for owner, keys in OWN_KEYS.items() if owner != name for key in keys}
    return {k: v for k, v in optimizer.items() if k != "name" and k not in others}


def check_fits(net: nn.Module, optimizer: dict[str, Any]) -> None:
    """Refuse ``bop`` for a network without binary weights."""
    if optimizer["name"] == "bop" and not binary_weights(net):
        raise ValueError(
            f"model.optimizer.name 'bop' trains binary weights, and {type(net).__name__} has "
            "none (no surrogate.BinaryLinear or BinaryConv2d); choose one of: "
            f"{', '.join(OPTIMIZERS)}"
        )


def build_optimizer(net: nn.Module, optimizer: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer that ``optimizer`` names, over ``net``'s parameters."""
    name = optimizer["name"]
    if name != "bop":
        return OPTIMIZERS[name](net.parameters(), **_arguments(optimizer, name))
    check_fits(net, optimizer)
    binary = binary_weights(net)
    ids = {id(p) for p in binary}
    rest = [p for p in net.parameters() if id(p) not in ids]
    adam = _arguments(optimizer, "adam")
    return Combined(
        Bop(binary, gamma=optimizer["gamma"], threshold=optimizer["threshold"]),
        torch.optim.Adam(rest, **adam),
    )


class Combined(torch.optim.Optimizer):
    """Several optimizers over disjoint parameters, stepped as one (larq's ``CaseOptimizer``).

    Its ``param_groups`` are theirs (the same dicts: a learning-rate schedule reaches each), its
    state dict holds each one's."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers
        super().__init__([group for opt in optimizers for group in opt.param_groups], {})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["optimizers"], strict=True):
            optimizer.load_state_dict(state)


def build_scheduler(
    optimizer: torch.optim.Optimizer, scheduler: dict[str, Any], max_epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch schedule that ``scheduler`` names, or None for ``none``."""
    if scheduler["name"] == "none":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))

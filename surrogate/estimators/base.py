"""The estimator registry: one frozen dataclass per estimator, one entry per name.

An estimator decides what a hard op saves in its forward and what gradient its backward returns.
Parameters are dataclass fields declared with :func:`param`, which records the valid range; the
range is checked once, when the estimator is built, so a bad value fails before any work is done.
Adding an estimator is one small subclass decorated with :func:`register`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

SCALAR_OPS = frozenset({"step", "sign", "round"})
ARGMAX_OPS = frozenset({"argmax"})
OPS = ("step", "sign", "round", "argmax")

_REGISTRY: dict[str, type[Estimator]] = {}


def param(default: float, *, above: float = 0.0, at_least: bool = False, integer: bool = False):
    """A validated estimator parameter: a finite real ``> above`` (``>= above`` if ``at_least``)."""
    return dataclasses.field(
        default=default, metadata={"above": above, "at_least": at_least, "integer": integer}
    )


def _valid_range(meta: Mapping[str, Any]) -> str:
    kind = "an integer" if meta["integer"] else "a finite number"
    return f"{kind} {'>=' if meta['at_least'] else '>'} {meta['above']:g}"


def _check_param(owner: str, name: str, value: Any, meta: Mapping[str, Any]) -> float | int:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value_f = float(value)
        ok = math.isfinite(value_f) and (not meta["integer"] or value_f.is_integer())
        bound = meta["above"]
        ok = ok and (value_f >= bound if meta["at_least"] else value_f > bound)
    if not ok:
        raise ValueError(f"{owner}: {name} must be {_valid_range(meta)}, got {value!r}")
    return int(value_f) if meta["integer"] else value_f


@dataclasses.dataclass(frozen=True)
class Estimator:
    """Base of every estimator. Subclasses set ``name`` and ``ops`` and implement ``grad``.

    The hard op calls ``forward(op, x, relaxed)``, which returns its output and the tensors to save;
    its backward calls ``grad(op, g, *saved)``. ``op`` is the op's spec (see ``surrogate.hardops``).

    What an estimator can do is declared on its class:

    - ``relaxable``: it has a smooth forward (``op.relax``), so ``relaxed=True`` is allowed;
    - ``fusable``: ``surrogate.fused`` may compile its formulas into one kernel (a user's own
      function may not trace, so a custom bump is not);
    - ``stochastic``: its training forward draws a sample (``gumbel``, ``reinmax``); in eval it is
      the plain hard forward.
    """

    name: ClassVar[str]
    ops: ClassVar[frozenset[str]]
    relaxable: ClassVar[bool] = False
    fusable: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False
    param_names: ClassVar[tuple[str, ...]] = ()  # set by `register`

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.metadata:
                value = _check_param(self.name, f.name, getattr(self, f.name), f.metadata)
                object.__setattr__(self, f.name, value)

    def forward(self, op, x: torch.Tensor, relaxed: bool):
        out = op.relax(x, self) if relaxed else op.hard(x)
        return out, self.save(op, x)

    def save(self, op, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,)

    def grad(self, op, g: torch.Tensor, *saved: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
        return f"estimator({self.name!r}{', ' if args else ''}{args})"


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make ``cls`` available by its ``name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"an estimator named {cls.name!r} is already registered")
    cls.param_names = tuple(f.name for f in dataclasses.fields(cls))
    _REGISTRY[cls.name] = cls
    return cls


# Every registered estimator class by name, in registration order (read-only).
REGISTRY: Mapping[str, type[Estimator]] = types.MappingProxyType(_REGISTRY)

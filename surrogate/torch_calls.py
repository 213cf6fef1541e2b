"""Plain torch calls as a ``TorchFunctionMode`` sees them, for ``surrogate.intercept`` and
``surrogate.audit``: the calls that carry a tensor's values unchanged (shape ops and casts), the
arguments of a call, and the switch that lets a mode compute an exact forward untouched.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

import torch

Tensor = torch.Tensor
_state = threading.local()


def methods(*names: str) -> tuple:
    """``torch.<name>`` and ``torch.Tensor.<name>`` for each name that exists."""
    return tuple(getattr(owner, n) for n in names for owner in (torch, Tensor) if hasattr(owner, n))


# Calls that move or copy an integer tensor's values without changing them, and casts.
SHAPE_OPS = frozenset(
    methods(
        "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose",
        "t", "movedim", "moveaxis", "unsqueeze", "squeeze", "contiguous", "clone", "expand",
        "expand_as", "narrow", "select", "flip", "roll", "repeat", "__getitem__",
    )
    + tuple(getattr(Tensor, n).__get__ for n in ("T", "mT", "H", "mH"))  # x.T and friends
)  # fmt: skip
CASTS = frozenset(
    methods(
        "to", "type", "type_as", "float", "double", "half", "bfloat16", "long", "int", "short",
        "char", "byte", "bool", "cpu", "cuda",
    )
)  # fmt: skip


def bypassed() -> bool:
    """Whether a mode is computing an exact forward, which every mode leaves alone."""
    return getattr(_state, "depth", 0) > 0


@contextmanager
def bypass():
    """Within this block the modes of ``surrogate`` pass every call through unchanged."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def first_arg(args: tuple, kwargs: dict, name: str = "input") -> Any:
    """A call's first argument, given by position or as ``name``."""
    return args[0] if args else kwargs.get(name)


def is_real(x: Any) -> bool:
    """Whether ``x`` is a floating-point tensor."""
    return isinstance(x, Tensor) and x.is_floating_point()

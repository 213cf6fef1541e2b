"""Plain torch calls as a ``TorchFunctionMode`` sees them, for ``surrogate.intercept`` and
``surrogate.audit``: the calls that carry a tensor's values unchanged (shape ops and casts), the
comparisons and the calls that turn a mask or an index into numbers, the arguments of a call, and
the switch that lets a mode compute an exact forward untouched.
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

# x > t, x >= t (+1: the step of x − t) and x < t, x <= t (−1: the step of t − x); the operators
# (also the reflected ``0 < x``, which Python runs as ``x > 0``) dispatch as the methods.
INEQUALITIES = {
    **dict.fromkeys(methods("gt", "ge", "greater", "greater_equal", "__gt__", "__ge__"), 1),
    **dict.fromkeys(methods("lt", "le", "less", "less_equal", "__lt__", "__le__"), -1),
}
# Elementwise arithmetic whose result a mask's or one-hot's values enter by type promotion.
ARITHMETIC = frozenset(
    methods(
        "add", "sub", "subtract", "rsub", "mul", "multiply", "div", "divide", "true_divide",
        "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
        "__rtruediv__", "__div__", "__rdiv__",
    )
)  # fmt: skip
WHERE = (torch.where, Tensor.where)
MASKED_FILL = frozenset(methods("masked_fill"))
PUTS = frozenset(methods("index_put", "index_put_") + (Tensor.__setitem__,))
SCATTERS = frozenset(methods("scatter", "scatter_"))
LOOKUPS = frozenset((torch.nn.functional.embedding,) + methods("index_select"))
GATHERS = frozenset(methods("gather"))
TAKE_ALONG = frozenset(methods("take_along_dim"))


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


def arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    """A call's argument ``i``, given by position or as ``name``."""
    return args[i] if len(args) > i else kwargs.get(name, default)


def reduction_dim(args: tuple, kwargs: dict):
    """The ``dim`` of a reduction call, given second, as ``dim``, or as numpy's ``axis``
    (``torch.argmax(x, axis=-1)``); None if absent."""
    return args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis"))


def broadcasts_to(v: Any, shape: torch.Size) -> bool:
    """Whether ``v`` (a Python number or a tensor) broadcasts to ``shape`` as it is."""
    if not isinstance(v, Tensor):
        return isinstance(v, (int, float))
    try:
        return torch.broadcast_shapes(v.shape, shape) == shape
    except RuntimeError:
        return False


def constant_like(value: Any, like: Tensor) -> Tensor:
    """``value`` (a number or a tensor) as a tensor without gradient, in like's dtype and device."""
    if isinstance(value, Tensor):
        return value.detach().to(like.dtype)
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def is_real(x: Any) -> bool:
    """Whether ``x`` is a floating-point tensor."""
    return isinstance(x, Tensor) and x.is_floating_point()

"""How ``surrogate.audit`` reads a torch call: which calls are hard ops, where their boolean masks
and integer indices go, and the straight-through link both of its modes share.

A hard op has one of three kinds:

* ``zero``: a float result whose derivative PyTorch gives as 0 (``torch.sign``, ``round``, ...);
* ``mask``: a comparison (``x > t``, ``torch.gt``, ``x.le(t)``); its boolean result has no graph;
* ``index``: the index of ``argmax``, ``argmin``, ``max(dim)``, ``min(dim)`` or ``topk``.

A mask or index is followed through every call that takes it. A call's result (for an in-place
call such as ``out[mask] = 1.0``, ``masked_fill_`` or ``scatter_``, the tensor it writes) is its
fate (``fate``): an integer or boolean result is followed further; a float result made of the
mask alone (``mask.float()``, ``mask * 1.0``, ``torch.where(mask, 1.0, 0.0)``,
``zeros.masked_fill(mask, 1.0)``, ``out[mask] = 1.0``) is a hard step; a float result that
carries a gradient from other operands (``torch.where(x > 0, x, 0.1 * x)``) is a mask, no hard op.
Every float result of an index (``one_hot(i).float()``, ``zeros.scatter_(1, i, 1)``,
``codebook[i]``, ``F.embedding(i, codebook)``) is a hard op: the argmax's input gets no gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from surrogate.torch_calls import arg, first_arg, reduction_dim

Tensor = torch.Tensor

ZERO_OPS = ("sign", "sgn", "round", "floor", "ceil", "trunc", "fix", "heaviside")
COMPARISONS = ("gt", "ge", "lt", "le", "eq", "ne")
INDEX_OPS = ("argmax", "argmin", "max", "min", "topk")
# a > b is b < a: the op a reflected comparison was written as.
REFLECTED = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge", "eq": "eq", "ne": "ne"}
ALIASES = {"greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le",
           "not_equal": "ne"}  # fmt: skip


def _owned(names, suffix: str = "") -> dict:
    return {
        getattr(owner, n + suffix): n
        for n in names
        for owner in (torch, Tensor)
        if hasattr(owner, n + suffix)
    }


ZERO = {**_owned(ZERO_OPS), **{getattr(Tensor, f"{n}_"): n for n in ZERO_OPS
                               if hasattr(Tensor, f"{n}_")}}  # fmt: skip
# What ``a > b`` dispatches: ``Tensor.gt`` (older torch: ``Tensor.__gt__``).
OPERATORS = {getattr(Tensor, f"__{n}__"): n for n in COMPARISONS}
OPERATORS.update({getattr(Tensor, n): n for n in COMPARISONS})
COMPARE = {**_owned(COMPARISONS), **OPERATORS,
           **{f: ALIASES[n] for f, n in _owned(ALIASES).items()}}  # fmt: skip
INDEX = _owned(INDEX_OPS)


@dataclass
class HardCall:
    """One call of a hard op: ``op`` as written (``x > p`` is ``gt`` even where Python runs
    ``p.__lt__(x)``), its ``kind``, the grad-carrying tensors it reads, and ``source()``, the
    tensor a straight-through heal passes the gradient to: a − b for gt, ge, eq, ne; b − a for
    lt, le; x for argmax and max; −x for argmin and min; x for a zero-gradient op."""

    op: str
    kind: str
    inputs: list[Tensor]
    source: Callable[[], Tensor]


def grad_carrying(x: Any, inside_function: bool = False) -> bool:
    """A float tensor that requires grad (any float tensor inside a model's own Function)."""
    if not (isinstance(x, Tensor) and x.is_floating_point()):
        return False
    return inside_function or x.requires_grad


def recognise(func, args: tuple, kwargs: dict, inside_function: bool = False) -> HardCall | None:
    """The hard op this call is, if any of its float inputs requires grad (grad mode aside: a
    custom ``autograd.Function`` runs its forward with grad disabled). ``inside_function``: the
    call runs in the forward of the model's own Function, where every float input counts, also a
    tensor made there."""
    if func in COMPARE:
        op = COMPARE[func]
        a, b = first_arg(args, kwargs), arg(args, kwargs, 1, "other")
        # Python tries the reflected operator of a subclass first: x > p (p a Parameter) runs
        # p.__lt__(x), which torch dispatches as Tensor.lt(p, x). p < x and p.lt(x) read the
        # same; they are taken as the commoner x > p.
        if func in OPERATORS and reflected(a, b):
            op, a, b = REFLECTED[op], b, a
        inputs = [t for t in (a, b) if grad_carrying(t, inside_function)]
        if not inputs:
            return None
        if op in ("lt", "le"):
            return HardCall(op, "mask", inputs, lambda: b - a)
        return HardCall(op, "mask", inputs, lambda: a - b)
    x = first_arg(args, kwargs)
    if not grad_carrying(x, inside_function):
        return None
    if func in ZERO:
        return HardCall(ZERO[func], "zero", [x], lambda: x)
    if func in INDEX:
        op = INDEX[func]
        if op in ("max", "min") and not isinstance(reduction_dim(args, kwargs), int):
            return None  # the maximum's value, or an elementwise maximum: no index
        topk_largest = op == "topk" and bool(arg(args, kwargs, 3, "largest", True))
        largest = op in ("argmax", "max") or topk_largest
        return HardCall(op, "index", [x], (lambda: x) if largest else (lambda: -x))
    return None


def reflected(a: Any, b: Any) -> bool:
    """Whether Python ran ``a``'s reflected operator: ``a``'s type a strict subclass of ``b``'s."""
    return isinstance(b, Tensor) and type(a) is not type(b) and issubclass(type(a), type(b))


def index_of(call: HardCall, out: Any) -> Any:
    """The index an index op returned: ``out`` for argmax/argmin, ``out[1]`` for the others."""
    return out if call.op in ("argmax", "argmin") else out[1]


def tensor_args(args: tuple, kwargs: dict) -> list[Tensor]:
    """The tensors among a call's arguments, also inside lists and tuples (``out[mask, 0]``)."""
    found: list[Tensor] = []
    for value in (*args, *kwargs.values()):
        items = value if isinstance(value, (list, tuple)) else (value,)
        found.extend(t for t in items if isinstance(t, Tensor))
    return found


def in_place(func) -> bool:
    """``x.op_()``, ``x[i] = v`` and ``x *= v``: calls that write their first argument."""
    name = getattr(func, "__name__", "")
    if name.startswith("__"):
        return name == "__setitem__" or name.startswith("__i")
    return name.endswith("_")


def written(func, args: tuple, kwargs: dict, out: Any) -> Any:
    """The tensor a call produced: its first argument for an in-place call, else its result."""
    if in_place(func):
        return args[0] if args else kwargs.get("input", kwargs.get("self"))
    return out


def fate(kind: str, result: Any) -> str | None:
    """What a call that takes a mask or index made of it: ``follow`` (an integer or boolean
    tensor), ``hard`` (a float tensor the hard op decides), ``mask`` (a float tensor that carries
    the gradient of other operands, picked by the mask) or None (no tensor)."""
    if not isinstance(result, Tensor):
        return None
    if not (result.is_floating_point() or result.is_complex()):
        return "follow"
    if kind == "mask" and result.requires_grad and torch.is_grad_enabled():
        return "mask"
    return "hard"


class PassGradientTo(torch.autograd.Function):
    """Forward ``y`` unchanged; backward g to ``y`` and g to ``source``: as is where the shapes
    agree, summed onto ``source``'s shape where it broadcasts to ``y``'s, else summed over the
    dimensions after the leading ones they share and spread over ``source``'s."""

    @staticmethod
    def forward(ctx, y, source):
        ctx.shape, ctx.dtype = source.shape, source.dtype
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        return (g if ctx.needs_input_grad[0] else None), onto(g, ctx.shape).to(ctx.dtype)


def onto(g: Tensor, shape: torch.Size) -> Tensor:
    """``g`` reduced onto ``shape`` (see ``PassGradientTo``)."""
    if g.shape == shape:
        return g
    try:
        if torch.broadcast_shapes(shape, g.shape) == g.shape:
            return g.sum_to_size(shape)
    except RuntimeError:
        pass
    lead = 0
    while lead < min(g.dim(), len(shape)) and g.shape[lead] == shape[lead]:
        lead += 1
    summed = g.sum(dim=tuple(range(lead, g.dim()))) if g.dim() > lead else g
    return summed.reshape(*shape[:lead], *([1] * (len(shape) - lead))).expand(shape)


def pass_gradient_to(y: Tensor, source: Tensor) -> Tensor:
    """``y``'s values with the gradient passed straight on to ``source`` (``PassGradientTo``)."""
    return PassGradientTo.apply(y, source)

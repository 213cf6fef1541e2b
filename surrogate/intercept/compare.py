"""Comparisons as steps, for ``surrogate.intercept(step=...)``.

``x > t`` is PyTorch's boolean mask, remembered as the step s = step(x − t) (``x < t``: step(t − x))
with PyTorch's values and the step estimator's backward. Where the mask's values become numbers,
s joins the gradient: a cast (``Intercept.follow``), arithmetic that promotes it (``mask * 1.0``,
``mask * x``), or a result that it selects between two values:

    torch.where(mask, a, b)   = b + s·(a − b)      ∂/∂s = a − b
    y.masked_fill(mask, v)    = y + s·(v − y)      ∂/∂s = v − y
    y[mask] = v (index_put_)  = y + s·(v − y)      ∂/∂s = v − y

so ∂out/∂x = (a − b)·p(x − t) on top of PyTorch's gradient to a, b, y and v. A mask or one-hot of
argmax (``Intercept.values``) joins the same way.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
from torch.utils.weak import WeakTensorKeyDictionary

from surrogate.hardops import STEP
from surrogate.intercept.functions import SurrogateFunction, attach_jump
from surrogate.op_estimators import OpEstimator
from surrogate.torch_calls import (
    INEQUALITIES,
    arg,
    broadcasts_to,
    constant_like,
    first_arg,
    is_real,
)

Tensor = torch.Tensor


def _number(x) -> bool:
    """A real number or a real (not bool, not complex) tensor: a side of a comparison."""
    if isinstance(x, Tensor):
        return x.dtype != torch.bool and not x.is_complex()
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


class CompareHandlers:
    """The handlers of comparisons and of the calls that make numbers of a followed mask; mixed
    into ``Intercept``, whose ``values`` maps a mask to make(dtype), its differentiable values."""

    # Set by ``Intercept``.
    ops: dict[str, OpEstimator]
    values: WeakTensorKeyDictionary  # mask or integer one-hot -> make(dtype)
    changes_forward: Callable[[], bool]

    def compare(self, func, args, kwargs):
        """``a > b`` and friends: PyTorch's mask, followed as step(±(a − b)) where a or b
        requires grad."""
        out = func(*args, **kwargs)
        a, b = first_arg(args, kwargs), arg(args, kwargs, 1, "other")
        if "out" in kwargs or not (_number(a) and _number(b)) or not torch.is_grad_enabled():
            return out
        if not any(isinstance(t, Tensor) and t.requires_grad for t in (a, b)):
            return out
        diff = (a - b) if INEQUALITIES[func] > 0 else (b - a)
        if isinstance(diff, Tensor) and diff.is_floating_point():
            self.values[out] = self.step_maker(diff.expand(out.shape), out.detach())
        return out

    def step_maker(self, diff: Tensor, mask: Tensor):
        """make(dtype): ``mask.to(dtype)`` by value, with step's backward at ``diff``."""
        est = self.ops["step"].estimator

        def make(dtype: torch.dtype) -> Tensor:
            return SurrogateFunction.apply(diff, STEP, est, False, lambda: mask.to(dtype), 1.0)

        return make

    def joins(self) -> bool:
        """Whether a followed value joins now: grad is on, or argmax's forward is changed."""
        return torch.is_grad_enabled() or self.changes_forward()

    def arithmetic(self, func, args, kwargs):
        """``mask * 1.0``, ``mask * x``, ``1 - onehot``...: a float result is recomputed from the
        differentiable values (the same numbers); an integer one (``mask + 0``) is followed."""
        out = func(*args, **kwargs)
        if "out" in kwargs or not isinstance(out, Tensor) or out.dtype == torch.bool:
            return out
        sides = [(i, self.values.get(t)) for i, t in enumerate(args[:2]) if isinstance(t, Tensor)]
        sides = [(i, make) for i, make in sides if make is not None]
        if not sides:
            return out

        def redo(dtype):
            new = list(args)
            for i, make in sides:
                new[i] = make(dtype)
            return func(*new, **kwargs)

        if not out.is_floating_point():
            self.values[out] = redo
            return out
        return redo(out.dtype) if self.joins() else out

    def where(self, func, args, kwargs):
        """``torch.where(mask, a, b)`` / ``a.where(mask, b)``: PyTorch's result, and a − b times
        the step's gradient to x."""
        out = func(*args, **kwargs)
        if func is torch.where:
            cond, a = first_arg(args, kwargs, "condition"), arg(args, kwargs, 1, "input")
        else:
            a, cond = first_arg(args, kwargs), arg(args, kwargs, 1, "condition")
        b = arg(args, kwargs, 2, "other")
        make = self.values.get(cond) if isinstance(cond, Tensor) else None
        if make is None or not is_real(out) or not self.joins():
            return out
        return attach_jump(out, make(out.dtype), constant_like(a, out) - constant_like(b, out))

    def masked_fill(self, func, args, kwargs):
        """``y.masked_fill(mask, v)``: PyTorch's result, and v − y times the step's gradient."""
        out = func(*args, **kwargs)
        y, mask, v = (
            first_arg(args, kwargs),
            arg(args, kwargs, 1, "mask"),
            arg(args, kwargs, 2, "value"),
        )
        make = self.values.get(mask) if isinstance(mask, Tensor) else None
        if make is None or not is_real(out) or not self.joins():
            return out
        return attach_jump(out, make(out.dtype), constant_like(v, out) - y.detach())

    def masked_fill_(self, func, args, kwargs):
        y = first_arg(args, kwargs)
        mask = arg(args, kwargs, 1, "mask")
        if not isinstance(mask, Tensor) or self.values.get(mask) is None or not is_real(y):
            return func(*args, **kwargs)
        return y.copy_(self.masked_fill(Tensor.masked_fill, (y, *args[1:]), kwargs))

    def put(self, func, args, kwargs):
        """``y[mask] = v`` (``__setitem__``) and ``y.index_put_((mask,), v)``: a bool mask over
        y's leading dims, v a number or a tensor PyTorch writes into y[mask]. As ``masked_fill``,
        with v − y taken where v lands (``written_jump``)."""
        y = first_arg(args, kwargs)
        key = arg(args, kwargs, 1, "indices")
        v = arg(args, kwargs, 2, "values")
        if func is not Tensor.__setitem__:
            if arg(args, kwargs, 3, "accumulate", False) or not isinstance(key, (tuple, list)):
                return func(*args, **kwargs)
            key = key[0] if len(key) == 1 else None
        make = self.values.get(key) if isinstance(key, Tensor) else None
        if make is None or key.dtype != torch.bool or not is_real(y) or not self.joins():
            return func(*args, **kwargs)
        if y.shape[: key.dim()] != key.shape:
            return func(*args, **kwargs)
        jump = written_jump(y, key, v)
        if jump is None:
            return func(*args, **kwargs)
        out = y.clone()
        out[key] = v
        s = make(y.dtype).reshape(key.shape + (1,) * (y.dim() - key.dim()))
        out = attach_jump(out, s, jump)
        if func in (torch.index_put, Tensor.index_put):
            return out
        y.copy_(out)
        return None if func is Tensor.__setitem__ else y


def written_jump(y: Tensor, mask: Tensor, v) -> Tensor | None:
    """v − y for ``y[mask] = v``, y + s·(v − y) by value; None for a v this does not cover.

    ``y[mask]`` has shape (n, *rest), n the selected count. A number, or a tensor with fewer
    dims (``rest`` or a suffix of it), is the same value for every element: v − y everywhere.
    A tensor of shape (1, *rest) with n ≠ 1 is that too. A tensor of shape (n, *rest) gives each
    selected element its own row: v − y there and 0 elsewhere (an element not selected has no v).
    """
    rest = y.shape[mask.dim() :]
    if not isinstance(v, Tensor):
        return constant_like(v, y) - y.detach() if isinstance(v, (int, float)) else None
    v = v.detach().to(y.dtype)
    if v.dim() <= len(rest):
        return v - y.detach() if broadcasts_to(v, rest) else None
    if v.dim() != len(rest) + 1 or not broadcasts_to(v.sum(0), rest):
        return None
    count = int(mask.sum())
    if v.shape[0] == count:
        rows = y.detach().clone()
        rows[mask] = v
        return rows - y.detach()
    return v[0] - y.detach() if v.shape[0] == 1 else None

"""``Intercept``, the ``TorchFunctionMode`` behind ``surrogate.intercept``: which torch calls it
takes over, and the handlers of step, sign, round (with floor, ceil and trunc) and of the masks,
one-hots and indices it follows (see the package docstring for the calls and their gradients).
The handlers of comparisons and of indices are mixed in from ``compare`` and ``index``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from surrogate.hardops import ROUND, SIGN, RoundOp
from surrogate.intercept.compare import CompareHandlers
from surrogate.intercept.functions import HeavisideFunction, SurrogateFunction
from surrogate.intercept.index import IndexHandlers
from surrogate.intercept.sites import Scope
from surrogate.op_estimators import OpEstimator, summary
from surrogate.torch_calls import (
    ARITHMETIC,
    CASTS,
    GATHERS,
    INEQUALITIES,
    LOOKUPS,
    MASKED_FILL,
    PUTS,
    SCATTERS,
    SHAPE_OPS,
    TAKE_ALONG,
    WHERE,
    bypass,
    bypassed,
    first_arg,
    is_real,
    methods,
)

__all__ = ["Intercept", "TruncOp"]

Tensor = torch.Tensor
COMPILE_NOTE = (
    "surrogate.intercept runs eagerly: torch.compile breaks the graph at each op it sees; for "
    "one graph use surrogate's own ops or modules (surrogate.sign, surrogate.Sign, ...) instead"
)


def run_eagerly(fn):
    """``torch.compiler.disable`` with ``COMPILE_NOTE`` as the reason where torch takes one."""
    try:
        return torch.compiler.disable(fn, reason=COMPILE_NOTE)
    except TypeError:  # torch < 2.6: no reason
        return torch.compiler.disable(fn)


class TruncOp(RoundOp):
    """trunc(x) = torch.trunc(x): floor for x >= 0, ceil for x < 0, so it jumps by 1 at every
    nonzero integer and not at 0. Offset r = x − k, k the nearest nonzero integer (round(x), or
    sign(x) where that is 0; 1 at 0): round's nearest-boundary rule on trunc's jumps."""

    def exact(self, x):
        return torch.trunc(x)

    def offset(self, x):
        k = torch.round(x)
        k = torch.where(k == 0, torch.where(x < 0, -1.0, 1.0).to(x.dtype), k)
        return torch.where(x.abs() == math.inf, x, x - k)


TRUNC = TruncOp()


class Intercept(CompareHandlers, IndexHandlers, TorchFunctionMode):
    """The mode behind ``surrogate.intercept``; ``ops`` maps op -> ``OpEstimator``.

    Handlers receive ``(func, args, kwargs)`` and run with other intercepts bypassed. Followed
    tensors live in weak maps that die with the block: ``values`` maps a mask or an integer
    one-hot to make(dtype), its values as a differentiable tensor of that dtype; ``indices`` maps
    an argmax index to its ``Picked``.
    """

    _eager = False  # whether __torch_function__ is wrapped in torch.compiler.disable yet
    casts = CASTS

    def __init__(
        self, ops: Mapping[str, OpEstimator], training: bool = False, scope: Scope | None = None
    ):
        super().__init__()
        self.ops = {op: OpEstimator(*choice) for op, choice in ops.items()}
        self.training = bool(training)
        self.scope = scope
        self.handlers: dict[Any, Any] = {}
        self.creators: set = set()  # the calls that make a hard op's result: sign, x > t, argmax
        self.indices = WeakTensorKeyDictionary()  # argmax output -> Picked
        self.values = WeakTensorKeyDictionary()  # mask or integer one-hot -> make(dtype)
        if "sign" in ops:
            self.handle_op(methods("sign", "sgn"), self.sign)
            self.handle_op((Tensor.sign_, Tensor.sgn_), self.in_place(torch.sign, self.sign))
        if "round" in ops:
            self.handle_op(methods("round"), self.round)
            self.handle_op((Tensor.round_,), self.in_place(torch.round, self.round))
            self.handle_op(methods("floor", "ceil"), self.floor_ceil)
            self.handle_op((Tensor.floor_,), self.in_place(torch.floor, self.floor_ceil))
            self.handle_op((Tensor.ceil_,), self.in_place(torch.ceil, self.floor_ceil))
            self.handle_op(methods("trunc", "fix"), self.trunc)
            self.handle_op((Tensor.trunc_, Tensor.fix_), self.in_place(torch.trunc, self.trunc))
        if "step" in ops:
            self.handle_op(methods("heaviside"), self.heaviside)
            self.handle_op((Tensor.heaviside_,), self.in_place(torch.heaviside, self.heaviside))
            self.handle_op(INEQUALITIES, self.compare)
        if "argmax" in ops:
            self.handle_op(methods("argmax"), self.argmax)
            self.handle_op(methods("argmin"), self.argmin)
            self.handle_op(methods("max", "min"), self.max_min)
            self.handle_op(methods("topk"), self.topk)
            self.handle((F.one_hot,), self.one_hot)
            self.handle(SCATTERS, self.scatter)
            self.handle(LOOKUPS | GATHERS | TAKE_ALONG, self.read)
        if "step" in ops or "argmax" in ops:  # where a mask or a one-hot becomes numbers
            self.handle(SHAPE_OPS | CASTS, self.follow)
            self.handle(ARITHMETIC, self.arithmetic)
            self.handle(WHERE, self.where)
            self.handle(MASKED_FILL, self.masked_fill)
            self.handle((Tensor.masked_fill_,), self.masked_fill_)
            self.handle(PUTS, self.put)

    def handle(self, funcs, handler) -> None:
        self.handlers.update(dict.fromkeys(funcs, handler))

    def handle_op(self, funcs, handler) -> None:
        """``handle`` for calls that make a hard op's result, the calls a scope decides."""
        self.handle(funcs, handler)
        self.creators.update(funcs)

    def __repr__(self) -> str:
        only = f", only={len(self.scope.sites)} call sites" if self.scope is not None else ""
        return f"intercept({summary(self.ops)}{', training=True' if self.training else ''}{only})"

    def __enter__(self):
        # torch.compile must not trace into the mode: decorated here, at first use, not at import
        # (torch.compiler.disable imports torch._dynamo, which takes seconds).
        if not Intercept._eager:
            Intercept.__torch_function__ = run_eagerly(Intercept.__torch_function__)
            Intercept._eager = True
        return super().__enter__()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = self.handlers.get(func)
        if handler is None or bypassed():
            return func(*args, **kwargs)
        if self.scope is not None and func in self.creators and not self.scope.covers():
            return func(*args, **kwargs)
        with bypass():
            return handler(func, args, kwargs)

    @staticmethod
    def acts(x: Tensor, changes_forward: bool) -> bool:
        """Grad-carrying input under grad mode, or a forward that the estimator changes."""
        if x.requires_grad:
            return torch.is_grad_enabled()
        return changes_forward

    # --- step, sign, round ---------------------------------------------------------------------

    def scalar(self, op, name, func, args, kwargs, scale=1.0):
        x = first_arg(args, kwargs)
        est, relaxed = self.ops[name]
        if "out" in kwargs or not is_real(x) or not self.acts(x, relaxed):
            return func(*args, **kwargs)
        exact = None if relaxed else (lambda: func(*args, **kwargs))
        return SurrogateFunction.apply(x, op, est, relaxed, exact, scale)

    @staticmethod
    def in_place(out_of_place, handler):
        """The handler of ``x.op_()``: ``x.copy_(op(x.clone()))`` through ``handler``, so ``x``
        gets the op's values and the surrogate gradient flows back to its earlier version."""

        def run(func, args, kwargs):
            x = first_arg(args, kwargs, "self")
            if "out" in kwargs or not is_real(x):
                return func(*args, **kwargs)
            return x.copy_(handler(out_of_place, (x.clone(), *args[1:]), kwargs))

        return run

    def sign(self, func, args, kwargs):
        return self.scalar(SIGN, "sign", func, args, kwargs)

    def round(self, func, args, kwargs):
        decimals = args[1] if len(args) > 1 else kwargs.get("decimals", 0)
        return self.scalar(ROUND, "round", func, args, kwargs, scale=10.0**decimals)

    def floor_ceil(self, func, args, kwargs):
        """floor and ceil jump by 1 at the integers: round's backward at x ∓ ½ (its boundaries
        k + ½ moved onto the integers), with PyTorch's forward."""
        x = first_arg(args, kwargs)
        est, relaxed = self.ops["round"]
        if "out" in kwargs or not is_real(x) or not self.acts(x, relaxed):
            return func(*args, **kwargs)
        shift = -0.5 if func in (torch.floor, Tensor.floor) else 0.5
        exact = None if relaxed else (lambda: func(*args, **kwargs))
        return SurrogateFunction.apply(x + shift, ROUND, est, relaxed, exact, 1.0)

    def trunc(self, func, args, kwargs):
        """trunc (and its alias fix) jumps by 1 at every nonzero integer: round's bump at the
        distance to the nearest one (``TruncOp``), with PyTorch's forward, also under a relaxed
        round."""
        x = first_arg(args, kwargs)
        est = self.ops["round"].estimator
        if "out" in kwargs or not is_real(x) or not self.acts(x, False):
            return func(*args, **kwargs)
        return SurrogateFunction.apply(x, TRUNC, est, False, lambda: func(*args, **kwargs), 1.0)

    def heaviside(self, func, args, kwargs):
        x = first_arg(args, kwargs)
        values = args[1] if len(args) > 1 else kwargs.get("values")
        est, relaxed = self.ops["step"]
        if "out" in kwargs or not (is_real(x) and is_real(values)):
            return func(*args, **kwargs)
        if not self.acts(x, relaxed) and not self.acts(values, relaxed):
            return func(*args, **kwargs)
        shape = torch.broadcast_shapes(x.shape, values.shape)
        return HeavisideFunction.apply(x.expand(shape), values.expand(shape), est, relaxed)

    # --- followed masks, one-hots and indices --------------------------------------------------

    def changes_forward(self) -> bool:
        """Whether argmax's estimator changes the one-hot's values (relaxed, or sampling)."""
        return "argmax" in self.ops and self.changes_argmax()

    def follow(self, func, args, kwargs):
        """A shape op or cast of a followed mask, one-hot or index: follow the result, or at a
        cast of a mask or one-hot to a float dtype return the differentiable version. An index
        reading rows of a float tensor (``weight[idx]``) is a lookup."""
        out = func(*args, **kwargs)
        src = first_arg(args, kwargs)
        if not isinstance(src, Tensor):
            return out
        if func is Tensor.__getitem__ and "argmax" in self.ops and is_real(src):
            return self.join_read(out, func, args, kwargs)
        if src in self.indices:
            return self.follow_index(func, args, kwargs, out)
        make = self.values.get(src)
        if make is None or not isinstance(out, Tensor):
            return out
        if func not in CASTS:
            rest = args[1:]
            self.values[out] = lambda dtype: func(make(dtype), *rest, **kwargs)
        elif not out.is_floating_point():
            self.values[out] = make  # an integer copy or a move: the same values
        elif self.joins():
            y = make(out.dtype).to(out.device)
            if y.shape == out.shape:
                return y
        return out

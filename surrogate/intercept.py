"""Surrogate gradients for plain torch ops in code you do not change: ``surrogate.intercept``.

    with surrogate.intercept(sign="atan", step="sigmoid", argmax="softmax"):
        loss = loss_fn(model(x), y)   # the model calls torch.sign, heaviside, argmax + one_hot
    loss.backward()                   # ... and their backward is now the estimators'

Inside the block (a ``torch.overrides.TorchFunctionMode``) these calls get the named estimator's
backward; their forward stays PyTorch's, bit for bit:

| keyword | calls                                                       | backward               |
|---------|-------------------------------------------------------------|------------------------|
| step    | ``torch.heaviside(x, values)``, ``x.heaviside(values)``     | J·p(x), J = 1          |
| sign    | ``torch.sign``, ``x.sign()``, ``torch.sgn``, ``x.sgn()``    | J·p(x), J = 2          |
| round   | ``torch.round(x, decimals=d)``, ``x.round()``               | p(r) at x·10^d         |
| argmax  | ``x.argmax(dim)`` -> ``F.one_hot`` -> cast to a float dtype | the argmax estimator's |
|         | also the index of ``argmin``, ``max(dim)``, ``min(dim)``,   | (of −x for a minimum)  |
|         | ``topk(1, dim)``                                            |                        |

``round`` also covers ``torch.floor`` and ``torch.ceil`` (``x.floor()``, ``x.ceil()``): they jump by
1 at the integers, so they get round's backward at x ∓ ½. ``trunc`` is not covered (it does not
jump at 0). The in-place forms ``x.sign_()``, ``x.sgn_()``, ``x.round_()``, ``x.floor_()``,
``x.ceil_()`` and ``x.heaviside_(values)`` too:
``x`` takes the op's values and the gradient reaches its value before the call. ``dim`` may also
be given as numpy's ``axis``.

So ``torch.sign(0)`` stays 0 and ``torch.heaviside`` keeps ``values`` at 0; ``values`` gets its
exact gradient 1[x = 0]. For argmax, the index and the int64 one-hot are PyTorch's and carry no
gradient (an integer tensor cannot). The gradient joins where the one-hot is cast to a floating
dtype (``.float()``, ``.to(dtype)``, ``.to(tensor)``, ``.type_as(t)``, ``.half()``, ...), also after
views, reshapes, permutes or indexing in between: the cast returns PyTorch's values, now with the
estimator's backward to the logits along ``dim``. Other uses of the index or the one-hot keep
PyTorch's behaviour.

Only calls whose input requires grad while grad is enabled are changed (so no-grad code, and the
library's own ops, run untouched). Two opt-ins change a forward, like the library's modules do: an
``(estimator, True)`` pair runs that op relaxed (its smooth forward), and ``training=True`` lets
``gumbel`` and ``reinmax`` sample the cast one-hot. Ops not named keep PyTorch's behaviour; inner
blocks override the ops they name and leave the others to the outer block.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from surrogate.estimators import Estimator
from surrogate.hardops import ROUND, SIGN, STEP, ArgmaxOp
from surrogate.op_estimators import parse_ops, summary
from surrogate.torch_calls import CASTS, SHAPE_OPS, bypass, bypassed, first_arg, is_real, methods

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


class SurrogateFunction(torch.autograd.Function):
    """Forward ``exact()`` (PyTorch's own output) or, if None, the estimator's; backward the
    estimator's ``grad``. ``scale`` runs the op on x·scale and divides the output by it
    (``torch.round(x, decimals=d)`` is round(x·10^d)/10^d, whose derivative is p at x·10^d)."""

    @staticmethod
    def forward(ctx, x, op, est, relaxed, exact, scale):
        with bypass():
            out, saved = est.forward(op, x if scale == 1 else x * scale, relaxed)
            if exact is not None:
                out = exact()
            elif scale != 1:
                out = out / scale
        ctx.save_for_backward(*saved)
        ctx.op, ctx.est, ctx.dtype = op, est, x.dtype
        return out

    @staticmethod
    def backward(ctx, g):
        grad = ctx.est.grad(ctx.op, g, *ctx.saved_tensors).to(ctx.dtype)
        return grad, None, None, None, None, None


class HeavisideFunction(torch.autograd.Function):
    """``torch.heaviside(x, values)`` (or step's relaxed forward) with step's backward for x and
    the exact 1[x = 0] for ``values``; x and values come broadcast to one shape."""

    @staticmethod
    def forward(ctx, x, values, est, relaxed):
        with bypass():
            out, saved = est.forward(STEP, x, relaxed)
            if not relaxed:
                out = torch.heaviside(x, values)
        at_zero = (x == 0,) if ctx.needs_input_grad[1] and not relaxed else ()
        ctx.save_for_backward(*at_zero, *saved)
        ctx.est, ctx.dtype, ctx.has_zero = est, x.dtype, bool(at_zero)
        return out

    @staticmethod
    def backward(ctx, g):
        saved = ctx.saved_tensors
        at_zero, saved = (saved[0], saved[1:]) if ctx.has_zero else (None, saved)
        gx = ctx.est.grad(STEP, g, *saved).to(ctx.dtype) if ctx.needs_input_grad[0] else None
        gv = torch.where(at_zero, g, 0.0) if at_zero is not None else None
        return gx, gv, None, None


def _dim(args: tuple, kwargs: dict):
    """The ``dim`` of a reduction call, given second, as ``dim``, or as numpy's ``axis``
    (``torch.argmax(x, axis=-1)``); None if absent."""
    return args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis"))


class Intercept(TorchFunctionMode):
    """The mode behind ``surrogate.intercept``; ``ops`` maps op -> (estimator, relaxed).

    Handlers receive ``(func, args, kwargs)`` and run with other intercepts bypassed. Argmax
    indices and one-hots are followed in weak maps that die with the block.
    """

    _eager = False  # whether __torch_function__ is wrapped in torch.compiler.disable yet

    def __init__(self, ops: dict[str, tuple[Estimator, bool]], training: bool = False):
        super().__init__()
        self.ops, self.training = dict(ops), bool(training)
        self.handlers: dict[Any, Any] = {}
        self.indices = WeakTensorKeyDictionary()  # argmax output -> (logits, dim)
        self.values = WeakTensorKeyDictionary()  # integer one-hot -> make(dtype), differentiable
        if "sign" in ops:
            self.handle(methods("sign", "sgn"), self.sign)
            self.handle((Tensor.sign_, Tensor.sgn_), self.in_place(torch.sign, self.sign))
        if "round" in ops:
            self.handle(methods("round"), self.round)
            self.handle((Tensor.round_,), self.in_place(torch.round, self.round))
            self.handle(methods("floor", "ceil"), self.floor_ceil)
            self.handle((Tensor.floor_,), self.in_place(torch.floor, self.floor_ceil))
            self.handle((Tensor.ceil_,), self.in_place(torch.ceil, self.floor_ceil))
        if "step" in ops:
            self.handle(methods("heaviside"), self.heaviside)
            self.handle((Tensor.heaviside_,), self.in_place(torch.heaviside, self.heaviside))
        if "argmax" in ops:
            self.handle(methods("argmax"), self.argmax)
            self.handle(methods("argmin"), self.argmin)
            self.handle(methods("max", "min"), self.max_min)
            self.handle(methods("topk"), self.topk)
            self.handle((F.one_hot,), self.one_hot)
            self.handle(SHAPE_OPS | CASTS, self.follow)

    def handle(self, funcs, handler) -> None:
        self.handlers.update(dict.fromkeys(funcs, handler))

    def __repr__(self) -> str:
        return f"intercept({summary(self.ops)}{', training=True' if self.training else ''})"

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

    # --- argmax -> one_hot -> cast ---------------------------------------------------------------

    def changes_argmax(self) -> bool:
        est, relaxed = self.ops["argmax"]
        return relaxed or (self.training and est.stochastic)

    def argmax(self, func, args, kwargs, largest: bool = True):
        index = func(*args, **kwargs)
        self._follow_index(index, first_arg(args, kwargs), _dim(args, kwargs), largest, kwargs)
        return index

    def argmin(self, func, args, kwargs):
        return self.argmax(func, args, kwargs, largest=False)

    def max_min(self, func, args, kwargs):
        """``x.max(dim)`` / ``x.min(dim)``: its indices, as argmax / argmin (no dim: untouched)."""
        out = func(*args, **kwargs)
        dim = _dim(args, kwargs)
        if isinstance(dim, int) and isinstance(out, tuple):
            largest = func in (torch.max, Tensor.max)
            self._follow_index(out[1], first_arg(args, kwargs), dim, largest, kwargs)
        return out

    def topk(self, func, args, kwargs):
        """``x.topk(1, dim)``: its indices, as argmax (argmin with ``largest=False``)."""
        out = func(*args, **kwargs)
        k = args[1] if len(args) > 1 else kwargs.get("k")
        if k == 1:
            dim = args[2] if len(args) > 2 else kwargs.get("dim", -1)
            largest = args[3] if len(args) > 3 else kwargs.get("largest", True)
            self._follow_index(out[1], first_arg(args, kwargs), dim, largest, kwargs)
        return out

    def _follow_index(self, index, x, dim, largest: bool, kwargs) -> None:
        """Remember ``index`` as the argmax of ``x`` along ``dim`` (of ``-x`` for a minimum)."""
        if "out" not in kwargs and is_real(x) and self.acts(x, self.changes_argmax()):
            self.indices[index] = (x if largest else -x, dim)

    def one_hot(self, func, args, kwargs):
        onehot = func(*args, **kwargs)
        index = first_arg(args, kwargs, "tensor")
        found = self.indices.get(index) if isinstance(index, Tensor) else None
        if found is not None:
            self.values[onehot] = self.one_hot_maker(*found, index, onehot.shape)
        return onehot

    def one_hot_maker(self, x: Tensor, dim: int | None, index: Tensor, shape: torch.Size):
        """make(dtype): ``one_hot(index, shape[-1]).to(dtype)``'s values, differentiable in x."""
        est, relaxed = self.ops["argmax"]
        changes = self.changes_argmax()
        training = self.training

        def make(dtype: torch.dtype) -> Tensor:
            z, d = (x.reshape(-1), 0) if dim is None or x.dim() == 0 else (x, dim % x.dim())
            keep = index.reshape(z.shape[:d] + (1,) + z.shape[d + 1 :])

            def exact():
                return torch.zeros(z.shape, dtype=dtype, device=z.device).scatter_(d, keep, 1)

            op = ArgmaxOp(d, training)
            y = SurrogateFunction.apply(z, op, est, relaxed, None if changes else exact, 1.0)
            y = y.to(dtype).movedim(d, -1)
            n, c = shape[-1], z.shape[d]
            y = F.pad(y, (0, n - c)) if n > c else y[..., :n]
            return y.reshape(shape)

        return make

    def follow(self, func, args, kwargs):
        """A shape op or cast of a followed one-hot: follow the result, or at a cast to a float
        dtype return the differentiable version."""
        out = func(*args, **kwargs)
        src = first_arg(args, kwargs)
        make = self.values.get(src) if isinstance(src, Tensor) else None
        if make is None or not isinstance(out, Tensor):
            return out
        if func not in CASTS:
            rest = args[1:]
            self.values[out] = lambda dtype: func(make(dtype), *rest, **kwargs)
        elif not out.is_floating_point():
            self.values[out] = make  # an integer copy or a move: the same values
        elif torch.is_grad_enabled() or self.changes_argmax():
            y = make(out.dtype).to(out.device)
            if y.shape == out.shape:
                return y
        return out


def intercept(
    *,
    step: Any = None,
    sign: Any = None,
    round: Any = None,  # noqa: A002  (the op is called round)
    argmax: Any = None,
    training: bool = False,
    **unknown: Any,
) -> Intercept:
    """A context manager under which plain torch hard ops get the named estimators' backward.

    Each keyword takes what ``surrogate.step`` and friends take: a name, an ``Estimator``, or (step,
    sign, round) a callable bump p; or an ``(estimator, relaxed)`` pair, or a config node
    ``{"name": "sigmoid", "beta": 8.0, "relaxed": False}`` (see ``surrogate.op_estimators``).
    ``step`` covers ``torch.heaviside``. Ops left out keep PyTorch's behaviour. ``training=True``
    lets ``gumbel`` and ``reinmax`` sample the one-hot (like ``surrogate.ArgMax`` in training
    mode); by default every forward is PyTorch's. See the module docstring for the calls covered
    and how argmax reaches the logits.
    """
    ops = parse_ops(
        {"step": step, "sign": sign, "round": round, "argmax": argmax, **unknown}, "intercept"
    )
    if not isinstance(training, bool):
        raise ValueError(f"intercept: training must be True or False, got {training!r}")
    return Intercept(ops, training=training)

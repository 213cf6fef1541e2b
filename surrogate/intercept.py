"""Surrogate gradients for plain torch ops in code you do not change: ``surrogate.intercept``.

    with surrogate.intercept(sign="atan", step="sigmoid", argmax="softmax"):
        loss = loss_fn(model(x), y)   # the model calls torch.sign, heaviside, argmax + one_hot
    loss.backward()                   # ... and their backward is now the estimators'

Inside the block (a ``torch.overrides.TorchFunctionMode``) these calls get the named estimator's
backward; their forward stays PyTorch's, bit for bit:

| keyword | calls                                                       | backward               |
|---------|-------------------------------------------------------------|------------------------|
| step    | ``torch.heaviside(x, values)``, ``x.heaviside(values)``     | J·p(x), J = 1          |
| step    | ``x > t``, ``x >= t`` made numbers (see below)              | p(x − t); t: −p(x − t) |
| step    | ``x < t``, ``x <= t`` made numbers (see below)              | −p(t − x); t: p(t − x) |
| sign    | ``torch.sign``, ``x.sign()``, ``torch.sgn``, ``x.sgn()``    | J·p(x), J = 2          |
| round   | ``torch.round(x, decimals=d)``, ``x.round()``               | p(r) at x·10^d         |
| round   | ``torch.floor``, ``torch.ceil`` (jumps at the integers)     | p(r) at x ∓ ½          |
| round   | ``torch.trunc``, ``torch.fix`` (jumps at integers ≠ 0)      | p(x − k), k: nearest   |
|         |                                                             | nonzero integer        |
| argmax  | ``x.argmax(dim)`` -> ``F.one_hot`` -> cast to a float dtype | the argmax estimator's |
|         | also the index of ``argmin``, ``max(dim)``, ``min(dim)``,   | (of −x for a minimum)  |
|         | ``topk(1, dim)``; into ``scatter`` or a lookup (see below)  |                        |

The in-place forms ``x.sign_()``, ``x.sgn_()``, ``x.round_()``, ``x.floor_()``, ``x.ceil_()``,
``x.trunc_()``, ``x.fix_()`` and ``x.heaviside_(values)`` too: ``x`` takes the op's values and the
gradient reaches its value before the call. ``dim`` may also be given as numpy's ``axis``. trunc
is floor for x >= 0 and ceil for x < 0: it jumps by 1 at ±1, ±2, ... and not at 0, so its bump
sits at the nearest nonzero integer (for |x| < ½ that is ±1, not 0); it keeps PyTorch's forward
under a relaxed round.

So ``torch.sign(0)`` stays 0 and ``torch.heaviside`` keeps ``values`` at 0; ``values`` gets its
exact gradient 1[x = 0]. For argmax, the index and the int64 one-hot are PyTorch's and carry no
gradient (an integer tensor cannot). The gradient joins where the one-hot is cast to a floating
dtype (``.float()``, ``.to(dtype)``, ``.to(tensor)``, ``.type(dtype)``, ``.type_as(t)``, ...), also
after views, reshapes, permutes or indexing in between: the cast returns PyTorch's values, now with
the estimator's backward to the logits along ``dim``.

Comparisons (``step=``): ``x > t`` is PyTorch's bool mask, remembered as the step s of x − t (t − x
for ``<``, ``<=``), with x or t a tensor or an ``nn.Parameter`` (t may also be a Python number;
the reflected ``0 < x`` runs as ``x > 0``). The forms where s joins the gradient, each with
PyTorch's values bit for bit and PyTorch's own gradient to a, b, y and v:

| form (mask = x > t, after any shape ops: view, reshape, expand, mask[i]...) | ∂out/∂s       |
|------------------------------------------------------------------------------|---------------|
| cast: ``mask.float()``, ``.to(dtype)``, ``.type(dtype)``, ``.type_as(y)``      | 1             |
| arithmetic: ``mask * 1.0``, ``1.0 * mask``, ``mask * y``, ``mask / 2``, ...    | as the op     |
| ``mask + 0`` (an integer result): followed, joins at its cast                | as the op     |
| ``torch.where(mask, a, b)``, ``a.where(mask, b)``                            | a − b         |
| ``y.masked_fill(mask, v)``, ``torch.masked_fill``, ``y.masked_fill_``          | v − y         |
| ``y[mask] = v``, ``y.index_put_((mask,), v)``, ``torch.index_put``             | v − y         |

So ``torch.where(x > t, a, b)`` gets ∂out/∂x = (a − b)·p(x − t) on top of its gradient to a and b,
with a − b taken at x, not at the threshold: where a and b meet at t (``where(x > 0, x, 0.1 * x)``,
a leaky ReLU) this adds 0.9·x·p(x), a gradient the continuous function does not have; write such
selections outside the block. An infinite v − y (``masked_fill(mask, -inf)``) gives an infinite
gradient where p > 0. ``index_put`` needs v a number or a tensor broadcastable to y, the mask
covering y's leading dims, and ``accumulate=False``. Left alone, with PyTorch's behaviour: masks
used to read (``x[x > 0]``), in control flow (``if (x > 0).any()``), counted (``mask.sum()``), in
logical ops (``&``, ``|``, ``~``, ``logical_and``), ``==`` and ``!=``, in-place comparisons
(``x.gt_(t)``), and ``out=`` calls. A relaxed step pair keeps comparisons' forward PyTorch's.

Indices (``argmax=``): the index is followed through shape ops (view, reshape, unsqueeze, flatten,
permute, flip, indexing...) and integer casts; Y is the argmax estimator's one-hot of the scores:

| form                                                             | value         | ∂/∂Y      |
|------------------------------------------------------------------|---------------|-----------|
| ``F.one_hot(idx, n)`` then a cast or arithmetic (as a mask)      | Y padded to n | as a mask |
| ``y.scatter_(d, idx, v)``, ``y.scatter(...)``, ``torch.scatter`` | y + Y·(v − y) | v − y     |
| ``F.embedding(idx, W)``, ``W[idx]``,                             | Y @ W         | g @ Wᵀ    |
| ``W.index_select(0, idx)``, ``torch.index_select(W, 0, idx)``    |               |           |
| ``W.gather(0, idx.expand(-1, D))``, ``torch.gather(W, 0, ...)``   |               |           |

``scatter`` needs idx of size 1 along d and y's shape elsewhere, v a number or a tensor
broadcastable to y, no ``reduce``: ``torch.zeros(n, k).scatter_(1, idx.unsqueeze(1), 1)`` is the
one-hot. A lookup gets W's gradient as PyTorch gives it (``F.embedding`` with ``max_norm`` is left
alone). Other uses of the index or the one-hot keep PyTorch's behaviour.

Only calls whose input requires grad while grad is enabled are changed (so no-grad code, and the
library's own ops, run untouched). Two opt-ins change a forward, like the library's modules do: an
``(estimator, True)`` pair runs that op relaxed (its smooth forward), and ``training=True`` lets
``gumbel`` and ``reinmax`` sample the cast one-hot. Ops not named keep PyTorch's behaviour; inner
blocks override the ops they name and leave the others to the outer block.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from surrogate.estimators import Estimator
from surrogate.hardops import ROUND, SIGN, RoundOp
from surrogate.intercept_compare import CompareHandlers
from surrogate.intercept_functions import HeavisideFunction, SurrogateFunction
from surrogate.intercept_index import IndexHandlers
from surrogate.op_estimators import parse_ops, summary
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
    WHERE,
    bypass,
    bypassed,
    first_arg,
    is_real,
    methods,
)

__all__ = ["Intercept", "SurrogateFunction", "HeavisideFunction", "intercept"]

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
    """The mode behind ``surrogate.intercept``; ``ops`` maps op -> (estimator, relaxed).

    Handlers receive ``(func, args, kwargs)`` and run with other intercepts bypassed. Followed
    tensors live in weak maps that die with the block: ``values`` maps a mask or an integer
    one-hot to make(dtype), its values as a differentiable tensor of that dtype; ``indices`` maps
    an argmax index to its ``Picked``.
    """

    _eager = False  # whether __torch_function__ is wrapped in torch.compiler.disable yet
    casts = CASTS

    def __init__(self, ops: dict[str, tuple[Estimator, bool]], training: bool = False):
        super().__init__()
        self.ops, self.training = dict(ops), bool(training)
        self.handlers: dict[Any, Any] = {}
        self.indices = WeakTensorKeyDictionary()  # argmax output -> Picked
        self.values = WeakTensorKeyDictionary()  # mask or integer one-hot -> make(dtype)
        if "sign" in ops:
            self.handle(methods("sign", "sgn"), self.sign)
            self.handle((Tensor.sign_, Tensor.sgn_), self.in_place(torch.sign, self.sign))
        if "round" in ops:
            self.handle(methods("round"), self.round)
            self.handle((Tensor.round_,), self.in_place(torch.round, self.round))
            self.handle(methods("floor", "ceil"), self.floor_ceil)
            self.handle((Tensor.floor_,), self.in_place(torch.floor, self.floor_ceil))
            self.handle((Tensor.ceil_,), self.in_place(torch.ceil, self.floor_ceil))
            self.handle(methods("trunc", "fix"), self.trunc)
            self.handle((Tensor.trunc_, Tensor.fix_), self.in_place(torch.trunc, self.trunc))
        if "step" in ops:
            self.handle(methods("heaviside"), self.heaviside)
            self.handle((Tensor.heaviside_,), self.in_place(torch.heaviside, self.heaviside))
            self.handle(INEQUALITIES, self.compare)
        if "argmax" in ops:
            self.handle(methods("argmax"), self.argmax)
            self.handle(methods("argmin"), self.argmin)
            self.handle(methods("max", "min"), self.max_min)
            self.handle(methods("topk"), self.topk)
            self.handle((F.one_hot,), self.one_hot)
            self.handle(SCATTERS, self.scatter)
            self.handle(LOOKUPS, self.lookup)
            self.handle(GATHERS, self.gather)
        if "step" in ops or "argmax" in ops:  # where a mask or a one-hot becomes numbers
            self.handle(SHAPE_OPS | CASTS, self.follow)
            self.handle(ARITHMETIC, self.arithmetic)
            self.handle(WHERE, self.where)
            self.handle(MASKED_FILL, self.masked_fill)
            self.handle((Tensor.masked_fill_,), self.masked_fill_)
            self.handle(PUTS, self.put)

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

    def trunc(self, func, args, kwargs):
        """trunc (and its alias fix) jumps by 1 at every nonzero integer: round's bump at the
        distance to the nearest one (``TruncOp``), with PyTorch's forward, also under a relaxed
        round."""
        x = first_arg(args, kwargs)
        est = self.ops["round"][0]
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
            return self.join_lookup(out, args[1], src)
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
    ``step`` covers ``torch.heaviside`` and the comparisons ``>``, ``>=``, ``<``, ``<=`` whose
    mask becomes numbers; ``round`` also floor, ceil and trunc. Ops left out keep PyTorch's
    behaviour. ``training=True`` lets ``gumbel`` and ``reinmax`` sample the one-hot (like
    ``surrogate.ArgMax`` in training mode); by default every forward is PyTorch's. See the module
    docstring for the calls covered and how argmax reaches the logits.
    """
    ops = parse_ops(
        {"step": step, "sign": sign, "round": round, "argmax": argmax, **unknown}, "intercept"
    )
    if not isinstance(training, bool):
        raise ValueError(f"intercept: training must be True or False, got {training!r}")
    return Intercept(ops, training=training)

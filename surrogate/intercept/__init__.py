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

| form                                                             | value         | ∂/∂Y         |
|------------------------------------------------------------------|---------------|--------------|
| ``F.one_hot(idx, n)`` then a cast or arithmetic (as a mask)      | Y padded to n | as a mask    |
| ``y.scatter_(d, idx, v)``, ``y.scatter(...)``, ``torch.scatter`` | y + Y·(v − y) | v − y        |
| a read of a table W: ``W[idx]``, ``F.embedding(idx, W)``,        | Y contracted  | g contracted |
| ``W.index_select(d, idx)``, ``W.gather(d, ...)``,                | with W along  | with W       |
| ``torch.take_along_dim(W, ...)``, ``W[i, idx]`` with other index | the dim idx   |              |
| tensors (``y[torch.arange(B)[:, None], idx]``) and slices        | reads         |              |

``scatter`` needs idx of size 1 along d and y's shape elsewhere, v a number or a tensor
broadcastable to y, no ``reduce``: ``torch.zeros(n, k).scatter_(1, idx.unsqueeze(1), 1)`` is the
one-hot. A read is one-hot @ table with leading head or batch dims too (a per-head codebook
``W.gather(1, idx[..., None].expand(H, n, D))``, ``W[None].expand(b, K, D).gather(...)``); every
read of the index is, a read of the scores' own softmax (a router's gate) included
(``surrogate.intercept.lookups``). It gets W's gradient as PyTorch gives it. Left alone: a read
by two followed indices, a key holding ``None``, an ``int`` or a mask, ``F.embedding`` with
``max_norm``, ``sparse_grad=True``. Other uses of the index or the one-hot keep PyTorch's
behaviour.

Only calls whose input requires grad while grad is enabled are changed (so no-grad code, and the
library's own ops, run untouched). Two opt-ins change a forward, like the library's modules do: an
``(estimator, True)`` pair runs that op relaxed (its smooth forward), and ``training=True`` lets
``gumbel`` and ``reinmax`` sample the cast one-hot. Ops not named keep PyTorch's behaviour; inner
blocks override the ops they name and leave the others to the outer block.

The mode is ``Intercept`` (``surrogate.intercept.mode``); it hands comparisons to
``surrogate.intercept.compare`` and indices to ``surrogate.intercept.index``, whose results get
their backward from the autograd Functions of ``surrogate.intercept.functions``.
"""

from __future__ import annotations

from typing import Any

from surrogate.callable_module import make_callable
from surrogate.intercept.functions import HeavisideFunction, SurrogateFunction
from surrogate.intercept.mode import Intercept
from surrogate.intercept.sites import Scope
from surrogate.op_estimators import parse_ops

__all__ = ["Intercept", "SurrogateFunction", "HeavisideFunction", "intercept"]


def intercept(
    *,
    step: Any = None,
    sign: Any = None,
    round: Any = None,  # noqa: A002  (the op is called round)
    argmax: Any = None,
    training: bool = False,
    only: Any = None,
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

    ``only=surrogate.audit(model, x, loss=fn)`` acts only at the call sites that audit found
    ``cut`` in that model (``surrogate.intercept.sites``: the module and the line that make the
    call); every other call, such as a hard op whose gradient the model routes itself, runs as
    PyTorch runs it, forward and backward. Without ``only``, every call is changed.
    """
    ops = parse_ops(
        {"step": step, "sign": sign, "round": round, "argmax": argmax, **unknown}, "intercept"
    )
    if not isinstance(training, bool):
        raise ValueError(f"intercept: training must be True or False, got {training!r}")
    return Intercept(ops, training=training, scope=scope_of(only))


def scope_of(only: Any) -> Scope | None:
    """The call sites of ``only``, a ``surrogate.audit`` report: those it found cut."""
    from surrogate.audit.findings import Report

    if only is None:
        return None
    if not isinstance(only, Report):
        raise ValueError(
            "intercept: only must be the report of surrogate.audit(model, *inputs, loss=...), "
            f"got {type(only).__name__} {only!r:.60}"
        )
    return only.scope


make_callable(__name__)

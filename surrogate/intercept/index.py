"""Index ops as argmax, for ``surrogate.intercept(argmax=...)``.

The index of ``argmax`` (of ``argmin``, ``max(dim)``, ``min(dim)``, ``topk(1)``: argmax of −x for a
minimum) is PyTorch's int64 tensor, remembered as a ``Picked``: the scores, the dim, the index and
``rows``, which row of the scores each element of the tensor comes from. A shape op on the index
(view, reshape, unsqueeze, flatten, permute, indexing...) is followed by running it on ``rows``.
Where the index becomes numbers, the argmax estimator's one-hot Y (rows × classes) joins:

    F.one_hot(idx, n)               = Y[rows], padded to n (joins at the cast to a float dtype)
    zeros.scatter_(d, idx, v)       = y + Y·(v − y) along d       ∂/∂Y = v − y
    a read of a table W: W[idx],    = Y[rows] contracted with W   ∂/∂Y = g contracted with W
    F.embedding, index_select,        along the dim idx reads     (``surrogate.intercept.lookups``)
    gather, take_along_dim

with PyTorch's values, and its gradient to W, y and v.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.utils.weak import WeakTensorKeyDictionary

from surrogate.hardops import ArgmaxOp
from surrogate.intercept.functions import Attach, SurrogateFunction, attach_jump
from surrogate.intercept.lookups import contraction, followed_position, read_of
from surrogate.op_estimators import OpEstimator
from surrogate.torch_calls import (
    arg,
    broadcasts_to,
    constant_like,
    first_arg,
    is_real,
    reduction_dim,
)

Tensor = torch.Tensor


class Picked(NamedTuple):
    """An index followed from an argmax of ``scores`` along ``dim`` (None: flattened)."""

    scores: Tensor
    dim: int | None
    idx: Tensor  # argmax's own output (not ``index``, which would hide ``tuple.index``)
    rows: Tensor  # for each element of the followed tensor, its row of the scores


def scatter_of(args: tuple, kwargs: dict) -> tuple | None:
    """(y, d, idx, v) of ``y.scatter_(d, idx, v)`` where it writes a one-hot's values: idx of size
    1 along d and y's shape elsewhere, v a number or a tensor broadcastable to y, y a float
    tensor, no ``reduce``; None for any other scatter."""
    y, d, idx = first_arg(args, kwargs), arg(args, kwargs, 1, "dim"), arg(args, kwargs, 2, "index")
    v = arg(args, kwargs, 3, "src", kwargs.get("value"))
    if "reduce" in kwargs or not is_real(y) or not isinstance(idx, Tensor):
        return None
    if not isinstance(d, int) or not -max(y.dim(), 1) <= d < max(y.dim(), 1):
        return None
    d = d % max(y.dim(), 1)
    fits = idx.dim() == y.dim() and idx.shape == y.shape[:d] + (1,) + y.shape[d + 1 :]
    return (y, d, idx, v) if fits and broadcasts_to(v, y.shape) else None


class IndexHandlers:
    """The handlers of index ops and of the calls that make numbers of a followed index; mixed
    into ``Intercept``, whose ``indices`` maps an index to its ``Picked``."""

    # Set by ``Intercept``.
    ops: dict[str, OpEstimator]
    training: bool
    casts: frozenset
    indices: WeakTensorKeyDictionary  # argmax output -> Picked
    values: WeakTensorKeyDictionary  # mask or integer one-hot -> make(dtype)
    acts: Callable[[Tensor, bool], bool]
    joins: Callable[[], bool]

    def changes_argmax(self) -> bool:
        est, relaxed = self.ops["argmax"]
        return relaxed or (self.training and est.stochastic)

    def argmax(self, func, args, kwargs, largest: bool = True):
        index = func(*args, **kwargs)
        x = first_arg(args, kwargs)
        self._follow_index(index, x, reduction_dim(args, kwargs), largest, kwargs)
        return index

    def argmin(self, func, args, kwargs):
        return self.argmax(func, args, kwargs, largest=False)

    def max_min(self, func, args, kwargs):
        """``x.max(dim)`` / ``x.min(dim)``: its indices, as argmax / argmin (no dim: untouched)."""
        out = func(*args, **kwargs)
        dim = reduction_dim(args, kwargs)
        if isinstance(dim, int) and isinstance(out, tuple):
            largest = func in (torch.max, Tensor.max)
            self._follow_index(out[1], first_arg(args, kwargs), dim, largest, kwargs)
        return out

    def topk(self, func, args, kwargs):
        """``x.topk(1, dim)``: its indices, as argmax (argmin with ``largest=False``)."""
        out = func(*args, **kwargs)
        if arg(args, kwargs, 1, "k") == 1:
            dim, largest = arg(args, kwargs, 2, "dim", -1), arg(args, kwargs, 3, "largest", True)
            self._follow_index(out[1], first_arg(args, kwargs), dim, largest, kwargs)
        return out

    def _follow_index(self, index, x, dim, largest: bool, kwargs) -> None:
        """Remember ``index`` as the argmax of ``x`` along ``dim`` (of ``-x`` for a minimum)."""
        if "out" not in kwargs and is_real(x) and self.acts(x, self.changes_argmax()):
            rows = torch.arange(index.numel(), device=index.device).view(index.shape)
            self.indices[index] = Picked(x if largest else -x, dim, index.detach(), rows)

    def one_hot(self, func, args, kwargs):
        onehot = func(*args, **kwargs)
        index = first_arg(args, kwargs, "tensor")
        picked = self.indices.get(index) if isinstance(index, Tensor) else None
        if picked is not None:
            self.values[onehot] = self.one_hot_maker(picked, onehot.shape[-1])
        return onehot

    def one_hot_maker(self, picked: Picked, n: int):
        """make(dtype): the one-hot of the followed index over n classes, shape rows.shape + (n,),
        PyTorch's values (or the estimator's where it changes the forward), differentiable in
        the scores."""
        est, relaxed = self.ops["argmax"]
        changes = self.changes_argmax()
        training = self.training
        x, dim, index, rows = picked

        def make(dtype: torch.dtype) -> Tensor:
            z, d = (x.reshape(-1), 0) if dim is None or x.dim() == 0 else (x, dim % x.dim())
            keep = index.reshape(z.shape[:d] + (1,) + z.shape[d + 1 :])

            def exact():
                return torch.zeros(z.shape, dtype=dtype, device=z.device).scatter_(d, keep, 1)

            op = ArgmaxOp(d, training)
            y = SurrogateFunction.apply(z, op, est, relaxed, None if changes else exact, 1.0)
            c = z.shape[d]
            y = y.to(dtype).movedim(d, -1).reshape(-1, c)[rows.to(y.device)]
            return F.pad(y, (0, n - c)) if n > c else y[..., :n]

        return make

    def follow_index(self, func, args, kwargs, out):
        """A shape op or integer cast of a followed index: follow ``out`` with its rows."""
        picked = self.indices.get(first_arg(args, kwargs))
        if isinstance(out, Tensor) and not out.is_floating_point() and out.dtype != torch.bool:
            rows = picked.rows if func in self.casts else func(picked.rows, *args[1:], **kwargs)
            self.indices[out] = picked._replace(rows=rows)
        return out

    def scatter(self, func, args, kwargs):
        """``y.scatter_(d, idx, v)`` with idx a followed index (``scatter_of``): y + one_hot·(v − y)
        along d."""
        found = scatter_of(args, kwargs)
        picked = self.indices.get(found[2]) if found is not None else None
        if picked is None or not self.joins():
            return func(*args, **kwargs)
        y, d, idx, v = found
        out = Tensor.scatter(y, d, idx, v)
        make = self.one_hot_maker(picked._replace(rows=picked.rows.squeeze(d)), y.shape[d])
        out = attach_jump(out, make(y.dtype).movedim(-1, d), constant_like(v, y) - y.detach())
        return y.copy_(out) if func is Tensor.scatter_ else out

    def read(self, func, args, kwargs):
        """A read of a float table by a followed index (``gather``, ``take_along_dim``,
        ``index_select``, ``F.embedding``, ``W[..., idx, ...]``; ``surrogate.intercept.lookups``):
        PyTorch's values and gradient to the table, and the contraction of g with the table to the
        one-hot of the index."""
        out = func(*args, **kwargs)
        return self.join_read(out, func, args, kwargs)

    def join_read(self, out, func, args, kwargs):
        if not self.indices or not isinstance(out, Tensor) or not self.joins():
            return out
        read = read_of(func, args, kwargs)
        if read is None:
            return out
        position = followed_position(read, lambda t: t in self.indices)
        if position is None:
            return out
        picked = self.indices[read.source if read.key is None else read.key[position]]
        plan = contraction(read, position, picked.rows)
        s = self.one_hot_maker(picked._replace(rows=plan.rows), plan.classes)(read.weight.dtype)

        def to_s(g):
            return torch.einsum(plan.spec, g, plan.table).to(s.dtype)

        return Attach.apply(out, s, to_s)

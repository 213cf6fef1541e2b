"""Reads of a float table by an integer index, as the contraction of a one-hot with the table.

A read picks entries of a table W along one of its dims d by an index i. Written with the one-hot
Y of i over W's size K along d, every such read is

    out[p] = Σ_k Y[q(p), k] · W[p with its position along d replaced by k]

so ∂out/∂Y is W and the gradient reaching Y is a contraction of g with W (one ``einsum``). The
calls read this way (``read_of``), each with PyTorch's values and PyTorch's gradient to W:

| call                                               | read                                     |
|----------------------------------------------------|------------------------------------------|
| ``W.gather(d, i)``, ``torch.gather``               | out[p] = W[p, i[p] at d]                 |
| ``torch.take_along_dim(W, i, d)``                  | W and i broadcast, then gathered         |
| ``W[..., i, ...]`` with other integer index tensors | advanced indexing (numpy's rules): one   |
| (``y[torch.arange(B)[:, None], i]``) and slices    | index followed, the others W's positions |
| ``W.index_select(d, i)``, ``F.embedding(i, W)``    | ``W[:, ..., i]`` with i at d             |

``gather`` and ``take_along_dim`` read W[p, i[p]] at every position p of i; a dim along which i
repeats one value (``i[..., None].expand(..., D)``, a codebook's feature dim) is summed in the
contraction, so the one-hot has one row per read and not one per feature. With leading head or
batch dims (``W[None].expand(b, K, D).gather(1, i[..., None].expand(b, n, D))``, per-head
codebooks of shape (H, K, D)) the contraction is a batched ``g @ Wᵀ``.
"""

from __future__ import annotations

import string
from typing import NamedTuple

import torch
import torch.nn.functional as F

from surrogate.torch_calls import GATHERS, LOOKUPS, TAKE_ALONG, arg, first_arg, is_real

Tensor = torch.Tensor
LETTERS = string.ascii_letters
INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


class Read(NamedTuple):
    """A call read as ``W``'s entries picked along ``dim`` by ``idx`` (``gather``: ``key`` None)
    or by the advanced-indexing ``key`` (a tuple of full slices and integer tensors, one per dim
    of W read from the front)."""

    weight: Tensor
    dim: int | None
    idx: Tensor | None  # not ``index``: a field by that name would hide ``tuple.index``
    key: tuple | None
    source: Tensor | None = None  # the index as the call got it (``idx`` is it broadcast)


class Contraction(NamedTuple):
    """∂out/∂Y applied to g: ``torch.einsum(spec, g, table)``, for a one-hot Y of the followed
    index's elements ``rows`` (Y's shape: rows.shape + (K,), K = ``table``'s size along the read
    dim)."""

    spec: str
    table: Tensor
    rows: Tensor
    classes: int


def read_of(func, args: tuple, kwargs: dict) -> Read | None:
    """The read a call makes, normalised (see the module docstring); None for any other call or
    a form this does not cover (``out=``, ``F.embedding`` with ``max_norm``, a key holding
    ``None``, an ``int``, ``Ellipsis`` twice or a boolean mask)."""
    if "out" in kwargs:
        return None
    if func in GATHERS:
        weight, dim, index = first_arg(args, kwargs), arg(args, kwargs, 1, "dim"), None
        index = arg(args, kwargs, 2, "index")
        if arg(args, kwargs, 3, "sparse_grad", False):
            return None
        return gather_read(weight, dim, index)
    if func in TAKE_ALONG:
        weight, index = first_arg(args, kwargs), arg(args, kwargs, 1, "indices")
        dim = arg(args, kwargs, 2, "dim")
        if not (is_real(weight) and integer(index)):
            return None
        if dim is None:
            return gather_read(weight.reshape(-1), 0, index.reshape(-1), index)
        if not isinstance(dim, int) or not -weight.dim() <= dim < max(weight.dim(), 1):
            return None
        d = dim % weight.dim()
        try:
            shape = torch.broadcast_shapes(without(weight.shape, d), without(index.shape, d))
        except RuntimeError:
            return None
        return gather_read(
            weight.expand(shape[:d] + weight.shape[d : d + 1] + shape[d:]),
            d,
            index.expand(shape[:d] + index.shape[d : d + 1] + shape[d:]),
            index,
        )
    if func is F.embedding:
        index, weight = first_arg(args, kwargs), arg(args, kwargs, 1, "weight")
        if arg(args, kwargs, 3, "max_norm") is not None:
            return None
        return index_read(weight, (index,))
    if func in LOOKUPS:
        weight, dim, index = first_arg(args, kwargs), arg(args, kwargs, 1, "dim"), None
        index = arg(args, kwargs, 2, "index")
        if not (is_real(weight) and isinstance(dim, int) and -weight.dim() <= dim < weight.dim()):
            return None
        return index_read(weight, (slice(None),) * (dim % weight.dim()) + (index,))
    if func is Tensor.__getitem__:
        key = args[1] if len(args) > 1 else None
        return index_read(first_arg(args, kwargs), key if isinstance(key, tuple) else (key,))
    return None


def integer(t) -> bool:
    """An integer tensor (not bool): an index."""
    return isinstance(t, Tensor) and t.dtype in INTEGERS


def without(shape: torch.Size, d: int) -> torch.Size:
    return shape[:d] + shape[d + 1 :]


def gather_read(weight, dim, index, source=None) -> Read | None:
    if not (is_real(weight) and integer(index) and isinstance(dim, int)):
        return None
    if weight.dim() == 0 or index.dim() != weight.dim() or not -weight.dim() <= dim < weight.dim():
        return None
    d = dim % weight.dim()
    if any(index.shape[j] > weight.shape[j] for j in range(weight.dim()) if j != d):
        return None
    return Read(weight, d, index, None, index if source is None else source)


def index_read(weight, key: tuple) -> Read | None:
    """``W[key]``: slices are applied to W first; what is left is full slices and tensors."""
    if not is_real(weight) or weight.dim() == 0:
        return None
    if sum(k is Ellipsis for k in key) > 1:
        return None
    if Ellipsis in key:
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = weight.dim() - (len(key) - 1)
        key = key[:at] + (slice(None),) * fill + key[at + 1 :]
    if len(key) > weight.dim() or not any(isinstance(k, Tensor) for k in key):
        return None
    if not all(integer(k) or isinstance(k, slice) for k in key):
        return None
    if any(isinstance(k, slice) and k != slice(None) for k in key):
        weight = weight[tuple(k if isinstance(k, slice) else slice(None) for k in key)]
        key = tuple(slice(None) if isinstance(k, slice) else k for k in key)
    return Read(weight, None, None, key)


def followed_position(read: Read, followed) -> int | None:
    """The dim of W the followed index reads (``followed(t)``: whether t is one), if exactly one
    index of the read is followed."""
    if read.key is None:
        return read.dim if followed(read.source) else None
    found = [j for j, k in enumerate(read.key) if isinstance(k, Tensor) and followed(k)]
    return found[0] if len(found) == 1 else None


def contraction(read: Read, position: int, rows: Tensor) -> Contraction:
    """The contraction of a read whose followed index (at dim ``position`` of W) has ``rows``
    (one per element of the index: which row of the scores it comes from)."""
    if read.key is None:
        if read.idx is None or read.dim is None:
            raise ValueError("a read without a key is a gather: it has a dim and an index")
        rows = rows.reshape(-1) if read.idx.dim() != rows.dim() else rows
        return gather_contraction(read.weight, read.dim, read.idx, rows.expand(read.idx.shape))
    return index_contraction(read.weight, read.key, position, rows)


def repeats(rows: Tensor, j: int) -> bool:
    """Whether ``rows`` holds one value along dim j (an expanded or repeated index)."""
    if rows.shape[j] <= 1 or rows.stride(j) == 0:
        return True
    return bool((rows == rows.narrow(j, 0, 1)).all())


def gather_contraction(weight: Tensor, d: int, index: Tensor, rows: Tensor) -> Contraction:
    """out[p] = W[p, i[p] at d]: each dim j ≠ d of i is a batch dim (in Y) unless i repeats one
    value along it (a feature dim, summed)."""
    n = weight.dim()
    table = weight.detach()
    for j in range(n):
        if j != d and table.shape[j] != index.shape[j]:
            table = table.narrow(j, 0, index.shape[j])
    features = {j for j in range(n) if j != d and repeats(rows, j)}
    for j in range(n):
        if j != d and j not in features and table.stride(j) == 0:
            table = table.narrow(j, 0, 1)  # einsum broadcasts it
    g_labels = LETTERS[:n]
    t_labels = g_labels[:d] + "Z" + g_labels[d + 1 :]
    y_labels = "".join(c for j, c in enumerate(g_labels) if j not in features) + "Z"
    for j in sorted(features, reverse=True):
        rows = rows.select(j, 0)
    return Contraction(f"{g_labels},{t_labels}->{y_labels}", table, rows, weight.shape[d])


def index_contraction(weight: Tensor, key: tuple, d: int, rows: Tensor) -> Contraction:
    """out = W[key] by numpy's rules: the index tensors broadcast to P; their result dims stand
    where they stand in ``key`` if they are adjacent there, else first. The table is W with d
    moved last and indexed by the other tensors (P's dims where they are size 1 broadcast)."""
    tensors = [j for j, k in enumerate(key) if isinstance(k, Tensor)]
    shape_p = torch.broadcast_shapes(*(key[j].shape for j in tensors))
    slices = [j for j in range(weight.dim()) if j not in tensors]
    out_roles = layout(tensors, slices, len(shape_p), len(shape_p))
    others = [j for j in tensors if j != d]
    rest = key[:d] + key[d + 1 :]
    table = weight.detach().movedim(d, -1)
    if others:
        table = table[rest]
        shape_a = torch.broadcast_shapes(*(key[j].shape for j in others))
        positions = [j - (j > d) for j in others]
        kept = [j - (j > d) for j in slices]
        roles = layout(positions, kept, len(shape_a), len(shape_p))
        roles = [(r, j if r == "p" else slices[kept.index(j)]) for r, j in roles]
    else:
        roles = [("s", j) for j in slices]
    names = {role: LETTERS[i] for i, role in enumerate(dict.fromkeys(out_roles + roles))}
    g_labels = "".join(names[r] for r in out_roles)
    t_labels = "".join(names[r] for r in roles) + "Z"
    y_labels = "".join(names[("p", i)] for i in range(len(shape_p))) + "Z"
    spec = f"{g_labels},{t_labels}->{y_labels}"
    return Contraction(spec, table, rows.expand(shape_p), weight.shape[d])


def layout(tensors: list[int], slices: list[int], rank: int, full: int) -> list:
    """The dims of ``W[key]``: ("p", i) the broadcast index dims (right-aligned in a rank-``full``
    broadcast shape), ("s", j) the dims of W kept by a slice."""
    p = [("p", full - rank + i) for i in range(rank)]
    if tensors == list(range(tensors[0], tensors[-1] + 1)):
        before = [("s", j) for j in slices if j < tensors[0]]
        return before + p + [("s", j) for j in slices if j > tensors[-1]]
    return p + [("s", j) for j in slices]

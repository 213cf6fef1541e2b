"""Whether ``surrogate.intercept(argmax=...)`` follows an argmax index to where it becomes numbers,
so that audit names intercept as the remedy only where intercept revives the cut.

Intercept follows the index (``surrogate.intercept.index``) through shape ops and integer casts;
``F.one_hot`` makes it a one-hot, followed through shape ops, casts and arithmetic. It joins the
gradient at a read of a table (``surrogate.intercept.lookups.read_of``), a scatter of a one-hot
(``scatter_of``), or where the one-hot becomes numbers (a cast to a float dtype, arithmetic,
``torch.where``, ``masked_fill``, ``y[onehot.bool()] = v``). Any other call on the way
(``idx == e``, ``idx + offset``, ``index_add``) loses it, and so does the index of ``topk`` with
k > 1 from the start (intercept follows ``topk(1)``, an argmax): audit's remedy for that call site
says intercept cannot follow it.

The state of a tensor made from an index is ``INDEX``, ``ONE_HOT``, or the name of the call that
lost it (``lost(name)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from surrogate.intercept.index import scatter_of
from surrogate.intercept.lookups import followed_position, read_of
from surrogate.torch_calls import (
    ARITHMETIC,
    CASTS,
    MASKED_FILL,
    PUTS,
    SCATTERS,
    SHAPE_OPS,
    WHERE,
    first_arg,
)

Tensor = torch.Tensor
INDEX, ONE_HOT = "index", "one-hot"
JOINS = frozenset((*WHERE, *MASKED_FILL, Tensor.masked_fill_, *PUTS))


def lost(name: str) -> str:
    return f"lost at {name}"


def is_lost(state: str) -> bool:
    return state not in (INDEX, ONE_HOT)


def after(
    func, args: tuple, kwargs: dict, states: dict[int, str], name: str, floating: bool
) -> str:
    """The state of what a call makes from the tensors of ``states`` (id -> state) among its
    arguments; for a ``floating`` result, any state but a lost one means intercept joins the
    gradient there."""
    first = first_arg(args, kwargs)
    mine = states.get(id(first)) if isinstance(first, Tensor) else None
    if any(is_lost(s) for s in states.values()):
        return next(s for s in states.values() if is_lost(s))
    if mine == INDEX and func in SHAPE_OPS | CASTS and not floating:
        return INDEX
    if mine == INDEX and func is F.one_hot:
        return ONE_HOT
    if mine == ONE_HOT and func in SHAPE_OPS | CASTS:
        return ONE_HOT
    if ONE_HOT in states.values() and func in ARITHMETIC | JOINS:
        return ONE_HOT
    if floating and INDEX in states.values() and reads(func, args, kwargs, states):
        return INDEX
    return lost(name)


def reads(func, args: tuple, kwargs: dict, states: dict[int, str]) -> bool:
    """Whether the call is a read or a scatter that intercept joins at, by an index of
    ``states``."""
    if func in SCATTERS:
        found = scatter_of(args, kwargs)
        return found is not None and states.get(id(found[2])) == INDEX
    read = read_of(func, args, kwargs)
    return read is not None and followed_position(read, lambda t: id(t) in states) is not None

"""Hard ops as functions: the exact forward of ``surrogate.hardops``, the estimator's backward.

Every op runs through one ``autograd.Function``: the estimator's ``forward`` gives the output and
the tensors to save, its ``grad`` gives the backward. ``estimator`` is a name from
``surrogate.available(op)``, an object from ``surrogate.estimator(...)``, or (scalar ops) a callable
bump p; keyword parameters configure a name, e.g. ``step(x, "sigmoid", beta=8.0)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.torch_version import TorchVersion

from surrogate.dtypes import check_floating
from surrogate.estimators import Estimator, resolve
from surrogate.hardops import ROUND, SIGN, STEP, ArgmaxOp, check_dim_type, dim_error, dim_in_range

EstimatorLike = str | Estimator | Any


class HardOpFunction(torch.autograd.Function):
    """Exact forward from ``est.forward(op, x, relaxed)``, backward from ``est.grad``."""

    @staticmethod
    def forward(ctx, x, op, est, relaxed):
        out, saved = est.forward(op, x, relaxed)
        ctx.save_for_backward(*saved)
        ctx.op, ctx.est = op, est
        return out

    @staticmethod
    def backward(ctx, g):
        return ctx.est.grad(ctx.op, g, *ctx.saved_tensors), None, None, None


def torch_at_least(version: str, minimum: tuple[int, ...]) -> bool:
    """Whether the torch ``version`` (a ``torch.__version__`` string) is ``minimum`` or later.

    Compared as versions, never as strings ("2.10.0" is after "2.9.1"); a local suffix
    ("+cu130") is ignored and a pre-release of ``minimum`` ("2.14.0a0+git...") counts as before it.
    """
    return bool(TorchVersion(version) >= minimum)  # type: ignore[operator]


# torch.compile of torch 2.11 returns a zero gradient for a relaxed op (its smooth forward through
# this Function); 2.14 gets it right. Before 2.14 a relaxed op therefore runs eagerly under
# torch.compile, a graph break, rather than train on zeros (the safe side for a 2.14 pre-release).
COMPILES_RELAXED = torch_at_least(torch.__version__, (2, 14))


def apply(op, x: torch.Tensor, est: Estimator, relaxed: bool = False) -> torch.Tensor:
    """Run the hard op ``op`` with an already resolved estimator (what the modules call)."""
    check_floating(op.name, x)
    if relaxed and not COMPILES_RELAXED and torch.compiler.is_compiling():
        return _apply_eagerly(x, op, est, relaxed)
    return HardOpFunction.apply(x, op, est, relaxed)


def _apply_eagerly(x, op, est, relaxed):
    return HardOpFunction.apply(x, op, est, relaxed)


if not COMPILES_RELAXED:
    # Decorated only where it is needed: torch.compiler.disable imports torch._dynamo, seconds.
    _apply_eagerly = torch.compiler.disable(_apply_eagerly)


def step(
    x: torch.Tensor, estimator: EstimatorLike = "ste", *, relaxed: bool = False, **params: Any
) -> torch.Tensor:
    """Heaviside step, 1 where x > 0 else 0 (step(0) = 0), with the backward J·p(x), J = 1.

    ``relaxed=True`` replaces the forward by the bump's integral P(x).
    """
    return apply(STEP, x, resolve("step", estimator, params, relaxed), relaxed)


def sign(
    x: torch.Tensor, estimator: EstimatorLike = "ste", *, relaxed: bool = False, **params: Any
) -> torch.Tensor:
    """Binary sign, +1 where x >= 0 else −1 (never 0), with the backward J·p(x), J = 2.

    ``relaxed=True`` replaces the forward by 2·P(x) − 1.
    """
    return apply(SIGN, x, resolve("sign", estimator, params, relaxed), relaxed)


def round(  # noqa: A001  (the op is called round)
    x: torch.Tensor, estimator: EstimatorLike = "ste", *, relaxed: bool = False, **params: Any
) -> torch.Tensor:
    """``torch.round`` (half to even) with the backward p(r), r = x − (floor(x) + 1/2).

    ``relaxed=True`` replaces the forward by floor(x) + P(r).
    """
    return apply(ROUND, x, resolve("round", estimator, params, relaxed), relaxed)


def argmax(
    x: torch.Tensor,
    estimator: EstimatorLike = "ste",
    dim: int = -1,
    *,
    training: bool = True,
    relaxed: bool = False,
    **params: Any,
) -> torch.Tensor:
    """One-hot of ``torch.argmax(x, dim)`` in x's dtype (first index on ties), with the estimator's
    backward. ``gumbel`` and ``reinmax`` sample while ``training`` (as in ``F.dropout``) and take
    the plain argmax otherwise. ``relaxed=True`` replaces the forward by the smooth map
    (softmax(x/τ) for softmax). ``dim`` must be in ``[-x.dim(), x.dim())``, as for torch.argmax.
    """
    dim = check_dim_type("surrogate.argmax", dim)
    est = resolve("argmax", estimator, params, relaxed)
    if not dim_in_range(dim, x):
        raise dim_error("surrogate.argmax", dim, x)
    return apply(ArgmaxOp(dim, training), x, est, relaxed)

"""The hard ops' specs: exact forward, jump height, offset to the jump, and relaxed forward.

| op     | forward                               | jump J | offset r                        |
|--------|---------------------------------------|--------|---------------------------------|
| step   | 1 where x > 0, else 0                 | 1      | x                               |
| sign   | +1 where x >= 0, else −1              | 2      | x                               |
| round  | torch.round (half to even)            | 1      | x − (floor(x) + 1/2)            |
| argmax | one-hot of the first maximum on dim   | —      | —                               |

NaN in gives NaN out; ±inf give the limits. Forwards are computed in the input's dtype, exactly.
Each scalar op's formulas (``exact``, ``offset``, ``lift``) are written once; ``hard`` and ``relax``
run them eagerly for small tensors and as one fused kernel for large ones (``surrogate.fused``).

``exact`` and ``offset`` come in two forms with the same values bit for bit (a NaN's sign bit
aside). Traced by ``torch.compile`` (a fused kernel, or a caller's compiled model) they compare
and select, the cheapest vector code in a compiled loop. Eagerly they clamp and round instead:
``torch.where`` has no vectorized CPU kernel and costs ten times as much on the activations of a
small network.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import ClassVar

import torch

from surrogate import fused
from surrogate.dtypes import upcast


class ScalarOp:
    """An elementwise op that jumps by ``jump`` where ``offset(x)`` crosses 0."""

    name: ClassVar[str]
    jump: ClassVar[float]

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        """The hard forward's formula, exact in x's dtype."""
        raise NotImplementedError

    def hard(self, x: torch.Tensor) -> torch.Tensor:
        """The hard forward: ``exact(x)``, in one pass over memory for large tensors."""
        return fused.call(self.exact, x)

    def offset(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def lift(self, x: torch.Tensor, primitive) -> torch.Tensor:
        """The relaxed forward, given the bump's integral P."""
        raise NotImplementedError

    def smooth(self, x: torch.Tensor, est) -> torch.Tensor:
        """The relaxed forward's formula: ``lift`` computed in fp32 for fp16/bf16, in x's dtype."""
        return self.lift(upcast(x), est.primitive).to(x.dtype)

    def relax(self, x: torch.Tensor, est) -> torch.Tensor:
        """The relaxed forward, fused for large tensors where ``est.fusable``."""
        if est.fusable:
            return fused.call(self.smooth, x, est)
        return self.smooth(x, est)

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


class StepOp(ScalarOp):
    """step(x) = 1 where x > 0 else 0 (H(0) = 0); relaxed: P(x)."""

    name, jump = "step", 1.0

    def exact(self, x):
        if torch.compiler.is_compiling():
            return torch.where(x > 0, 1.0, torch.where(x <= 0, 0.0, x))
        # Clamped to [0, 1], x > 0 rounds up to 1 and x <= 0 stays 0 (abs turns -0 into 0); NaN
        # passes through.
        # In place after the first op: one new tensor, not three (each costs its allocation).
        return x.clamp(0, 1).ceil_().abs_()

    def lift(self, x, primitive):
        return primitive(x)


class SignOp(ScalarOp):
    """sign(x) = +1 where x >= 0 else −1 (never 0, unlike torch.sign); relaxed: 2·P(x) − 1."""

    name, jump = "sign", 2.0

    def exact(self, x):
        if torch.compiler.is_compiling():
            return torch.where(x >= 0, 1.0, torch.where(x < 0, -1.0, x))
        # Clamped to [-1, 0], x < 0 rounds down to -1 and x >= 0 (also -0) to 0; NaN passes through.
        return x.clamp(-1, 0).floor_().mul_(2).add_(1)  # in place after the first op, as step

    def lift(self, x, primitive):
        return 2 * primitive(x) - 1


class RoundOp(ScalarOp):
    """round(x) = torch.round(x), half to even; relaxed: floor(x) + P(r).

    The offset r = x − (floor(x) + 1/2) is the signed distance to the nearest rounding boundary;
    it is ±inf at ±inf, so bounded bumps give 0 there.
    """

    name, jump = "round", 1.0

    def exact(self, x):
        return torch.round(x)

    def offset(self, x):
        if torch.compiler.is_compiling():
            # abs(x) == inf rather than isinf: inductor's C++ loops vectorize a compare, not isinf.
            return torch.where(x.abs() == math.inf, x, x - x.floor() - 0.5)
        # floor(±inf) clamped to the largest finite value keeps x − floor(x) at ±inf for x = ±inf
        # (not inf − inf = NaN) and changes nothing for finite x.
        big = torch.finfo(x.dtype).max
        return torch.sub(x, x.floor().clamp_(-big, big)).sub_(0.5)

    def lift(self, x, primitive):
        return x.floor() + primitive(self.offset(x))


def check_dim_type(where: str, dim) -> int:
    """``dim`` as an int, or a TypeError naming ``where`` and the value (a bool is refused)."""
    try:
        if isinstance(dim, bool):
            raise TypeError
        return operator.index(dim)
    except TypeError:
        raise TypeError(f"{where}: dim must be an int, got {dim!r}") from None


def dim_in_range(dim: int, x: torch.Tensor) -> bool:
    """Whether ``dim`` names a dim of ``x``: -n <= dim < n with n = x.dim(), 1 for a 0-d tensor
    (as ``torch.argmax`` wraps it)."""
    n = x.dim() or 1
    return -n <= dim < n


def dim_error(where: str, dim: int, x: torch.Tensor) -> IndexError:
    """The IndexError for a ``dim`` outside ``x``'s range: names ``where``, the dim, the range."""
    n = x.dim() or 1
    return IndexError(
        f"{where}: dim={dim} is out of range for a {x.dim()}-d input of shape {tuple(x.shape)}; "
        f"choose from {-n} to {n - 1}"
    )


def argmax_index(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Index of the first maximum along ``dim``, kept as a size-1 dim (empty if ``dim`` is)."""
    if x.dim() > 0 and x.shape[dim] == 0:
        return torch.empty(x.shape, dtype=torch.long, device=x.device)
    return x.argmax(dim, keepdim=True)


def one_hot(index: torch.Tensor, like: torch.Tensor, dim: int) -> torch.Tensor:
    """One-hot of ``index`` along ``dim``, shaped and typed like ``like``."""
    return torch.zeros_like(like).scatter_(dim, index, 1.0)


def one_hot_argmax(x: torch.Tensor, dim: int, dtype: torch.dtype | None = None):
    """The exact argmax forward and its index: one-hot of the first maximum along ``dim``.

    A row holding NaN comes out all NaN (``torch.argmax`` ranks NaN highest, so the row's NaN is
    where it points).
    """
    index = argmax_index(x, dim)
    out = one_hot(index, x if dtype is None else x.to(dtype), dim)
    return out.masked_fill_(x.gather(dim, index).isnan(), float("nan")), index


@dataclasses.dataclass(frozen=True)
class ArgmaxOp:
    """argmax(x) = one-hot of the first maximum along ``dim``; relaxed: the estimator's smooth map.

    ``training`` selects sampling (``gumbel``, ``reinmax``) or the plain argmax.
    """

    dim: int = -1
    training: bool = True
    name: ClassVar[str] = "argmax"

    def hard(self, x):
        return one_hot_argmax(x, self.dim)[0]

    def relax(self, x, est):
        return est.smooth(upcast(x), self.dim).to(x.dtype)


STEP, SIGN, ROUND = StepOp(), SignOp(), RoundOp()

"""Smooth surrogates of a jump: unit-area bumps p(r) and their integrals P(r).

An op whose output jumps by J at c gets the surrogate derivative J·p(x − c): step uses p(x),
sign 2·p(x), round p(r) with r the signed distance to the nearest boundary k + 1/2. Relaxed mode
replaces the hard forward by the matching integral (P for step, 2P − 1 for sign). Each bump has unit
area, and its default parameter gives p(0) = 1. Formulas: SPEC section 3.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from surrogate.estimators.base import SCALAR_OPS, Estimator, param, register, upcast


class Bump(Estimator):
    """Base of the smooth estimators: saves the input once, computes J·p(offset(x)) in backward."""

    ops = SCALAR_OPS

    def bump(self, r: torch.Tensor) -> torch.Tensor:
        """p(r), the unit-area surrogate derivative."""
        raise NotImplementedError

    def primitive(self, r: torch.Tensor) -> torch.Tensor:
        """P(r) = ∫_{-∞}^{r} p, the smooth forward of relaxed mode."""
        raise NotImplementedError

    def relaxable(self, op_name: str) -> bool:
        return True

    def grad(self, op, g, x):
        d = self.bump(op.offset(upcast(x)))
        if op.jump != 1.0:
            d = d * op.jump
        return (g * d).to(g.dtype)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class ClippedSTE(Bump):
    """``clipped_ste``: p(r) = 1[|r| <= w] / (2w), P(r) = clamp((r + w) / (2w), 0, 1).

    The hardtanh straight-through estimator; for sign (J = 2) it is 1[|x| <= 1], the binarized
    networks' rule (Hubara et al. 2016, arXiv:1602.02830). Saves a one-byte mask, not the input.
    """

    name = "clipped_ste"
    width: float = param(1.0)

    def bump(self, r):
        return (r.abs() <= self.width).to(r.dtype) / (2 * self.width)

    def primitive(self, r):
        return ((r + self.width) / (2 * self.width)).clamp(0.0, 1.0)

    def save(self, op, x):
        return (op.offset(upcast(x)).abs() <= self.width,)

    def grad(self, op, g, inside):
        return torch.where(inside, g, 0.0) * (op.jump / (2 * self.width))


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Sigmoid(Bump):
    """``sigmoid``: p(r) = β·σ(βr)·(1 − σ(βr)), P(r) = σ(βr).

    SpikingJelly's Sigmoid; snnTorch's sigmoid (unnormalized there, slope 25). Computed as
    β·σ(βr)·σ(−βr), which keeps its accuracy in the tails.
    """

    name = "sigmoid"
    beta: float = param(4.0)

    def bump(self, r):
        y = self.beta * r
        return self.beta * torch.sigmoid(y) * torch.sigmoid(-y)

    def primitive(self, r):
        return torch.sigmoid(self.beta * r)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class FastSigmoid(Bump):
    """``fast_sigmoid``: p(r) = (β/2) / (1 + β|r|)², P(r) = (1 + βr / (1 + β|r|)) / 2.

    SuperSpike, Zenke & Ganguli 2018, Neural Computation 30(6).
    """

    name = "fast_sigmoid"
    beta: float = param(2.0)

    def bump(self, r):
        return (self.beta / 2) / (1 + self.beta * r.abs()).square()

    def primitive(self, r):
        # As 1/2 ± (1/2 − tail): βr / (1 + β|r|) would be inf/inf = NaN once βr overflows.
        tail = 0.5 / (1 + self.beta * r.abs())  # ∫ p beyond |r|, 0 at ±inf
        return torch.where(r < 0, tail, 1 - tail)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Atan(Bump):
    """``atan``: p(r) = (α/2) / (1 + (π·α·r/2)²), P(r) = 1/2 + atan(π·α·r/2) / π.

    snnTorch's and SpikingJelly's ATan (Fang et al. 2021, arXiv:2007.05785).
    """

    name = "atan"
    alpha: float = param(2.0)

    def bump(self, r):
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * r).square())

    def primitive(self, r):
        return 0.5 + torch.atan(math.pi / 2 * self.alpha * r) / math.pi


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Tanh(Bump):
    """``tanh``: p(r) = (β/2)·(1 − tanh²(βr)), P(r) = (1 + tanh(βr)) / 2.

    Norse's tanh surrogate. Computed as (β/2) / cosh²(βr), exact in the tails.
    """

    name = "tanh"
    beta: float = param(2.0)

    def bump(self, r):
        return (self.beta / 2) / torch.cosh(self.beta * r).square()

    def primitive(self, r):
        return (1 + torch.tanh(self.beta * r)) / 2


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Triangle(Bump):
    """``triangle``: p(r) = max(0, 1 − |r|/w) / w, P(r) = 1/2 + sgn(r)·(1 − (1 − min(|r|/w, 1))²)/2.

    For sign (J = 2) with w = 1 it is Bi-Real Net's ApproxSign derivative 2 − 2|x|
    (Liu et al. 2018, arXiv:1808.00278).
    """

    name = "triangle"
    width: float = param(1.0)

    def bump(self, r):
        return (1 - r.abs() / self.width).clamp(min=0.0) / self.width

    def primitive(self, r):
        u = (r.abs() / self.width).clamp(max=1.0)
        return 0.5 + torch.copysign(1 - (1 - u).square(), r) / 2


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Gaussian(Bump):
    """``gaussian``: p(r) = exp(−r²/(2σ²)) / (σ√(2π)), P(r) = (1 + erf(r / (σ√2))) / 2.

    SpikingJelly's Erf, sinabs' Gaussian. Default σ = 1/√(2π), so that p(0) = 1.
    """

    name = "gaussian"
    sigma: float = param(1 / math.sqrt(2 * math.pi))

    def bump(self, r):
        return torch.exp(-(r / self.sigma).square() / 2) / (self.sigma * math.sqrt(2 * math.pi))

    def primitive(self, r):
        return (1 + torch.erf(r / (self.sigma * math.sqrt(2)))) / 2


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Exponential(Bump):
    """``exponential``: p(r) = (α/2)·exp(−α|r|), P(r) = 1/2 + sgn(r)·(1 − exp(−α|r|))/2.

    SpikingJelly's PiecewiseExp (Shrestha & Orchard 2018, SLAYER).
    """

    name = "exponential"
    alpha: float = param(2.0)

    def bump(self, r):
        return (self.alpha / 2) * torch.exp(-self.alpha * r.abs())

    def primitive(self, r):
        return 0.5 + torch.copysign(1 - torch.exp(-self.alpha * r.abs()), r) / 2


# Beyond |βr| = 800 every term of the swish bump underflows to 0 even in float64; clamping there
# turns the ±inf·0 of an infinite input into the limit 0 (bump) and 0 or 1 (primitive).
_SWISH_CLAMP = 800.0


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Swish(Bump):
    """``swish``: p(r) = (β/2)·(2 − βr·tanh(βr/2)) / (1 + cosh(βr)), P(r) = σ(βr)·(1 + βr·σ(−βr)).

    The derivative of larq's SwishSign (Darabi et al. 2018, arXiv:1812.11800; β = 5 there), halved
    to unit area. Computed as β·(2 − y·tanh(y/2))·σ(y)·σ(−y) with y = βr. Not monotone: p < 0 for
    |βr| > 2.4.
    """

    name = "swish"
    beta: float = param(2.0)

    def bump(self, r):
        y = (self.beta * r).clamp(-_SWISH_CLAMP, _SWISH_CLAMP)
        return self.beta * (2 - y * torch.tanh(y / 2)) * torch.sigmoid(y) * torch.sigmoid(-y)

    def primitive(self, r):
        y = (self.beta * r).clamp(-_SWISH_CLAMP, _SWISH_CLAMP)
        return torch.sigmoid(y) * (1 + y * torch.sigmoid(-y))


@dataclasses.dataclass(frozen=True, repr=False)
class Custom(Bump):
    """A user-supplied bump: ``estimator(p)`` or ``estimator(p, integral=P)``.

    ``p`` maps a tensor of offsets r to the surrogate derivative p(r) (give it unit area to compare
    fairly with the catalogue); the optional ``integral`` P enables relaxed mode. Both receive fp32
    for fp16/bf16 inputs. A custom estimator pickles when ``p`` does (a module-level function).
    """

    name = "custom"
    p: Callable[[torch.Tensor], torch.Tensor]
    integral: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self):
        for field, fn in (("p", self.p), ("integral", self.integral)):
            if not (callable(fn) or (field == "integral" and fn is None)):
                raise ValueError(f"custom: {field} must be a callable tensor -> tensor, got {fn!r}")

    def bump(self, r):
        return self.p(r)

    def primitive(self, r):
        return self.integral(r)

    def relaxable(self, op_name: str) -> bool:
        return self.integral is not None

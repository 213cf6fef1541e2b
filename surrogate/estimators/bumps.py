"""Smooth surrogates of a jump: unit-area bumps p(r) and their integrals P(r).

An op whose output jumps by J at c gets the surrogate derivative J·p(x − c): step uses p(x),
sign 2·p(x), round p(r) with r the signed distance to the nearest boundary k + 1/2. Relaxed mode
replaces the hard forward by the matching integral (P for step, 2P − 1 for sign). Each bump has unit
area, and its default parameter gives p(0) = 1.

The backward's formula ``surrogate_grad`` runs eagerly for small tensors and as one fused kernel for
large ones (``surrogate.fused``). Each bump is written in few elementwise ops, J folded into its
constant, and out of place, so a ``create_graph`` backward can differentiate it again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from surrogate import fused
from surrogate.dtypes import upcast
from surrogate.estimators.base import SCALAR_OPS, Estimator, param, register


class Bump(Estimator):
    """Base of the smooth estimators: saves the input once, computes J·p(offset(x)) in backward."""

    ops = SCALAR_OPS
    relaxable = True
    fusable = True

    def bump(self, r: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """scale·p(r), with p the unit-area surrogate derivative."""
        raise NotImplementedError

    def primitive(self, r: torch.Tensor) -> torch.Tensor:
        """P(r) = ∫_{-∞}^{r} p, the smooth forward of relaxed mode."""
        raise NotImplementedError

    def grad(self, op, g, x):
        if self.fusable:
            return fused.call(self.surrogate_grad, op, g, x)
        return self.surrogate_grad(op, g, x)

    def surrogate_grad(self, op, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The backward's formula g·J·p(offset(x)), in fp32 for fp16/bf16, returned in g's dtype."""
        return (g * self.bump(op.offset(upcast(x)), op.jump)).to(g.dtype)

    def with_peak(self, peak: float) -> Bump:
        """The same shape rescaled to the height p(0) = ``peak``: k·p(k·r) with k = peak / p(0),
        so ``peak`` times as tall and 1/peak times as wide as at the default (every default has
        p(0) = 1 but clipped_ste's, 1/2). Each bump's one parameter sets its scale: α or β grow
        with k, a width or σ shrink, so ``estimator("atan").with_peak(4)`` is
        ``estimator("atan", alpha=8.0)``. Zenke & Vogels (Neural Computation 33(4), 2021)
        compare surrogates by this scale."""
        if not (isinstance(peak, (int, float)) and not isinstance(peak, bool)) or not (
            0 < peak < math.inf
        ):
            raise ValueError(f"{self.name}: peak must be a finite number > 0, got {peak!r}")
        names = self.param_names
        if len(names) != 1:
            raise ValueError(
                f"{self.name}: with_peak rescales a bump of one scale parameter; this one has "
                f"{len(names)} ({', '.join(names) or 'a function of yours'})"
            )
        (name,) = names
        value = getattr(self, name)
        zero = torch.zeros((), dtype=torch.float64)
        height = float(self.bump(zero))
        grows = float(dataclasses.replace(self, **{name: 2 * value}).bump(zero)) > height
        k = peak / height
        return dataclasses.replace(self, **{name: value * k if grows else value / k})


def _logistic(r: torch.Tensor, k: float, c: float) -> torch.Tensor:
    """c·e/(1 + e)² with e = exp(−k·|r|), which is c·σ(kr)·σ(−kr): one exp, exact in the tails
    (e <= 1, so nothing overflows), 0 at ±inf, NaN at NaN."""
    e = torch.exp(r.abs() * -k)
    return c * e / (1 + e).square()


@register
@dataclasses.dataclass(frozen=True, repr=False)
class ClippedSTE(Bump):
    """``clipped_ste``: p(r) = 1[|r| <= w] / (2w), P(r) = clamp((r + w) / (2w), 0, 1).

    The hardtanh straight-through estimator; for sign (J = 2) it is 1[|x| <= 1], the binarized
    networks' rule (Hubara et al. 2016, arXiv:1602.02830). Saves a one-byte mask, not the input.
    """

    name = "clipped_ste"
    width: float = param(1.0)

    def bump(self, r, scale=1.0):
        return (r.abs() <= self.width).to(r.dtype) * (scale / (2 * self.width))

    def primitive(self, r):
        return ((r + self.width) / (2 * self.width)).clamp(0.0, 1.0)

    def forward(self, op, x, relaxed):
        if relaxed:
            return op.relax(x, self), self.save(op, x)
        out, inside = fused.call(self.hard_and_inside, op, x)  # one pass: output and mask
        return out, (inside,)

    def save(self, op, x):
        return (fused.call(self.inside, op, x),)

    def inside(self, op, x):
        """The mask 1[|offset(x)| <= w] as uint8, one byte per element. Through x's dtype, not
        straight from bool: inductor's C++ loops convert bool to uint8 element by element."""
        x = upcast(x)
        return op.offset(x).abs().le_(self.width).to(torch.uint8)  # le_: 1.0/0.0 in x's dtype

    def hard_and_inside(self, op, x):
        return op.exact(x), self.inside(op, x)

    def grad(self, op, g, inside):
        return fused.call(self.masked_grad, op, g, inside)

    def masked_grad(self, op, g, inside):
        """The backward's formula g·J·p = (g·mask)·J/(2w), a product like every bump's backward:
        g·mask is exact, so the result is rounded once, in any dtype.

        No comparison with the mask: under a caller's ``torch.compile`` the partitioner would move
        that comparison into the forward and save its result as bool, which inductor's C++ loops
        handle element by element.
        """
        # mask·g is g·mask exactly; in place after the cast: one new tensor, not three.
        return inside.to(g.dtype).mul_(g).mul_(op.jump / (2 * self.width))


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Sigmoid(Bump):
    """``sigmoid``: p(r) = β·σ(βr)·(1 − σ(βr)), P(r) = σ(βr).

    SpikingJelly's Sigmoid; snnTorch's sigmoid (unnormalized there, slope 25). Computed as
    β·σ(βr)·σ(−βr) = β·e/(1 + e)², e = exp(−β|r|), which keeps its accuracy in the tails.
    """

    name = "sigmoid"
    beta: float = param(4.0)

    def bump(self, r, scale=1.0):
        return _logistic(r, self.beta, self.beta * scale)

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

    def bump(self, r, scale=1.0):
        return (self.beta / 2 * scale) / (1 + self.beta * r.abs()).square()

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

    def bump(self, r, scale=1.0):
        return (self.alpha / 2 * scale) / (1 + (math.pi / 2 * self.alpha * r).square())

    def primitive(self, r):
        return 0.5 + torch.atan(math.pi / 2 * self.alpha * r) / math.pi


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Tanh(Bump):
    """``tanh``: p(r) = (β/2)·(1 − tanh²(βr)), P(r) = (1 + tanh(βr)) / 2.

    Norse's tanh surrogate. Computed as (β/2) / cosh²(βr) = 2β·e/(1 + e)², e = exp(−2β|r|), exact
    in the tails.
    """

    name = "tanh"
    beta: float = param(2.0)

    def bump(self, r, scale=1.0):
        return _logistic(r, 2 * self.beta, 2 * self.beta * scale)

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

    def bump(self, r, scale=1.0):
        return (1 - r.abs() / self.width).clamp(min=0.0) * (scale / self.width)

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

    def bump(self, r, scale=1.0):
        peak = scale / (self.sigma * math.sqrt(2 * math.pi))
        return torch.exp(r.square() * (-0.5 / self.sigma**2)) * peak

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

    def bump(self, r, scale=1.0):
        return torch.exp(r.abs() * -self.alpha) * (self.alpha / 2 * scale)

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
    to unit area. With a = |βr| and e = exp(−a), σ(βr)·σ(−βr) = e/(1 + e)² and βr·tanh(βr/2) =
    a·(1 − e)/(1 + e), so p = β·e·(2(1 + e) − a(1 − e)) / (1 + e)³: one exp. Not monotone: p < 0
    for |βr| > 2.4.
    """

    name = "swish"
    beta: float = param(2.0)

    def bump(self, r, scale=1.0):
        a = (self.beta * r).abs().clamp(max=_SWISH_CLAMP)
        e = torch.exp(-a)
        s = 1 + e
        return (self.beta * scale) * e * (2 * s - a * (1 - e)) / s.pow(3)

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
    fusable = False  # a user's function may not trace; it runs eagerly
    p: Callable[[torch.Tensor], torch.Tensor]
    integral: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self):
        for field, fn in (("p", self.p), ("integral", self.integral)):
            if not (callable(fn) or (field == "integral" and fn is None)):
                raise ValueError(f"custom: {field} must be a callable tensor -> tensor, got {fn!r}")

    def bump(self, r, scale=1.0):
        p = self.p(r)
        return p if scale == 1 else p * scale

    def primitive(self, r):
        return self.integral(r)

    @property
    def relaxable(self) -> bool:  # type: ignore[override]  # per instance: with an integral
        return self.integral is not None

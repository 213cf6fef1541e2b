"""Estimators for argmax, whose forward is the one-hot of the largest logit along ``dim``.

J(p) = diag(p) − p·pᵀ is the softmax Jacobian; J(p)·g = p ⊙ (g − ⟨p, g⟩).
"""

from __future__ import annotations

import dataclasses

import torch

from surrogate.dtypes import upcast
from surrogate.estimators.base import ARGMAX_OPS, Estimator, param, register
from surrogate.hardops import argmax_index, one_hot, one_hot_argmax


def gumbel_like(x: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise −log(−log U), U ~ U(0, 1) clamped away from 0 so it is never ±inf."""
    u = torch.rand_like(x).clamp_(min=torch.finfo(x.dtype).tiny)
    return -torch.log(-torch.log(u))


def limit_rows(z: torch.Tensor, dim: int) -> torch.Tensor:
    """``z`` with each row whose maximum is ±inf set to 0 at its first maximum and −inf elsewhere.

    Softmax and sparsemax of such a row are then its one-hot, the limit of one logit growing
    without bound, with Jacobian 0, instead of NaN (inf − inf). Other rows, NaN ones included,
    are left as they are.
    """
    if z.numel() == 0:
        return z
    index = argmax_index(z, dim)
    limit = torch.full_like(z, float("-inf")).scatter_(dim, index, 0.0)
    return torch.where(z.amax(dim, keepdim=True).isinf(), limit, z)


def stable_softmax(z: torch.Tensor, dim: int) -> torch.Tensor:
    """``torch.softmax`` with rows holding ±inf taken at their limit (see ``limit_rows``)."""
    return torch.softmax(limit_rows(z, dim), dim)


def softmax_jvp(p: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """J(p)·g = p ⊙ (g − ⟨p, g⟩) along ``dim``."""
    return p * (g - (p * g).sum(dim, keepdim=True))


def sparsemax(z: torch.Tensor, dim: int) -> torch.Tensor:
    """Euclidean projection of ``z`` onto the simplex along ``dim``.

    Martins & Astudillo 2016, arXiv:1602.02068.
    """
    n = z.shape[dim]
    if n == 0:
        return z.clone()
    z = limit_rows(z, dim)
    zs = z.sort(dim, descending=True).values
    cumsum = zs.cumsum(dim)
    shape = [1] * z.dim()
    shape[dim] = n
    k = torch.arange(1, n + 1, dtype=z.dtype, device=z.device).view(shape)
    support = (1 + k * zs > cumsum).sum(dim, keepdim=True).clamp_(min=1)
    threshold = (cumsum.gather(dim, support - 1) - 1) / support.to(z.dtype)
    return (z - threshold).clamp_(min=0.0)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Softmax(Estimator):
    """``softmax``: backward J(softmax(x/τ))·g / τ; relaxed forward softmax(x/τ).

    The straight-through softmax estimator (Bengio et al. 2013; Jang et al. 2017 without noise).
    """

    name = "softmax"
    ops = ARGMAX_OPS
    relaxable = True
    tau: float = param(1.0)

    def smooth(self, x, dim):
        return stable_softmax(x / self.tau, dim)

    def grad(self, op, g, z):
        p = self.smooth(upcast(z), op.dim)
        return (softmax_jvp(p, g, op.dim) / self.tau).to(g.dtype)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Gumbel(Softmax):
    """``gumbel``: straight-through Gumbel-softmax (Jang, Gu & Poole 2017, arXiv:1611.01144).

    Training forward one-hot(argmax(x + G)), G standard Gumbel noise, a sample of Cat(softmax(x));
    backward J(softmax((x + G)/τ))·g / τ. In eval the forward is the plain argmax (G = 0). Relaxed
    forward softmax((x + G)/τ). Saves the perturbed logits x + G once.
    """

    name = "gumbel"
    stochastic = True

    def forward(self, op, x, relaxed):
        z = upcast(x)
        if op.training:
            z = z + gumbel_like(z)
        out = self.smooth(z, op.dim) if relaxed else one_hot_argmax(z, op.dim)[0]
        return out.to(x.dtype), (z.to(x.dtype),)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class ReinMax(Estimator):
    """``reinmax``: ReinMax, Liu et al. 2023 (arXiv:2304.08612), second-order accurate.

    Training forward samples D ~ Cat(softmax(x)) (eval: D = one-hot(argmax x)); with
    π₀ = softmax(x) and π₁ = (D + softmax(x/τ)) / 2 the gradient is 2·J(π₁)·g − ½·J(π₀)·g.
    τ >= 1 as in the paper. Saves the input and the sampled index.
    """

    name = "reinmax"
    ops = ARGMAX_OPS
    stochastic = True
    tau: float = param(1.0, above=1.0, at_least=True)

    def forward(self, op, x, relaxed):
        z = upcast(x)
        if op.training:
            z = z + gumbel_like(z)
        out, index = one_hot_argmax(z, op.dim, x.dtype)
        return out, (x, index)

    def grad(self, op, g, x, index):
        x = upcast(x)
        pi0 = stable_softmax(x, op.dim)
        pi1 = (one_hot(index, x, op.dim) + stable_softmax(x / self.tau, op.dim)) / 2
        return (2 * softmax_jvp(pi1, g, op.dim) - softmax_jvp(pi0, g, op.dim) / 2).to(g.dtype)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Sparsemax(Estimator):
    """``sparsemax``: backward is the Jacobian of sparsemax(x/τ), (g − mean_S(g))/τ on its support S
    and 0 off it; relaxed forward sparsemax(x/τ). Martins & Astudillo 2016, arXiv:1602.02068.
    """

    name = "sparsemax"
    ops = ARGMAX_OPS
    relaxable = True
    tau: float = param(1.0)

    def smooth(self, x, dim):
        return sparsemax(x / self.tau, dim)

    def grad(self, op, g, x):
        gc = upcast(g)
        support = (self.smooth(upcast(x), op.dim) > 0).to(gc.dtype)
        mean = (gc * support).sum(op.dim, keepdim=True) / support.sum(op.dim, keepdim=True)
        return ((gc - mean) * support / self.tau).to(g.dtype)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Perturbed(Estimator):
    """``perturbed``: perturbed argmax with Gaussian noise (Berthet et al. 2020, arXiv:2002.08676).

    Gradient (1/(σM))·Σₘ Zₘ·⟨one-hot(argmax(x + σZₘ)), g⟩ with M fresh standard normal draws Zₘ,
    taken from the global RNG in backward (so memory stays at one input's worth, not M).
    """

    name = "perturbed"
    ops = ARGMAX_OPS
    sigma: float = param(1.0)
    samples: int = param(16, above=1, at_least=True, integer=True)

    def grad(self, op, g, x):
        x, gc = upcast(x), upcast(g)
        total = torch.zeros_like(x)
        for _ in range(self.samples):
            z = torch.randn_like(x)
            total += z * gc.gather(op.dim, argmax_index(x + self.sigma * z, op.dim))
        return (total / (self.sigma * self.samples)).to(g.dtype)

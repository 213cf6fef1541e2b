"""Independent float64 references for the argmax op and its estimators (SPEC sections 2 and 3).

Nothing here imports or copies ``surrogate``. Every helper works along ``dim`` and returns float64:

    one-hot       1 at the first maximum along dim (found by comparing with the row maximum)
    softmax       exp(z − max z) / Σ exp(z − max z)
    J(p)·g        the explicit matrix diag(p) − p·pᵀ times g
    sparsemax     Euclidean projection onto the simplex: threshold by bisection, then exact on its
                  support (a different algorithm from the sort-based one of Martins & Astudillo
                  2016), checked against a brute-force enumeration of supports on tiny inputs
    reinmax       2·J(π₁)·g − ½·J(π₀)·g, π₀ = softmax(x), π₁ = (D + softmax(x/τ))/2
    perturbed     (1/(σM))·Σₘ Zₘ·⟨one-hot(argmax(x + σZₘ)), g⟩ for given draws Zₘ
"""

from __future__ import annotations

import itertools
import math

import torch


def one_hot(x: torch.Tensor, dim: int) -> torch.Tensor:
    """One-hot of the first maximum of ``x`` along ``dim`` (no NaN in ``x``), in float64."""
    z = x.detach().double().movedim(dim, -1)
    if z.numel() == 0:
        return torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    n = z.shape[-1]
    pos = torch.arange(n, device=z.device)
    first = torch.where(z == z.amax(-1, keepdim=True), pos, n).amin(-1, keepdim=True)
    return (pos == first).double().movedim(-1, dim)


def softmax(z: torch.Tensor, dim: int) -> torch.Tensor:
    """exp(z − max z) / Σ exp(z − max z) along ``dim`` in float64 (differentiable)."""
    z = z.double()
    e = torch.exp(z - z.amax(dim, keepdim=True).detach())
    return e / e.sum(dim, keepdim=True)


def softmax_jacobian_matrix(p: torch.Tensor) -> torch.Tensor:
    """J(p) = diag(p) − p·pᵀ over the last dim, as a (..., n, n) matrix."""
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def jvp(jacobian: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """``jacobian`` (..., n, n) over ``dim`` moved last, applied to ``g`` along ``dim``."""
    gl = g.detach().double().movedim(dim, -1).unsqueeze(-1)
    return (jacobian @ gl).squeeze(-1).movedim(-1, dim)


def softmax_jvp(p: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """J(p)·g along ``dim``."""
    return jvp(softmax_jacobian_matrix(p.detach().double().movedim(dim, -1)), g, dim)


def sparsemax(z: torch.Tensor, dim: int) -> torch.Tensor:
    """Projection of ``z`` onto the probability simplex along ``dim``, in float64.

    The threshold t solves Σ max(z − t, 0) = 1; it is bracketed in [max z − 1, max z] and bisected,
    then made exact on the support S = {z > t}: t = (Σ_S z − 1)/|S|. Autograd through this gives the
    sparsemax Jacobian (the support is a constant mask).
    """
    z = z.double().movedim(dim, -1)
    with torch.no_grad():
        hi = z.amax(-1, keepdim=True)
        lo = hi - 1
        for _ in range(200):
            mid = (lo + hi) / 2
            enough = (z - mid).clamp_min(0).sum(-1, keepdim=True) >= 1
            lo, hi = torch.where(enough, mid, lo), torch.where(enough, hi, mid)
        support = z > lo
    t = (torch.where(support, z, 0.0).sum(-1, keepdim=True) - 1) / support.sum(-1, keepdim=True)
    return torch.where(support, z - t, torch.zeros_like(z)).clamp_min(0).movedim(-1, dim)


def sparsemax_brute_force(z: torch.Tensor) -> torch.Tensor:
    """Simplex projection of a 1-D ``z`` by trying every support S: p = z − (Σ_S z − 1)/|S| on S,
    0 off S; the feasible (p >= 0) candidate nearest to ``z`` is the projection."""
    z = z.double()
    best = (math.inf, None)
    for k in range(1, len(z) + 1):
        for subset in itertools.combinations(range(len(z)), k):
            idx = list(subset)
            p = torch.zeros_like(z)
            p[idx] = z[idx] - (z[idx].sum() - 1) / k
            distance = float(((p - z) ** 2).sum())
            if (p >= 0).all() and distance < best[0]:
                best = (distance, p)
    return best[1]


def sparsemax_jvp(x: torch.Tensor, g: torch.Tensor, dim: int, tau: float) -> torch.Tensor:
    """Jacobian of x ↦ sparsemax(x/τ) times g: (diag(s) − s·sᵀ/|S|)·g / τ, s the support mask."""
    s = (sparsemax(x.detach().double() / tau, dim) > 0).double().movedim(dim, -1)
    matrix = torch.diag_embed(s) - s.unsqueeze(-1) * s.unsqueeze(-2) / s.sum(-1)[..., None, None]
    return jvp(matrix, g, dim) / tau


def reinmax_grad(x, g, sample, tau: float, dim: int) -> torch.Tensor:
    """ReinMax (Liu et al. 2023): 2·J(π₁)·g − ½·J(π₀)·g.

    π₀ = softmax(x), π₁ = (D + softmax(x/τ))/2, D the one-hot ``sample``.
    """
    x = x.detach().double()
    pi0 = softmax(x, dim)
    pi1 = (sample.detach().double() + softmax(x / tau, dim)) / 2
    return 2 * softmax_jvp(pi1, g, dim) - softmax_jvp(pi0, g, dim) / 2


def grad(name: str, params: dict, x: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """The gradient of the deterministic estimators (gumbel, reinmax: eval mode) from SPEC §3."""
    tau = params.get("tau", 1.0)
    x64 = x.detach().double()
    if name == "none":
        return torch.zeros_like(x64)
    if name == "ste":
        return g.detach().double()
    if name in ("softmax", "gumbel"):
        return softmax_jvp(softmax(x64 / tau, dim), g, dim) / tau
    if name == "sparsemax":
        return sparsemax_jvp(x64, g, dim, tau)
    if name == "reinmax":
        return reinmax_grad(x64, g, one_hot(x64, dim), tau, dim)
    raise ValueError(name)


def perturbed_grad(x, g, draws, sigma: float, dim: int) -> torch.Tensor:
    """(1/(σM))·Σₘ Zₘ·g[argmax(x + σZₘ)] for the given draws Zₘ.

    ``x`` is the logits in the precision the perturbed point x + σZₘ is formed in (the sample); the
    sum itself is taken in float64.
    """
    total = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    g64 = g.detach().double()
    for z in draws:
        hit = one_hot(x + sigma * z, dim)
        total += z.double() * (hit * g64).sum(dim, keepdim=True)
    return total / (sigma * len(draws))


def normal_pdf(t: float) -> float:
    return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def normal_cdf(t: float) -> float:
    return 0.5 * (1 + math.erf(t / math.sqrt(2)))

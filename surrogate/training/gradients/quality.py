"""How close each argmax estimator's gradient is to the exact gradient of an expected loss.

For categorical latents z (``latents`` groups of ``categories``, one-hot) drawn from
q = softmax(θ) per group and a loss f(z) per example, the gradient an estimator should estimate is

    ∇θ E_{z~q}[f(z)],

whose exact value is a sum over all K^n outcomes (``exact_gradient``: Σ_z ∇θ q(z) f(z)) where
that is small enough to enumerate, and otherwise the mean of many draws of the local expectation
(``local_gradient``: for each group i, Σ_k ∇θ_i q_i(k) f(z with z_i = k), the other groups drawn;
unbiased, as in Titsias & Lázaro-Gredilla 2015). Each estimator's gradient is taken as a network
takes it: z = one-hot(argmax(θ + G)) through ``surrogate.argmax`` with the estimator, G Gumbel
noise (drawn by ``gumbel`` and ``reinmax`` themselves). Over D draws g_1..g_D, against the
reference g*:

- ``cosine``: the mean of cos(g_d, g*), what one training step sees;
- ``bias``: ‖mean_d g_d − g*‖ / ‖g*‖, the relative bias of the mean estimate;
- ``spread``: sqrt(Σ Var_d g_d) / ‖g*‖, the relative standard deviation of one draw.

The measures of Liu et al. 2023 (ReinMax, arXiv:2304.08612, section 6) on their MNIST-VAE.
``python -m surrogate.training.gradients OUT`` writes the committed report (``report``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch

import surrogate
from surrogate.training.models.cat_vae import gumbel_noise

Loss = Callable[[torch.Tensor], torch.Tensor]  # one-hot z (B, n, K) -> per-example loss (B,)
ENUMERABLE = 1 << 16  # outcomes per example that exact_gradient sums at most


def all_codes(latents: int, categories: int) -> torch.Tensor:
    """Every one-hot code, (K^n, n, K), in float64."""
    if categories**latents > ENUMERABLE:
        raise ValueError(
            f"{latents} latents x {categories} categories have {categories**latents} outcomes; "
            f"exact_gradient sums at most {ENUMERABLE}: use local_gradient"
        )
    index = torch.tensor(list(itertools.product(range(categories), repeat=latents)))
    return torch.nn.functional.one_hot(index, categories).double()


def exact_gradient(logits: torch.Tensor, loss: Loss) -> torch.Tensor:
    """∇θ E_{z~softmax(θ)}[loss(z)] summed over the batch, by enumeration: (B, n, K) float64."""
    theta = logits.detach().double().requires_grad_()
    batch, latents, categories = theta.shape
    codes = all_codes(latents, categories)
    with torch.no_grad():  # f(z) per example and code: (B, K^n)
        values = torch.stack([loss(code.expand(batch, -1, -1)).double() for code in codes], 1)
    log_q = theta.log_softmax(-1)  # log q(z) = Σ_i ⟨z_i, log q_i⟩
    log_prob = torch.einsum("bnk,cnk->bc", log_q, codes)
    (log_prob.exp() * values).sum().backward()
    return theta.grad


def local_gradient(logits: torch.Tensor, loss: Loss, draws: int, seed: int = 0) -> torch.Tensor:
    """The mean over ``draws`` of the local-expectation estimate of the same gradient (unbiased;
    n·K loss evaluations a draw): (B, n, K) float64."""
    theta = logits.detach().double()
    batch, latents, categories = theta.shape
    q = theta.softmax(-1)
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros_like(theta)
    eye = torch.eye(categories, dtype=theta.dtype)
    for _ in range(draws):
        z = torch.nn.functional.one_hot(
            (theta + gumbel_noise(theta, generator)).argmax(-1), categories
        ).double()
        values = torch.empty(batch, latents, categories, dtype=theta.dtype)
        with torch.no_grad():
            for i, k in itertools.product(range(latents), range(categories)):
                changed = z.clone()
                changed[:, i] = eye[k]
                values[:, i, k] = loss(changed).double()
        # J(q_i) f_i = q_i ⊙ (f_i − ⟨q_i, f_i⟩), per group
        total += q * (values - (q * values).sum(-1, keepdim=True))
    return total / draws


def estimator_gradients(
    logits: torch.Tensor, loss: Loss, estimator: surrogate.Estimator, draws: int, seed: int = 0
) -> torch.Tensor:
    """``draws`` gradients of the batch's summed loss at z drawn through ``estimator``:
    (draws, B, n, K) float64."""
    torch.manual_seed(seed)
    grads = []
    for _ in range(draws):
        theta = logits.detach().clone().requires_grad_()
        perturbed = theta if estimator.stochastic else theta + gumbel_noise(theta)
        z = surrogate.argmax(perturbed, estimator, dim=-1, training=True)
        loss(z).sum().backward()
        grads.append(theta.grad.double())
    return torch.stack(grads)


def quality(grads: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """``cosine``, ``bias`` and ``spread`` of draws ``grads`` (D, ...) against ``reference``."""
    flat, ref = grads.flatten(1), reference.flatten()
    norm = ref.norm()
    cosine = torch.nn.functional.cosine_similarity(flat, ref.expand_as(flat), dim=1, eps=1e-300)
    mean = flat.mean(0)
    return {
        "cosine": float(cosine.mean()),
        "bias": float((mean - ref).norm() / norm),
        "spread": float(flat.var(0, unbiased=True).sum().sqrt() / norm),
    }


def compare(
    logits: torch.Tensor,
    loss: Loss,
    estimators: Sequence[str],
    draws: int,
    reference: torch.Tensor,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Each estimator (by name, at its defaults) measured against ``reference``."""
    return {
        name: quality(
            estimator_gradients(logits, loss, surrogate.estimator(name), draws, seed), reference
        )
        for name in estimators
    }

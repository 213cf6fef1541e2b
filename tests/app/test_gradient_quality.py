"""The gradient-quality tool: the exact gradient against a closed form and an independent
enumeration, the local-expectation reference, the measures on known draws, and the committed
report against what the tool computes."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import surrogate
from surrogate.training.gradients.quality import (
    all_codes,
    estimator_gradients,
    exact_gradient,
    local_gradient,
    quality,
)
from surrogate.training.gradients.report import to_markdown
from tests.app.helpers import ROOT

REPORT = ROOT / "benchmarks" / "results" / "gradient_quality"


def linear_problem(seed=0, batch=3, latents=3, categories=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, latents, categories, generator=g, dtype=torch.float64)
    c = torch.randn(batch, latents, categories, generator=g, dtype=torch.float64)
    return logits, c, lambda z: (z.double() * c).sum((1, 2))


def test_the_exact_gradient_of_a_linear_loss_is_the_softmax_jacobian_times_c():
    """E f = Σ_i ⟨softmax(θ_i), c_i⟩, so ∇θ_i = q_i ⊙ (c_i − ⟨q_i, c_i⟩)."""
    logits, c, loss = linear_problem()
    q = torch.softmax(logits, -1)
    closed = q * (c - (q * c).sum(-1, keepdim=True))
    torch.testing.assert_close(exact_gradient(logits, loss), closed, rtol=1e-12, atol=1e-14)


def enumerated_expectation(theta: np.ndarray, f) -> float:
    """Σ over every outcome of Π_i q_i(k_i) · f(outcome), one example, in float64 numpy."""
    q = np.exp(theta - theta.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    n, k = theta.shape
    total = 0.0
    for ks in itertools.product(range(k), repeat=n):
        z = np.zeros((n, k))
        z[np.arange(n), ks] = 1
        total += np.prod(q[np.arange(n), ks]) * f(z)
    return total


def test_the_exact_gradient_of_a_nonlinear_loss_matches_finite_differences_of_an_enumeration():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 2, generator=g, dtype=torch.float64)
    logits = torch.randn(1, 2, 3, generator=g, dtype=torch.float64)

    def loss(z):
        return torch.tanh(z.double().flatten(1) @ w).pow(2).sum(1) * 3

    def f(z):
        return float((np.tanh(z.reshape(-1) @ w.numpy()) ** 2).sum() * 3)

    theta, h = logits[0].numpy(), 1e-6
    numeric = np.zeros_like(theta)
    for i, j in np.ndindex(*theta.shape):
        up, down = theta.copy(), theta.copy()
        up[i, j] += h
        down[i, j] -= h
        numeric[i, j] = (enumerated_expectation(up, f) - enumerated_expectation(down, f)) / (2 * h)
    np.testing.assert_allclose(exact_gradient(logits, loss)[0].numpy(), numeric, atol=1e-8)


def test_the_local_expectation_reference_is_exact_for_a_linear_loss_and_unbiased_otherwise():
    logits, c, loss = linear_problem()
    torch.testing.assert_close(local_gradient(logits, loss, 3), exact_gradient(logits, loss))

    def quadratic(z):
        return (z.double().flatten(1) @ c[0].flatten()).pow(2)

    exact = exact_gradient(logits, quadratic)
    sampled = local_gradient(logits, quadratic, 3000)
    assert (sampled - exact).norm() / exact.norm() < 0.05


def test_too_many_outcomes_to_enumerate_are_refused_naming_the_alternative():
    with pytest.raises(ValueError, match="20 latents x 8 categories.*use local_gradient"):
        all_codes(20, 8)


def test_the_measures_on_known_draws():
    ref = torch.tensor([3.0, 4.0], dtype=torch.float64)
    same = quality(ref.expand(5, 2), ref)
    assert same == {"cosine": 1.0, "bias": 0.0, "spread": 0.0}
    doubled = quality(2 * ref.expand(5, 2), ref)
    assert doubled["bias"] == pytest.approx(1.0) and doubled["cosine"] == pytest.approx(1.0)
    # two draws ±(4, -3) around ref: orthogonal parts, mean exact, per-draw cosine 3/5 ... of 5·√2
    draws = torch.stack([ref + torch.tensor([4.0, -3.0]), ref - torch.tensor([4.0, -3.0])])
    measured = quality(draws.double(), ref)
    assert measured["bias"] == pytest.approx(0.0, abs=1e-15)
    assert measured["cosine"] == pytest.approx(25 / (5 * np.sqrt(50)))
    assert measured["spread"] == pytest.approx(np.sqrt(2 * 25) / 5)


def test_straight_through_on_a_linear_loss_has_the_bias_of_c_against_the_jacobian():
    """``ste`` passes c to the logits at every draw: its bias is ‖c − J c‖ / ‖J c‖, no spread."""
    logits, c, loss = linear_problem()
    grads = estimator_gradients(logits.float(), loss, surrogate.estimator("ste"), draws=20)
    torch.testing.assert_close(grads, c.float().double().expand_as(grads))
    exact = exact_gradient(logits, loss)
    measured = quality(grads, exact)
    expected = (c.float().double() - exact).norm() / exact.norm()
    assert measured["bias"] == pytest.approx(float(expected), rel=1e-6)
    assert measured["spread"] == 0.0


def test_the_committed_report_is_what_its_markdown_says():
    report = json.loads((REPORT / "gradient_quality.json").read_text())
    assert (REPORT / "gradient_quality.md").read_text() == to_markdown(report)
    for problem in report["problems"].values():
        assert set(problem["estimators"]) == set(surrogate.available("argmax"))
        none = problem["estimators"]["none"]
        assert none == {"cosine": 0.0, "bias": 1.0, "spread": 0.0}


def test_each_draw_perturbs_the_logits_as_the_library_s_gumbel_does():
    """``softmax`` at a Gumbel-perturbed draw is straight-through Gumbel-softmax: draw for draw
    the same gradients as ``gumbel``, which perturbs the logits itself; and they vary."""
    logits, c, _ = linear_problem()

    def loss(z):
        return (z.double() * c).sum((1, 2)).pow(2)

    soft = estimator_gradients(logits.float(), loss, surrogate.estimator("softmax"), draws=8)
    gumbel = estimator_gradients(logits.float(), loss, surrogate.estimator("gumbel"), draws=8)
    assert torch.equal(soft, gumbel)
    assert not torch.equal(soft[0], soft[1])

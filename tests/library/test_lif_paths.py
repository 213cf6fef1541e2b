"""LIF's two paths — the whole loop as one node and step by step through ``spike`` — give the same
spikes bit for bit and the same gradients; the node keeps only the bump's input for backward; the
recurrent and adaptive layers follow a float64 reference written here from their formulas:

    RecurrentLIF:  v_t = β·u_{t−1} + x_t + W·s_{t−1}
    ALIF:          θ_t = θ + adaptation·a_{t−1},  s_t = step(v_t − θ_t),
                   a_t = ρ·a_{t−1} + (1 − ρ)·s_t,  u_t = v_t − s_t·θ_t (subtract)
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import surrogate
from surrogate import lif_scan

RESETS = ("subtract", "zero", "none")
ESTIMATORS = ("atan", "sigmoid", "ste", "clipped_ste", "none")


def step_by_step(lif, x):
    """The layer's output with a hook on its spike, which makes it run step by step."""
    hook = lif.spike.register_forward_hook(lambda *args: None)
    try:
        return lif(x)
    finally:
        hook.remove()


def loss_of(out, weights):
    outs = out if isinstance(out, tuple) else (out,)
    return sum((o * w).sum() for o, w in zip(outs, weights, strict=False))


CASES = list(itertools.product(RESETS, (False, True), ESTIMATORS, (False, True)))


@pytest.mark.parametrize(("reset", "detach", "est", "membrane"), CASES)
def test_the_fused_loop_matches_the_step_by_step_one(reset, detach, est, membrane):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(16, 3, 9, generator=gen, dtype=torch.float64) * 1.2 + 0.4).requires_grad_()
    weights = [torch.randn(16, 3, 9, generator=gen, dtype=torch.float64) for _ in range(2)]
    lif = surrogate.LIF(0.8, 0.9, reset, detach, est, return_membrane=membrane)
    assert lif._scans()
    fused = lif(x)
    (g_fused,) = torch.autograd.grad(loss_of(fused, weights), x)
    plain = step_by_step(lif, x)
    (g_plain,) = torch.autograd.grad(loss_of(plain, weights), x)
    fused = fused if isinstance(fused, tuple) else (fused,)
    plain = plain if isinstance(plain, tuple) else (plain,)
    for a, b in zip(fused, plain, strict=True):
        assert torch.equal(a, b)
    assert fused[0].sum() > 0  # the input makes the layer fire
    # The zero reset's ∂L/∂s_t = −v_t·e_t uses v_t = z_t + θ, one rounding away from v_t.
    torch.testing.assert_close(g_fused, g_plain, rtol=1e-12, atol=1e-12)


def test_the_fused_loop_runs_only_where_it_computes_the_same():
    assert surrogate.LIF()._scans()
    assert not surrogate.LIF(learn_beta=True)._scans()
    assert not surrogate.LIF(learn_threshold=True)._scans()
    relaxed = surrogate.LIF()
    relaxed.spike.relaxed = True
    assert not relaxed._scans()
    assert not surrogate.RecurrentLIF(4)._scans()
    assert not surrogate.ALIF()._scans()
    assert lif_scan.scan_applies(surrogate.estimator("atan"), relaxed=False)


def saved_bytes(fn, x) -> int:
    """Bytes of the distinct storages autograd keeps for backward from ``fn(x)`` (x's own
    storage aside: the caller holds it anyway)."""
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() != x.untyped_storage().data_ptr():
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(seen.values())


@pytest.mark.parametrize("reset", RESETS)
def test_the_fused_loop_keeps_the_bump_input_once_and_a_byte_per_spike(reset):
    x = torch.randn(10, 4, 32).requires_grad_()
    bump_input = x.numel() * x.element_size()
    kept = saved_bytes(surrogate.LIF(reset=reset, estimator="atan"), x)
    assert bump_input <= kept <= bump_input + x.numel()


def test_the_fused_loop_refuses_a_second_derivative():
    x = torch.randn(5, 2, 3, requires_grad=True)
    (g,) = torch.autograd.grad(surrogate.LIF()(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        torch.autograd.grad(g.sum(), x)


def recurrent_reference(x, w, beta, theta, adaptation=0.0, rho=0.0, reset="subtract"):
    """Spikes and membranes of RecurrentLIF (adaptation 0) or ALIF, float64, from the formulas."""
    u = np.zeros_like(x[0])
    a = np.zeros_like(x[0])
    s = np.zeros_like(x[0])
    spikes, membranes = [], []
    for x_t in x:
        v = beta * u + x_t + (s @ w.T if w is not None else 0.0)
        theta_t = theta + adaptation * a
        s = (v - theta_t > 0).astype(np.float64)
        u = {"subtract": v - s * theta_t, "zero": v * (1 - s), "none": v}[reset]
        a = rho * a + (1 - rho) * s
        spikes.append(s)
        membranes.append(u)
    return np.stack(spikes), np.stack(membranes)


@pytest.mark.parametrize("reset", RESETS)
def test_recurrent_lif_follows_its_reference(reset):
    torch.manual_seed(0)
    layer = surrogate.RecurrentLIF(6, 0.85, 1.0, reset=reset, return_membrane=True).double()
    with torch.no_grad():
        layer.recurrent.weight.normal_(0.0, 0.8)
    x = np.random.default_rng(1).normal(0.5, 0.9, (20, 3, 6))
    spikes, membranes = layer(torch.from_numpy(x))
    ref_s, ref_u = recurrent_reference(x, layer.recurrent.weight.detach().numpy(), 0.85, 1.0,
                                       reset=reset)  # fmt: skip
    np.testing.assert_array_equal(spikes.detach().numpy(), ref_s)
    np.testing.assert_allclose(membranes.detach().numpy(), ref_u, rtol=1e-12, atol=1e-12)
    # the recurrence matters here: without it the spikes differ
    plain, _ = recurrent_reference(x, None, 0.85, 1.0, reset=reset)
    assert not np.array_equal(plain, ref_s)


@pytest.mark.parametrize("features", [None, 5])
def test_alif_follows_its_reference(features):
    torch.manual_seed(0)
    layer = surrogate.ALIF(0.9, 0.8, adaptation=1.5, rho=0.9, features=features,
                           return_membrane=True).double()  # fmt: skip
    w = None
    if features:
        with torch.no_grad():
            layer.recurrent.weight.normal_(0.0, 0.5)
        w = layer.recurrent.weight.detach().numpy()
    x = np.random.default_rng(2).normal(0.6, 0.9, (25, 4, 5))
    spikes, membranes = layer(torch.from_numpy(x))
    ref_s, ref_u = recurrent_reference(x, w, 0.9, 0.8, adaptation=1.5, rho=0.9)
    np.testing.assert_array_equal(spikes.detach().numpy(), ref_s)
    np.testing.assert_allclose(membranes.detach().numpy(), ref_u, rtol=1e-12, atol=1e-12)
    fixed, _ = recurrent_reference(x, w, 0.9, 0.8)  # the threshold's adaptation matters here
    assert ref_s.sum() < fixed.sum()


def test_recurrent_and_adaptive_layers_learn_their_weight_through_the_estimator():
    torch.manual_seed(0)
    layer = surrogate.ALIF(features=4, estimator="atan")
    x = torch.randn(15, 2, 4) + 0.8
    layer(x).sum().backward()
    assert layer.recurrent.weight.grad is not None and layer.recurrent.weight.grad.abs().sum() > 0
    assert "spike" in dict(layer.named_modules())  # swap and schedules see the spike
    surrogate.swap(layer, step="none")
    layer.recurrent.weight.grad = None
    layer(x).sum().backward()
    assert layer.recurrent.weight.grad.abs().sum() == 0


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: surrogate.RecurrentLIF(0), "features must be an integer >= 1, got 0"),
        (lambda: surrogate.RecurrentLIF(2.5), "features must be an integer >= 1, got 2.5"),
        (lambda: surrogate.ALIF(adaptation=-1.0), "adaptation must be a finite number >= 0"),
        (lambda: surrogate.ALIF(rho=1.0), r"rho must be in \[0, 1\), got 1.0"),
        (lambda: surrogate.ALIF(beta=1.5), r"ALIF: beta must be in \(0, 1\], got 1.5"),
        (lambda: surrogate.RecurrentLIF(3, beta=0.0), r"RecurrentLIF: beta must be in"),
    ],
)
def test_bad_arguments_are_refused_when_built(build, words):
    with pytest.raises(ValueError, match=words):
        build()


def test_inputs_of_the_wrong_shape_or_dtype_are_refused():
    with pytest.raises(ValueError, match=r"RecurrentLIF: the input must be \(T, B, features=4\)"):
        surrogate.RecurrentLIF(4)(torch.zeros(5, 2, 3))
    with pytest.raises(ValueError, match=r"\(T, B, features=4\); got shape \(2, 4\)"):
        surrogate.ALIF(features=4)(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        surrogate.LIF()(torch.zeros(5, 2, 3, dtype=torch.long))

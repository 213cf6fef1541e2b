"""surrogate.LIF held to its dynamics, with a float64 reference written here from the formulas:

    v_t = β·u_{t−1} + x_t,  s_t = step(v_t − θ),  u_t = v_t − s_t·θ | v_t·(1 − s_t) | v_t

and, for gradients, a straight-through step of this file's own whose backward is the atan bump
p(x) = (α/2) / (1 + (π·α·x/2)²) (α = 2), never the library's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import surrogate

RESETS = ("subtract", "zero", "none")


def reference_forward(x: np.ndarray, beta: float, theta: float, reset: str):
    u = np.zeros_like(x[0])
    spikes, membranes = [], []
    for x_t in x:
        v = beta * u + x_t
        s = (v - theta > 0).astype(x.dtype)
        u = {"subtract": v - s * theta, "zero": v * (1 - s), "none": v}[reset]
        spikes.append(s)
        membranes.append(u)
    return np.stack(spikes), np.stack(membranes)


class AtanStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        alpha = 2.0
        return g * (alpha / 2) / (1 + (math.pi * alpha * x / 2) ** 2)


def reference_autograd(x, beta, theta, reset, detach_reset):
    u = torch.zeros_like(x[0])
    spikes = []
    for x_t in x.unbind(0):
        v = beta * u + x_t
        s = AtanStep.apply(v - theta)
        r = s.detach() if detach_reset else s
        if reset == "subtract":
            u = v - r * theta
        elif reset == "zero":
            u = v * (1 - r)
        else:
            u = v
        spikes.append(s)
    return torch.stack(spikes)


def inputs(shape=(12, 3, 5), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.6, 0.8, shape)


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize(("beta", "theta"), [(0.9, 1.0), (0.5, 0.7), (1.0, 1.0)])
def test_spikes_and_membrane_follow_the_dynamics(reset, beta, theta):
    x = inputs()
    lif = surrogate.LIF(beta, theta, reset, return_membrane=True).double()
    spikes, membrane = lif(torch.from_numpy(x))
    want_s, want_u = reference_forward(x, beta, theta, reset)
    assert spikes.dtype == torch.float64 and spikes.shape == x.shape
    np.testing.assert_array_equal(spikes.numpy(), want_s)
    np.testing.assert_allclose(membrane.numpy(), want_u, rtol=0, atol=1e-12)
    assert set(np.unique(want_s)) == {0.0, 1.0}  # the inputs make both happen


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("reset", RESETS)
def test_gradients_follow_the_atan_surrogate_through_time(reset, detach_reset):
    x = torch.from_numpy(inputs(seed=1)).requires_grad_()
    upstream = torch.from_numpy(np.random.default_rng(2).normal(size=x.shape))
    lif = surrogate.LIF(0.8, 1.0, reset, detach_reset=detach_reset, estimator="atan").double()
    (got,) = torch.autograd.grad(lif(x), x, upstream)
    (want,) = torch.autograd.grad(reference_autograd(x, 0.8, 1.0, reset, detach_reset), x, upstream)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_detach_reset_changes_the_gradient_and_not_the_spikes():
    x = torch.from_numpy(inputs(seed=3)).requires_grad_()
    plain, detached = surrogate.LIF().double(), surrogate.LIF(detach_reset=True).double()
    assert torch.equal(plain(x), detached(x))
    g_plain = torch.autograd.grad(plain(x).sum(), x)[0]
    g_detached = torch.autograd.grad(detached(x).sum(), x)[0]
    assert not torch.allclose(g_plain, g_detached)


def test_the_state_starts_at_zero_at_every_call_and_keeps_the_dtype():
    lif = surrogate.LIF(return_membrane=True)
    x = torch.full((3, 2, 4), 0.6, dtype=torch.float32)
    first, again = lif(x), lif(x)
    assert torch.equal(first[0], again[0]) and first[0].dtype == torch.float32
    assert first[0][:, 0].tolist() == [[0.0] * 4, [1.0] * 4, [0.0] * 4]  # 0.6, 1.14 -> spike, ...


def test_learned_beta_stays_in_range_and_learns():
    lif = surrogate.LIF(beta=0.7, learn_beta=True, learn_threshold=True).double()
    assert lif.beta.item() == pytest.approx(0.7)
    lif(torch.from_numpy(inputs(seed=4))).sum().backward()
    assert lif.beta_logit.grad.abs() > 0 and lif.learned_threshold.grad.abs() > 0
    with torch.no_grad():
        lif.beta_logit.fill_(50.0)
    assert 0 < lif.beta.item() <= 1


def test_swap_reaches_the_spike_and_the_estimator_is_settable():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), surrogate.LIF())
    assert surrogate.swap(net, step="sigmoid") == 1
    assert net[1].estimator.name == "sigmoid"
    net[1].estimator = "triangle"
    assert net[1].spike.estimator.name == "triangle"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"beta": 0.0}, "beta must be in (0, 1], got 0.0"),
        ({"beta": 1.5}, "beta must be in (0, 1], got 1.5"),
        ({"beta": 1.0, "learn_beta": True}, "beta must be in (0, 1) (learn_beta"),
        ({"threshold": 0}, "threshold must be a finite number > 0, got 0"),
        ({"reset": "soft"}, "reset must be one of ('subtract', 'zero', 'none'), got 'soft'"),
        ({"estimator": "softmax"}, "'softmax' does not apply to step"),
    ],
)
def test_bad_arguments_are_refused_when_built(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        surrogate.LIF(**kwargs)


def test_an_input_without_a_time_axis_is_refused():
    with pytest.raises(ValueError, match=r"\(T, B, ...\).*got shape \(5,\)"):
        surrogate.LIF()(torch.zeros(5))

"""Bop (Helwegen et al. 2019, arXiv:1906.02107) held to a float64 loop written here.

One step, for each weight w with gradient g:

    m ← (1 − γ)·m + γ·g
    w ← −w   where |m| > τ and sign(m) = sign_b(w)   (sign_b(0) = +1; a flipped 0 becomes −1)
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import surrogate


def sign_b(w: np.ndarray) -> np.ndarray:
    return np.where(w >= 0, 1.0, -1.0)


def reference_bop(w, grads, gammas, threshold):
    """The weights and the moving average after one Bop step per gradient, in float64."""
    w, m = np.array(w, dtype=np.float64), np.zeros_like(w, dtype=np.float64)
    for g, gamma in zip(grads, gammas, strict=True):
        m = (1.0 - gamma) * m + gamma * g
        flip = (np.abs(m) > threshold) & (np.sign(m) == sign_b(w))
        w = np.where(flip, np.where(w == 0, -1.0, -w), w)
    return w, m


def run_bop(w, grads, **kwargs):
    """Bop's weights and moving average after one step per gradient, and the optimizer."""
    param = torch.nn.Parameter(torch.from_numpy(np.array(w, dtype=np.float64)))
    optimizer = surrogate.Bop([param], **kwargs)
    for g in grads:
        param.grad = torch.from_numpy(g)
        optimizer.step()
    return param.detach(), optimizer.state[param]["momentum"], optimizer


def latent_and_grads(seed: int, steps: int = 6, shape=(7, 9)):
    """Latent weights with zeros among them, and gradients as large as the weights."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.5, shape)
    w.flat[:6] = [0.0, -0.0, 0.0, 1.0, -1.0, 0.0]
    grads = [rng.normal(0.0, 1.0, shape) for _ in range(steps)]
    return w, grads


@pytest.mark.parametrize(
    ("gamma", "threshold"), [(1e-1, 1e-2), (5e-1, 1e-1), (1.0, 0.0), (1e-3, 1e-8)]
)
def test_steps_match_reference(gamma, threshold):
    w, grads = latent_and_grads(seed=int(gamma * 1000))
    actual_w, actual_m, _ = run_bop(w, grads, gamma=gamma, threshold=threshold)
    ref_w, ref_m = reference_bop(w, grads, [gamma] * len(grads), threshold)
    torch.testing.assert_close(actual_m, torch.from_numpy(ref_m), rtol=1e-12, atol=1e-15)
    assert torch.equal(actual_w, torch.from_numpy(ref_w))  # flips are exact negations
    assert not np.array_equal(ref_w, w)  # something flipped
    nonzero = w != 0  # Bop keeps the latent magnitudes; only a zero changes its own
    assert np.array_equal(np.abs(actual_w.numpy()[nonzero]), np.abs(w[nonzero]))


def test_threshold_gates_the_flip():
    """|m| above τ with sign(m) = sign(w) flips; |m| = τ, |m| < τ or the other sign does not."""
    w = [1.0, 1.0, 1.0, -1.0, -1.0, 0.5, -0.5, 0.0, 0.0]
    g = [2.5, 2.0, 1.5, -2.5, -1.5, -2.5, 2.5, 2.5, -2.5]  # m = g/2 with γ = 1/2
    actual_w, actual_m, _ = run_bop(w, [np.array(g)], gamma=0.5, threshold=1.0)
    assert actual_m.tolist() == [x / 2 for x in g]
    assert actual_w.tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 0.5, -0.5, -1.0, 0.0]


def test_a_flipped_zero_becomes_minus_one():
    actual_w, _, _ = run_bop([0.0, -0.0], [np.array([1.0, 1.0])], gamma=1.0, threshold=0.0)
    assert actual_w.tolist() == [-1.0, -1.0]


def test_params_without_gradient_are_untouched():
    with_grad = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    without = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    optimizer = surrogate.Bop([with_grad, without], gamma=1.0, threshold=0.0)
    with_grad.grad = torch.tensor([1.0, -1.0])
    optimizer.step()
    assert with_grad.tolist() == [-1.0, 1.0]
    assert without.tolist() == [1.0, -1.0] and without not in optimizer.state


def test_step_returns_the_closure_s_loss():
    param = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    optimizer = surrogate.Bop([param], gamma=1.0, threshold=0.0)

    def closure():
        optimizer.zero_grad()
        loss = (param * torch.tensor([1.0, 2.0])).sum()  # gradient [1, 2]: flips the first
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == -1.0
    assert param.tolist() == [-1.0, -1.0]


def test_gamma_is_the_group_s_lr_and_follows_a_scheduler():
    w, grads = latent_and_grads(seed=3, steps=4)
    param = torch.nn.Parameter(torch.from_numpy(w.copy()))
    optimizer = surrogate.Bop([param], gamma=0.4, threshold=0.05)
    assert optimizer.param_groups[0]["lr"] == 0.4
    assert optimizer.param_groups[0]["threshold"] == 0.05
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5**epoch)
    for g in grads:
        param.grad = torch.from_numpy(g)
        optimizer.step()
        scheduler.step()
    ref_w, ref_m = reference_bop(w, grads, [0.4, 0.2, 0.1, 0.05], 0.05)
    momentum = optimizer.state[param]["momentum"]
    torch.testing.assert_close(momentum, torch.from_numpy(ref_m), rtol=1e-12, atol=1e-15)
    assert torch.equal(param.detach(), torch.from_numpy(ref_w))


@pytest.mark.parametrize("gamma", [0.0, -0.1, 1.5, float("nan")])
def test_gamma_outside_zero_one_is_refused(gamma):
    with pytest.raises(ValueError, match=f"gamma must be in \\(0, 1\\], got {gamma!r}"):
        surrogate.Bop([torch.nn.Parameter(torch.zeros(2))], gamma=gamma)


@pytest.mark.parametrize("threshold", [-1e-9, -1.0, float("nan")])
def test_negative_threshold_is_refused(threshold):
    with pytest.raises(ValueError, match=f"threshold must be >= 0, got {threshold!r}"):
        surrogate.Bop([torch.nn.Parameter(torch.zeros(2))], threshold=threshold)


def test_state_dict_round_trip():
    w, grads = latent_and_grads(seed=5, steps=5)
    first = torch.nn.Parameter(torch.from_numpy(w.copy()))
    optimizer = surrogate.Bop([first], gamma=0.3, threshold=0.1)
    for g in grads[:3]:
        first.grad = torch.from_numpy(g)
        optimizer.step()
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)

    second = torch.nn.Parameter(first.detach().clone())
    restored = surrogate.Bop([second], gamma=0.9, threshold=0.0)  # its own hyperparameters lose
    restored.load_state_dict(torch.load(buffer))
    assert restored.param_groups[0]["lr"] == 0.3 and restored.param_groups[0]["threshold"] == 0.1
    assert torch.equal(restored.state[second]["momentum"], optimizer.state[first]["momentum"])
    for g in grads[3:]:
        for param, opt in ((first, optimizer), (second, restored)):
            param.grad = torch.from_numpy(g)
            opt.step()
    assert torch.equal(first, second)
    ref_w, _ = reference_bop(w, grads, [0.3] * 5, 0.1)
    assert torch.equal(second.detach(), torch.from_numpy(ref_w))


def test_bop_flips_the_signs_of_a_binary_layer():
    """With ``binary_weights``: the layer's binary weight flips where the reference says."""
    torch.manual_seed(0)
    layer = surrogate.BinaryLinear(6, 3, bias=False, estimator="ste", dtype=torch.float64)
    w = layer.weight.detach().numpy().copy()
    x = torch.randn(4, 6, dtype=torch.float64)
    optimizer = surrogate.Bop(surrogate.binary_weights(layer), gamma=1.0, threshold=0.0)
    loss = layer(x).sum()
    loss.backward()
    grad = x.sum(0).expand(3, 6).numpy()  # ste: the gradient of w_b reaches w unchanged
    optimizer.step()
    ref_w, _ = reference_bop(w, [grad], [1.0], 0.0)
    assert torch.equal(layer.weight.detach(), torch.from_numpy(ref_w))
    eye = torch.eye(6, dtype=torch.float64)
    assert torch.equal(layer(eye).t(), torch.from_numpy(sign_b(ref_w)))

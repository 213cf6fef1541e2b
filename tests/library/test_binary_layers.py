"""BinaryLinear and BinaryConv2d held to their formulas, with BinaryConnect's helpers.

The expected values are float64 references written here from the formulas, never from the library:
the forward is F.linear / F.conv2d with w_b = where(w >= 0, +1, −1), times α = mean|w| over each
output channel with ``scale=True``; the latent weight's gradient is the upstream gradient of w_b
times sign's surrogate derivative at w, plus (``scale=True``) the path through α, written by hand.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surrogate
from surrogate.binary import LATENT_BOUND

# sign's surrogate derivative at the latent weight w (the jump J = 2 times the bump, width 1).
SIGN_DERIVATIVE = {
    "ste": lambda w: np.ones_like(w),
    "clipped_ste": lambda w: np.where(np.abs(w) <= 1.0, 1.0, 0.0),
    "triangle": lambda w: 2.0 * np.maximum(0.0, 1.0 - np.abs(w)),
    "atan": lambda w: 2.0 / (1.0 + (np.pi * w) ** 2),  # 2·(α/2)/(1 + (παw/2)²), α = 2
}
CONV_GEOMETRY = [(1, 0), (2, 1), ((2, 1), (0, 2))]  # (stride, padding)


# ---------------------------------------------------------------------------------------------
# The reference
# ---------------------------------------------------------------------------------------------


def latent_weights(shape, seed: int) -> np.ndarray:
    """Multiples of 1/16 in [−1.5, 1.5] (so α is exact in float32 for a power-of-two fan-in),
    with +0, −0, +1 and −1 among them: sign's corner and the clip's edges."""
    w = np.random.default_rng(seed).integers(-24, 25, shape) / 16.0
    w.flat[:4] = [0.0, -0.0, 1.0, -1.0]
    return w


def sign_b(w: np.ndarray) -> np.ndarray:
    return np.where(w >= 0, 1.0, -1.0)


def alpha(w: np.ndarray) -> np.ndarray:
    """mean|w| over every dim but the output channel's, kept for broadcasting."""
    return np.abs(w).reshape(w.shape[0], -1).mean(axis=1).reshape((-1,) + (1,) * (w.ndim - 1))


def effective_weight(w: np.ndarray, scale: bool) -> np.ndarray:
    return sign_b(w) * alpha(w) if scale else sign_b(w)


def float_layer(kind: str, geometry=(1, 0)):
    """The float layer the binary one must equal, as a function of (x, weight, bias)."""
    if kind == "linear":
        return F.linear
    stride, padding = geometry
    return lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding)


def reference(kind, x, w, b, upstream, estimator="clipped_ste", scale=False, geometry=(1, 0)):
    """(y, dL/dx, dL/dw, dL/db) in float64 for the loss Σ upstream·y."""
    fn = float_layer(kind, geometry)
    w_eff = torch.from_numpy(effective_weight(w, scale)).requires_grad_(True)
    x = torch.from_numpy(x).requires_grad_(True)
    b = torch.from_numpy(b).requires_grad_(True)
    y = fn(x, w_eff, b)  # the float layer with the binary weight
    y.backward(torch.from_numpy(upstream))
    g_eff = w_eff.grad.numpy()
    grad_w = g_eff * SIGN_DERIVATIVE[estimator](w) * (alpha(w) if scale else 1.0)
    if scale:  # α_i = mean_j |w_ij|: ∂α_i/∂w_ij = sgn(w_ij)/n (0 at 0, as |w|'s derivative)
        n = w[0].size
        per_channel = (g_eff * sign_b(w)).reshape(w.shape[0], -1).sum(axis=1)
        grad_w = grad_w + np.sign(w) / n * per_channel.reshape(alpha(w).shape)
    return y.detach(), x.grad, torch.from_numpy(grad_w), b.grad


def make_case(kind: str, seed: int, dtype=torch.float64, **layer_kwargs):
    """A layer with known latent weights and bias, an input, and an upstream gradient."""
    rng = np.random.default_rng(seed)
    if kind == "linear":
        layer = surrogate.BinaryLinear(8, 4, dtype=dtype, **layer_kwargs)
        x = rng.integers(-8, 9, (5, 8)) / 4.0
    else:
        layer = surrogate.BinaryConv2d(2, 3, 2, dtype=dtype, **layer_kwargs)
        x = rng.integers(-8, 9, (2, 2, 6, 5)) / 4.0
    w = latent_weights(tuple(layer.weight.shape), seed)
    b = rng.integers(-8, 9, layer.bias.shape) / 8.0
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        layer.bias.copy_(torch.from_numpy(b))
    return layer, x, w, b


def run(layer, x: np.ndarray, upstream: np.ndarray | None = None):
    """The layer's output and its gradients (input, latent weight, bias) for Σ upstream·y."""
    x = torch.from_numpy(x).to(layer.weight.dtype).requires_grad_(True)
    layer.zero_grad()
    y = layer(x)
    if upstream is None:
        return y.detach(), None, None, None
    y.backward(torch.from_numpy(upstream).to(y.dtype))
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


def upstream_for(kind, x, w, b, geometry, seed):
    shape = float_layer(kind, geometry)(*(torch.from_numpy(a) for a in (x, w, b))).shape
    return np.random.default_rng(seed).normal(size=shape)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual.double(), expected.double(), rtol=1e-12, atol=1e-12)


CASES = [("linear", (1, 0))] + [("conv", g) for g in CONV_GEOMETRY]
CASE_IDS = ["linear", "conv", "conv-stride2-pad1", "conv-stride2x1-pad0x2"]


def build(kind, geometry, seed, dtype=torch.float64, **layer_kwargs):
    if kind == "conv":
        layer_kwargs = {"stride": geometry[0], "padding": geometry[1], **layer_kwargs}
    return make_case(kind, seed, dtype, **layer_kwargs)


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("scale", [False, True], ids=["sign", "scaled"])
@pytest.mark.parametrize(("kind", "geometry"), CASES, ids=CASE_IDS)
def test_forward_is_the_float_layer_with_the_binary_weight(kind, geometry, scale, dtype):
    """Bit for bit: w_b is ±1 (+1 at ±0) and α is exact, so F.linear/conv2d in the same dtype
    gives the same bits."""
    layer, x, w, b = build(kind, geometry, seed=1, dtype=dtype, scale=scale)
    y, *_ = run(layer, x)
    w_eff = torch.from_numpy(effective_weight(w, scale)).to(dtype)
    xt, bt = torch.from_numpy(x).to(dtype), torch.from_numpy(b).to(dtype)
    expected = float_layer(kind, geometry)(xt, w_eff, bt)
    assert y.dtype == dtype
    assert torch.equal(y, expected)


def test_zero_latent_weight_counts_as_plus_one():
    layer = surrogate.BinaryLinear(4, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, -0.0, 0.5, -0.5]]))
    y = layer(torch.eye(4, dtype=torch.float64))
    assert torch.equal(y.flatten(), torch.tensor([1.0, 1.0, 1.0, -1.0], dtype=torch.float64))


def test_scale_is_mean_abs_per_output_channel():
    layer = surrogate.BinaryLinear(4, 2, bias=False, scale=True, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.25, 1.0, -0.25], [-2.0, 2.0, 0.0, 0.0]]))
    y = layer(torch.eye(4, dtype=torch.float64))  # column j: the effective weight's column j
    expected = torch.tensor([[0.5, -0.5, 0.5, -0.5], [-1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    assert torch.equal(y.t(), expected)


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [False, True], ids=["sign", "scaled"])
@pytest.mark.parametrize("estimator", ["clipped_ste", "triangle", "ste"])
@pytest.mark.parametrize(("kind", "geometry"), CASES, ids=CASE_IDS)
def test_gradients_match_reference(kind, geometry, estimator, scale):
    layer, x, w, b = build(kind, geometry, seed=2, estimator=estimator, scale=scale)
    upstream = upstream_for(kind, x, effective_weight(w, scale), b, geometry, seed=3)
    y, grad_x, grad_w, grad_b = run(layer, x, upstream)
    ref_y, ref_x, ref_w, ref_b = reference(kind, x, w, b, upstream, estimator, scale, geometry)
    assert_close(y, ref_y)
    assert_close(grad_x, ref_x)
    assert_close(grad_w, ref_w)
    assert_close(grad_b, ref_b)


def test_default_estimator_is_clipped_ste():
    """The latent gradient is cut where |w| > 1 and passed at |w| = 1 exactly."""
    layer = surrogate.BinaryLinear(5, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 1.0, -1.0, 1.0625, -1.5]]))
    layer(torch.ones(1, 5, dtype=torch.float64)).sum().backward()
    expected = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(layer.weight.grad, expected)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_estimator_setter_changes_the_latent_gradient(kind):
    layer, x, w, b = make_case(kind, seed=4)
    layer.estimator = "atan"
    assert layer.estimator.name == "atan" and layer.binarize.estimator.name == "atan"
    upstream = upstream_for(kind, x, w, b, (1, 0), seed=5)
    _, _, grad_w, _ = run(layer, x, upstream)
    assert_close(grad_w, reference(kind, x, w, b, upstream, "atan")[2])


@pytest.mark.parametrize("layer_type", [surrogate.BinaryLinear, surrogate.BinaryConv2d])
def test_estimator_parameters_reach_the_sign(layer_type):
    """triangle with width 0.5: sign's derivative is 2·max(0, 1 − |w|/0.5)/0.5."""
    args = (4, 1) if layer_type is surrogate.BinaryLinear else (1, 1, 2)
    layer = layer_type(*args, bias=False, estimator="triangle", width=0.5, dtype=torch.float64)
    w = torch.tensor([0.0, 0.25, -0.375, 0.75], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(w.reshape(layer.weight.shape))
    x = torch.ones((1, 4) if layer_type is surrogate.BinaryLinear else (1, 1, 2, 2))
    layer(x.double()).sum().backward()  # the upstream gradient of each w_b is 1
    expected = torch.tensor([4.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    assert torch.equal(layer.weight.grad.flatten(), expected)


def test_swap_reaches_the_binarize_child():
    model = nn.Sequential(
        surrogate.BinaryConv2d(2, 3, 2, dtype=torch.float64),
        nn.Flatten(),
        surrogate.BinaryLinear(12, 2, estimator="triangle", dtype=torch.float64),
    )
    assert surrogate.swap(model, sign="ste") == 2
    assert [m.binarize.estimator.name for m in (model[0], model[2])] == ["ste", "ste"]
    layer, x, w, b = make_case("linear", seed=6)
    model = nn.Sequential(layer)
    surrogate.swap(model, sign="ste")
    upstream = upstream_for("linear", x, w, b, (1, 0), seed=7)
    _, _, grad_w, _ = run(layer, x, upstream)
    assert_close(grad_w, reference("linear", x, w, b, upstream, "ste")[2])


@pytest.mark.parametrize("name", ["gumbel", "softmax", "no_such_estimator"])
@pytest.mark.parametrize("layer", [surrogate.BinaryLinear, surrogate.BinaryConv2d])
def test_estimator_that_is_not_sign_s_is_refused_at_construction(layer, name):
    args = (4, 2) if layer is surrogate.BinaryLinear else (2, 2, 3)
    with pytest.raises(ValueError, match=repr(name)):
        layer(*args, estimator=name)
    built = layer(*args)
    with pytest.raises(ValueError, match=repr(name)):
        built.estimator = name
    assert built.estimator.name == "clipped_ste"


# ---------------------------------------------------------------------------------------------
# BinaryConnect's helpers and the diagnostics
# ---------------------------------------------------------------------------------------------


def test_binary_weights_lists_each_latent_weight_once():
    """A layer used twice, and two layers tied to one latent weight, count once."""
    shared, tied = surrogate.BinaryLinear(4, 4), surrogate.BinaryLinear(4, 4)
    tied.weight = shared.weight
    conv = surrogate.BinaryConv2d(1, 2, 3)
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(2, 4), shared, tied, nn.ReLU(), shared)
    found = surrogate.binary_weights(model)
    assert len(found) == 2
    assert {id(p) for p in found} == {id(conv.weight), id(shared.weight)}
    assert surrogate.binary_weights(nn.Sequential(nn.Linear(2, 2))) == []


def test_clip_latent_weights_clamps_in_place():
    model = nn.Sequential(surrogate.BinaryLinear(3, 2, bias=True), nn.Linear(3, 3))
    values = torch.tensor([[-3.0, -1.0, -0.25], [0.0, 1.0, 2.5]])
    bias = torch.tensor([5.0, -5.0])
    float_weight = model[1].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.copy_(values)
        model[0].bias.copy_(bias)
        model[1].weight.mul_(10)
    param, storage = model[0].weight, model[0].weight.data_ptr()
    assert surrogate.clip_latent_weights(model) == 1
    assert model[0].weight is param and param.data_ptr() == storage
    assert torch.equal(param, torch.tensor([[-1.0, -1.0, -0.25], [0.0, 1.0, 1.0]]))
    assert torch.equal(model[0].bias, bias)  # only the latent weights
    assert torch.equal(model[1].weight, float_weight * 10)  # only the binary layers


def test_clip_latent_weights_takes_a_bound():
    layer = surrogate.BinaryLinear(3, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-0.75, 0.25, 0.625]]))
    surrogate.clip_latent_weights(layer, bound=0.5)
    assert torch.equal(layer.weight, torch.tensor([[-0.5, 0.25, 0.5]]))


@pytest.mark.parametrize("bound", [0.0, -1.0, float("nan")])
def test_clip_latent_weights_refuses_a_bound_not_above_zero(bound):
    layer = surrogate.BinaryLinear(3, 1)
    before = layer.weight.detach().clone()
    with pytest.raises(ValueError, match=f"bound must be > 0, got {bound!r}"):
        surrogate.clip_latent_weights(layer, bound=bound)
    assert torch.equal(layer.weight, before)


def test_statistics_saturated_is_the_share_at_or_beyond_the_bound():
    assert LATENT_BOUND == 1.0
    layer = surrogate.BinaryConv2d(1, 2, 2)
    with torch.no_grad():  # 3 of 8 at |w| >= 1: 1.0, −1.0 and −2.0 count, 0.999 does not
        layer.weight.copy_(
            torch.tensor([1.0, -1.0, 0.999, -0.999, -2.0, 0.0, 0.5, -0.5]).reshape(2, 1, 2, 2)
        )
    assert layer.statistics() == {"saturated": 3 / 8}
    surrogate.clip_latent_weights(layer)
    assert layer.statistics()["saturated"] == 3 / 8


def test_save_and_load_round_trip():
    torch.manual_seed(0)
    model = nn.Sequential(
        surrogate.BinaryConv2d(2, 3, 2, padding=1, estimator="triangle", scale=True),
        nn.Flatten(),
        surrogate.BinaryLinear(3 * 5 * 5, 2, estimator="ste"),
    )
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert loaded[0].estimator.name == "triangle" and loaded[0].scale is True
    assert loaded[2].estimator.name == "ste" and loaded[2].scale is False
    x = torch.randn(4, 2, 4, 4)
    outputs = []
    for m in (model, loaded):
        y = m(x)
        y.square().sum().backward()
        outputs.append((y.detach(), m[0].weight.grad, m[2].weight.grad))
    for a, b in zip(*outputs, strict=True):
        assert torch.equal(a, b)

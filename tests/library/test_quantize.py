"""Quantize, QuantLinear and QuantConv2d held to their formulas.

The expected values are float64 references written here, never from the library:

    q = round_half_even(clamp(x/s, Qn, Qp))·s,  Qn = −2^(b−1), Qp = 2^(b−1) − 1 (signed)
                                                 Qn = 0,        Qp = 2^b − 1     (unsigned)

With a learned step (LSQ, Esser et al. 2020, arXiv:1902.08153, eq. 3 and its gradient scale), the
``ste`` round gives ∂q/∂s = round(v) − v strictly inside (Qn, Qp) (v = x/s), Qn at or below Qn
and Qp at or above Qp (eq. 5), and the step's gradient is scaled by g = 1/√(N·Qp), N the elements
per sample (activations) or of the whole weight (weights). The input's gradient is the round's
derivative strictly inside (Qn, Qp), 0 at the ends and beyond. LSQ's
initialization is s = 2·mean|x|/√Qp.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import special

import surrogate
from surrogate.quantize import check_bits, levels, scale_gradient

BITS = (1, 2, 4, 8, 16)
SIGNED = [True, False]
SIGNED_IDS = ["signed", "unsigned"]


# ---------------------------------------------------------------------------------------------
# The reference
# ---------------------------------------------------------------------------------------------


def ref_levels(bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def ref_quantize(x: np.ndarray, s: float, bits: int, signed: bool) -> np.ndarray:
    qn, qp = ref_levels(bits, signed)
    return np.rint(np.clip(x / s, qn, qp)) * s  # np.rint rounds half to even


def ref_init(x: np.ndarray, bits: int, signed: bool) -> float:
    return 2.0 * np.abs(x).mean() / math.sqrt(ref_levels(bits, signed)[1])


def ref_step_grad(x, s, upstream, bits, signed, per_sample: int) -> float:
    """LSQ's ∂L/∂s with the ste round, times its gradient scale g = 1/√(N·Qp)."""
    qn, qp = ref_levels(bits, signed)
    v = x / s
    dq_ds = np.where(v <= qn, qn, np.where(v >= qp, qp, np.rint(v) - v))
    return float((upstream * dq_ds).sum() / math.sqrt(per_sample * qp))


def inside(x, s, bits, signed) -> np.ndarray:
    qn, qp = ref_levels(bits, signed)
    return (qn < x / s) & (x / s < qp)


def sigmoid_bump(u: np.ndarray, beta: float) -> np.ndarray:
    """p(u) = β·σ(βu)·(1 − σ(βu))."""
    return beta * special.expit(beta * u) * (1.0 - special.expit(beta * u))


def values_around_the_range(
    bits: int, signed: bool, seed: int, n: int = 240, ends: bool = True
) -> np.ndarray:
    """Levels v = x/s: random ones across [Qn − 3, Qp + 3], every half-way point between
    levels near both ends (ties to even), both zeros and (``ends``) Qn and Qp themselves."""
    qn, qp = ref_levels(bits, signed)
    rng = np.random.default_rng(seed)
    v = rng.uniform(qn - 3, qp + 3, n)
    halves = np.concatenate([np.arange(qn, qn + 4), np.arange(qp - 4, qp)]) + 0.5
    corners = [qn - 0.5, qp + 0.5, 0.0, -0.0, -0.5, 0.5] + ([qn, qp] if ends else [])
    v = np.concatenate([v, halves, corners])
    return v if ends else v[(v != qn) & (v != qp)]


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def forward_backward(module, x: np.ndarray, upstream: np.ndarray | None = None):
    """The module's output and the gradient reaching x for the loss Σ upstream·q."""
    xt = t64(x).requires_grad_(True)
    q = module(xt)
    if upstream is None:
        return q.detach(), None
    q.backward(t64(upstream))
    return q.detach(), xt.grad


def assert_close(actual, expected, rtol=1e-12, atol=1e-12) -> None:
    torch.testing.assert_close(actual.double(), t64(expected), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# Levels and the forward
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", SIGNED, ids=SIGNED_IDS)
@pytest.mark.parametrize("bits", BITS)
def test_levels(bits, signed):
    q = surrogate.Quantize(bits, signed)
    assert levels(bits, signed) == ref_levels(bits, signed) == (q.qn, q.qp)
    assert check_bits(bits) == bits


@pytest.mark.parametrize("step", [0.3125, 0.375, 3.0])
@pytest.mark.parametrize("signed", SIGNED, ids=SIGNED_IDS)
@pytest.mark.parametrize("bits", BITS)
def test_forward_is_exact_in_float64(bits, signed, step):
    """Bit for bit: x/s, the clamp, the round half to even and ·s are each one IEEE operation.

    The steps are exact in float32 (a step that is not: ``test_float64_input_uses_...``)."""
    quantizer = surrogate.Quantize(bits, signed, step=step).double()
    x = values_around_the_range(bits, signed, seed=bits) * step
    q, _ = forward_backward(quantizer, x)
    expected = t64(ref_quantize(x, step, bits, signed))
    assert q.dtype == torch.float64
    assert torch.equal(q, expected)
    assert torch.equal(q.signbit(), expected.signbit())


def test_forward_rounds_half_to_even_and_clamps():
    quantizer = surrogate.Quantize(bits=3, signed=True, step=0.5)  # levels −4..3
    x = torch.tensor([0.25, 0.75, 1.25, -0.25, -0.75, 1.6, 1.4, 9.0, -9.0, -2.0, 1.5])
    expected = torch.tensor([0.0, 1.0, 1.0, -0.0, -1.0, 1.5, 1.5, 1.5, -2.0, -2.0, 1.5])
    assert torch.equal(quantizer(x), expected)


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["activations", "weights"])
@pytest.mark.parametrize(
    ("bits", "signed"), [(1, False), (2, True), (4, True), (4, False), (8, True), (8, False)]
)
def test_learned_step_gradient_is_lsq(bits, signed, kind):
    step = 0.3125
    quantizer = surrogate.Quantize(bits, signed, step, learn_step=True, kind=kind).double()
    assert [name for name, _ in quantizer.named_parameters()] == ["step"]
    rng = np.random.default_rng(bits)
    qn, qp = ref_levels(bits, signed)
    x = rng.uniform(qn - 3, qp + 3, (4, 3, 5)) * step
    upstream = rng.normal(size=x.shape)
    per_sample = x[0].size if kind == "activations" else x.size  # 15 or 60
    _, grad_x = forward_backward(quantizer, x, upstream)
    expected_s = ref_step_grad(x, step, upstream, bits, signed, per_sample)
    assert quantizer.step.grad.item() == pytest.approx(expected_s, rel=1e-10, abs=1e-14)
    assert_close(grad_x, upstream * inside(x, step, bits, signed))


def test_fixed_step_is_a_buffer_without_gradient():
    quantizer = surrogate.Quantize(4, step=0.5)
    assert list(quantizer.parameters()) == []
    assert dict(quantizer.named_buffers()).keys() == {"step", "initialized"}


@pytest.mark.parametrize("signed", SIGNED, ids=SIGNED_IDS)
def test_input_gradient_with_ste_is_the_clamp_mask(signed):
    """Inside the range the upstream gradient passes; outside, nothing (the ends: below)."""
    bits, step = 3, 0.25
    quantizer = surrogate.Quantize(bits, signed, step).double()
    x = values_around_the_range(bits, signed, seed=5, ends=False) * step
    upstream = np.random.default_rng(6).normal(size=x.shape)
    _, grad_x = forward_backward(quantizer, x, upstream)
    mask = inside(x, step, bits, signed)
    assert mask.sum() > 10 and (~mask).sum() > 10
    assert_close(grad_x, upstream * mask, atol=0.0)


@pytest.mark.parametrize("beta", [4.0, 8.0])
@pytest.mark.parametrize("signed", SIGNED, ids=SIGNED_IDS)
def test_input_gradient_with_sigmoid_round(signed, beta):
    """The round's derivative is p(r), r = v − (floor(v) + 1/2), inside the range; 0 outside."""
    bits, step = 4, 0.25
    quantizer = surrogate.Quantize(bits, signed, step, estimator="sigmoid", beta=beta).double()
    v = values_around_the_range(bits, signed, seed=7, ends=False)
    x = v * step
    upstream = np.random.default_rng(8).normal(size=x.shape)
    q, grad_x = forward_backward(quantizer, x, upstream)
    assert torch.equal(q, t64(ref_quantize(x, step, bits, signed)))  # the forward stays hard
    r = v - (np.floor(v) + 0.5)
    assert_close(grad_x, upstream * sigmoid_bump(r, beta) * inside(x, step, bits, signed))


@pytest.mark.parametrize("signed", SIGNED, ids=SIGNED_IDS)
def test_gradients_at_the_ends_of_the_range(signed):
    """x/s exactly Qn or Qp counts as saturated (LSQ's eq. 5): no gradient to the input, and
    ∂q/∂s is Qn or Qp there. torch.clamp's own gradient at its bounds is 1 before torch 2.14 and 0
    from 2.14 on; the quantizer's must not follow it."""
    bits, step = 4, 0.25
    qn, qp = ref_levels(bits, signed)
    x = np.array([[qn * step, qp * step]])
    quantizer = surrogate.Quantize(bits, signed, step, learn_step=True).double()
    _, grad_x = forward_backward(quantizer, x, np.ones_like(x))
    assert grad_x.tolist() == [[0.0, 0.0]]
    per_sample = x.shape[1]
    assert quantizer.step.grad.item() == pytest.approx((qn + qp) / np.sqrt(per_sample * qp))


def test_estimator_setter_reaches_the_round():
    quantizer = surrogate.Quantize(4, step=0.25)
    quantizer.estimator = "sigmoid"
    assert quantizer.estimator.name == "sigmoid" and quantizer.round.estimator.name == "sigmoid"


# ---------------------------------------------------------------------------------------------
# LSQ's initialization and loading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("learn_step", [False, True], ids=["buffer", "learned"])
@pytest.mark.parametrize(("bits", "signed"), [(2, True), (4, True), (4, False), (8, False)])
def test_step_none_initializes_from_the_first_batch(bits, signed, learn_step):
    quantizer = surrogate.Quantize(bits, signed, step=None, learn_step=learn_step).double()
    rng = np.random.default_rng(bits)
    x = rng.normal(0.5, 2.0, (6, 10))
    q, _ = forward_backward(quantizer, x)
    s = ref_init(x, bits, signed)
    assert quantizer.statistics()["step"] == pytest.approx(s, rel=1e-14)
    assert_close(q, ref_quantize(x, s, bits, signed))
    forward_backward(quantizer, 10.0 * x)  # a second batch does not re-initialize
    assert quantizer.statistics()["step"] == pytest.approx(s, rel=1e-14)


def test_step_none_initializes_in_float32():
    quantizer = surrogate.Quantize(4, step=None)
    x = torch.linspace(-3.0, 2.0, 50)
    quantizer(x)
    expected = ref_init(x.double().numpy(), 4, True)
    assert quantizer.statistics()["step"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("learn_step", [False, True], ids=["buffer", "learned"])
def test_loaded_step_is_kept(learn_step):
    quantizer = surrogate.Quantize(4, step=None, learn_step=learn_step)
    quantizer.load_state_dict({"step": torch.tensor(0.375)})
    x = torch.linspace(-5.0, 5.0, 41)
    q = quantizer(x)
    assert quantizer.statistics()["step"] == 0.375
    assert torch.equal(q, torch.from_numpy(ref_quantize(x.numpy(), 0.375, 4, True)))


def test_loaded_quant_layer_keeps_its_steps():
    torch.manual_seed(0)
    trained = surrogate.QuantLinear(6, 3, bits=4, learn_step=True)
    x = torch.randn(5, 6)
    trained(x)  # LSQ's initialization, then steps it would not give
    with torch.no_grad():
        trained.weight_quantizer.step.mul_(1.5)
        trained.input_quantizer.step.mul_(0.75)
    expected = trained(x)
    fresh = surrogate.QuantLinear(6, 3, bits=4, learn_step=True)
    fresh.load_state_dict(trained.state_dict())
    assert torch.equal(fresh(3.0 * x), trained(3.0 * x))
    assert torch.equal(fresh(x), expected)


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


def assert_refused(build, bad, *names: str) -> None:
    with pytest.raises(ValueError) as err:
        build()
    message = str(err.value)
    assert f"got {bad!r}" in message, message
    for name in names:
        assert name in message, message


@pytest.mark.parametrize("bits", [0, 17, 2.5, True, -1, "4"])
def test_bad_bits_are_refused(bits):
    assert_refused(lambda: surrogate.Quantize(bits), bits, "Quantize", "bits")
    assert_refused(lambda: surrogate.QuantLinear(4, 2, bits=bits), bits, "QuantLinear", "bits")
    assert_refused(
        lambda: surrogate.QuantConv2d(1, 2, 3, input_bits=bits), bits, "QuantConv2d", "bits"
    )


@pytest.mark.parametrize("step", [0, -1, 0.0, -0.5, float("nan")])
def test_bad_step_is_refused(step):
    assert_refused(lambda: surrogate.Quantize(4, step=step), step, "Quantize", "step")


def test_unknown_kind_is_refused():
    assert_refused(lambda: surrogate.Quantize(4, kind="bias"), "bias", "kind", "activations")


# ---------------------------------------------------------------------------------------------
# QuantLinear and QuantConv2d
# ---------------------------------------------------------------------------------------------

LAYER_CASES = {
    "same-bits": {"bits": 4},
    "input-8-bits-signed": {"bits": 4, "input_bits": 8, "input_signed": True},
    "input-2-bits": {"bits": 8, "input_bits": 2},
    "float-input": {"bits": 2, "quantize_input": False},
}


def make_layer(kind: str, config: dict, seed: int):
    """A float64 layer (``.double()``: its steps in float64 too) with an input and an upstream."""
    rng = np.random.default_rng(seed)
    if kind == "linear":
        layer, x = surrogate.QuantLinear(8, 4, **config), rng.normal(0.3, 1.0, (5, 8))
        fn = F.linear
    else:
        layer = surrogate.QuantConv2d(2, 3, 3, stride=2, padding=1, **config)
        x = rng.normal(0.3, 1.0, (2, 2, 7, 6))
        fn = lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)  # noqa: E731
    layer = layer.double()
    w = rng.normal(0.0, 0.5, tuple(layer.weight.shape))
    b = rng.normal(0.0, 0.5, tuple(layer.bias.shape))
    with torch.no_grad():
        layer.weight.copy_(t64(w))
        layer.bias.copy_(t64(b))
    return layer, fn, x, w, b


@pytest.mark.parametrize("config", LAYER_CASES.values(), ids=LAYER_CASES.keys())
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_quant_layer_is_the_float_layer_on_quantized_input_and_weight(kind, config):
    layer, fn, x, w, b = make_layer(kind, config, seed=11)
    bits = config["bits"]
    s_w = ref_init(w, bits, True)
    q_w = ref_quantize(w, s_w, bits, True)
    if config.get("quantize_input", True):
        in_bits, in_signed = config.get("input_bits", bits), config.get("input_signed", False)
        s_x = ref_init(x, in_bits, in_signed)
        q_x, mask_x = ref_quantize(x, s_x, in_bits, in_signed), inside(x, s_x, in_bits, in_signed)
        assert (layer.input_quantizer.bits, layer.input_quantizer.signed) == (in_bits, in_signed)
    else:
        q_x, mask_x = x, np.ones_like(x, dtype=bool)
        assert layer.input_quantizer is None
    # The float layer on the quantized tensors, and its gradients (ste rounds, fixed steps).
    qx_leaf, qw_leaf = t64(q_x).requires_grad_(True), t64(q_w).requires_grad_(True)
    expected = fn(qx_leaf, qw_leaf, t64(b))
    upstream = torch.randn(expected.shape, dtype=torch.float64)
    expected.backward(upstream)

    xt = t64(x).requires_grad_(True)
    y = layer(xt)
    y.backward(upstream)
    assert_close(y.detach(), expected.detach())
    assert_close(xt.grad, qx_leaf.grad * t64(mask_x))
    assert_close(layer.weight.grad, qw_leaf.grad * t64(inside(w, s_w, bits, True)))
    assert layer.weight_quantizer.statistics() == {"step": pytest.approx(s_w, rel=1e-14)}
    if layer.input_quantizer is not None:
        assert layer.input_quantizer.statistics() == {"step": pytest.approx(s_x, rel=1e-14)}


@pytest.mark.parametrize(("quantize_input", "count"), [(True, 2), (False, 1)])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_swap_reaches_the_quantizers(kind, quantize_input, count):
    layer = (
        surrogate.QuantLinear(4, 2, quantize_input=quantize_input)
        if kind == "linear"
        else surrogate.QuantConv2d(1, 2, 3, quantize_input=quantize_input)
    )
    model = torch.nn.Sequential(layer, torch.nn.ReLU())
    assert surrogate.swap(model, round="sigmoid") == count
    quantizers = [q for q in (layer.weight_quantizer, layer.input_quantizer) if q is not None]
    assert [q.round.estimator.name for q in quantizers] == ["sigmoid"] * count
    assert surrogate.swap(model, round="sigmoid") == 0


# ---------------------------------------------------------------------------------------------
# Precision of the step
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "scale", "dtype"),
    [
        (0.25, 1 / math.sqrt(15), torch.float64),
        (0.3, 1 / math.sqrt(105), torch.float64),
        (0.7, 1 / math.sqrt(60), torch.float32),
    ],
    ids=["0.25-float64", "0.3-float64", "0.7-float32"],
)
def test_scale_gradient_is_the_identity_forward(value, scale, dtype):
    """``scale_gradient``: x in the forward, bit for bit; the gradient times ``scale``."""
    x = torch.tensor(value, dtype=dtype, requires_grad=True)
    y = scale_gradient(x, scale)
    y.backward()
    assert x.grad.item() == pytest.approx(scale, rel=1e-6)
    assert y.item() == x.item()


@pytest.mark.parametrize(("step", "bits", "n"), [(0.25, 4, 15), (0.7, 3, 20), (0.2, 4, 12)])
def test_learned_step_forward_equals_the_fixed_step_forward(step, bits, n):
    """LSQ's gradient scale changes the step's gradient, not the quantized values."""
    x = torch.linspace(-3.0, 3.0, n)
    fixed = surrogate.Quantize(bits, step=step, kind="weights")
    learned = surrogate.Quantize(bits, step=step, learn_step=True, kind="weights")
    assert torch.equal(learned(x), fixed(x))


def test_float64_input_uses_the_step_in_float64():
    """A float64 quantizer quantizes with the step given, not with its float32 rounding."""
    x = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    q = surrogate.Quantize(4, step=0.1, dtype=torch.float64)(x)
    assert torch.equal(q, t64(ref_quantize(x.numpy(), 0.1, 4, True)))


def test_float64_layer_has_float64_steps():
    layer = surrogate.QuantLinear(4, 2, learn_step=True, dtype=torch.float64)
    steps = (layer.weight_quantizer.step, layer.input_quantizer.step)
    assert [s.dtype for s in steps] == [torch.float64, torch.float64]

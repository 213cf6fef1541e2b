"""The scalar hard ops (step, sign, round) with every estimator, held to the README's
forwards, estimator tables and guarantees.

Expected values come from ``reference.py``: float64 formulas written from the README, never from the
library. Forwards are compared bit for bit (sign of zero included), backwards within a tolerance per
dtype (fp16 and bf16 compute in fp32 and return their own dtype).
"""

from __future__ import annotations

import math
import pickle
import zlib

import numpy as np
import pytest
import torch
from scipy import integrate

import surrogate
from tests.library import reference as ref

OPS = ("step", "sign", "round")
ESTIMATORS = ("none", "ste", *ref.BUMPS)
BUMPS = ref.BUMPS
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
FUNCTION = {"step": surrogate.step, "sign": surrogate.sign, "round": surrogate.round}
MODULE = {"step": surrogate.Step, "sign": surrogate.Sign, "round": surrogate.Round}
NON_DEFAULT = {
    "clipped_ste": {"width": 0.5},
    "sigmoid": {"beta": 8.0},
    "fast_sigmoid": {"beta": 3.0},
    "atan": {"alpha": 3.0},
    "tanh": {"beta": 1.5},
    "triangle": {"width": 0.5},
    "gaussian": {"sigma": 0.3},
    "exponential": {"alpha": 3.0},
    "swish": {"beta": 5.0},
}
# (estimator, parameters): none and ste take none; each bump with its default and one other value.
CASES = [("none", {}), ("ste", {})]
CASES += [case for name in BUMPS for case in ((name, {}), (name, NON_DEFAULT[name]))]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in CASES]

# Backward tolerance (rtol, atol) against the float64 reference.
GRAD_TOL = {
    torch.float64: (1e-9, 1e-12),
    torch.float32: (2e-5, 1e-6),
    torch.float16: (2e-3, 1e-5),
    torch.bfloat16: (1e-2, 1e-5),
}
# Relaxed-forward tolerance: the result of an fp32 computation rounded to the output dtype.
VALUE_TOL = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (2e-6, 1e-6),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (8e-3, 8e-3),
}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def extremes(dtype: torch.dtype) -> dict[str, float]:
    fi = torch.finfo(dtype)
    return {"max": fi.max, "tiny": fi.tiny, "sub": fi.tiny * fi.eps, "eps": fi.eps}


def edge_values(dtype: torch.dtype) -> list[float]:
    """Every corner of the forward conventions that ``dtype`` can hold."""
    e = extremes(dtype)
    big = 1.0 / e["eps"]  # from here on every value of the dtype is an integer
    values = [0.0, -0.0, math.nan, math.inf, -math.inf, e["max"], -e["max"]]
    values += [e["tiny"], -e["tiny"], e["sub"], -e["sub"], 1.0, -1.0, 1e-3, -1e-3]
    values += [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5, 4.5, -4.5, 0.25, -0.75]
    values += [0.5 - e["eps"] / 4, 0.5 + e["eps"] / 2, -0.5 + e["eps"] / 4, -0.5 - e["eps"] / 2]
    values += [big - 0.5, big - 1.5, -(big - 0.5), -(big - 1.5), big, big + 2.0, -big - 2.0]
    return values


def random_values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.normal(0.0, 2.0, n // 3),
            rng.uniform(-12.0, 12.0, n // 3),
            rng.integers(-40, 41, n - 2 * (n // 3)) / 4.0,  # exact quarters, halves, integers
        ]
    )


def to_tensor(values, dtype, device, layout: str = "contiguous") -> torch.Tensor:
    """``values`` (1-D) as a ``dtype`` tensor on ``device`` laid out as ``layout``."""
    flat = torch.as_tensor(np.asarray(values, dtype=np.float64)).to(dtype)
    n = flat.numel()
    if layout == "empty":
        return torch.empty(4, 0, dtype=dtype, device=device)
    rows = next(r for r in (16, 8, 5, 4, 3, 2, 1) if n % r == 0)
    grid = flat.reshape(rows, n // rows).to(device)
    if layout == "contiguous":
        return grid
    if layout == "transposed":
        x = grid.t().contiguous().t()
    elif layout == "strided":
        base = torch.full((2 * rows, 3 * (n // rows)), 7.0, dtype=dtype, device=device)
        base[::2, ::3] = grid
        x = base[::2, ::3]
    else:
        raise ValueError(layout)
    assert not x.is_contiguous()
    assert torch.equal(x.nan_to_num(0.0), grid.nan_to_num(0.0))
    return x


def as_f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def from_ref(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A float64 reference result in ``like``'s dtype and device (exact for the hard forwards)."""
    return torch.from_numpy(np.ascontiguousarray(values)).to(like.dtype).to(like.device)


def assert_bitwise(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Same dtype, device, shape, NaN positions, values and signs of zero."""
    assert actual.dtype == expected.dtype
    assert actual.device == expected.device
    assert actual.shape == expected.shape
    nan = expected.isnan()
    assert torch.equal(actual.isnan(), nan), "NaN positions differ"
    a, e = actual[~nan], expected[~nan]
    assert torch.equal(a, e), f"values differ: {a[a != e][:8]} vs {e[a != e][:8]}"
    assert torch.equal(a.signbit(), e.signbit()), "sign of zero differs"


def assert_close_to_ref(actual: torch.Tensor, expected: np.ndarray, tol) -> None:
    rtol, atol = tol
    torch.testing.assert_close(
        actual.detach().to("cpu", torch.float64),
        torch.from_numpy(np.ascontiguousarray(expected, dtype=np.float64)),
        rtol=rtol,
        atol=atol,
        equal_nan=True,
    )


def build(op: str, name, params: dict, api: str, relaxed: bool = False):
    """The op with estimator ``name`` and ``params``, reached through one of the public APIs."""
    fn, module = FUNCTION[op], MODULE[op]
    if api == "function":
        return lambda x: fn(x, name, relaxed=relaxed, **params)
    if api == "estimator":
        est = surrogate.estimator(name, **params)
        return lambda x: fn(x, est, relaxed=relaxed)
    if api == "module":
        return module(name, relaxed=relaxed, **params)
    if api == "module_swap":  # built with another estimator, then swapped in place
        layer = module("sigmoid" if relaxed else "none", relaxed=relaxed)
        layer.estimator = surrogate.estimator(name, **params)
        return layer
    raise ValueError(api)


def forward_backward(fn, x: torch.Tensor, g: torch.Tensor):
    """``fn(x)`` and the gradient it sends to ``x`` for the incoming gradient ``g``."""
    x = x.detach().requires_grad_(True)
    y = fn(x)
    y.backward(g)
    return y.detach(), x.grad


def random_grad(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A non-constant incoming gradient, none of it zero."""
    rng = np.random.default_rng(seed)
    g = rng.normal(0.0, 1.0, x.shape)
    g += np.where(g >= 0, 0.25, -0.25)
    return torch.from_numpy(g).to(x.dtype).to(x.device)


def backward_inputs(op: str, name: str, params: dict, dtype: torch.dtype) -> list[float]:
    """Random inputs plus every finite corner: the bump's edges ±w, tiny and huge values."""
    values = list(random_values(1500, seed=zlib.crc32(f"{op}{name}{dtype}".encode())))
    e = extremes(dtype)
    values += [0.0, -0.0, e["tiny"], -e["tiny"], e["sub"], -e["sub"], e["max"], -e["max"]]
    values += [0.5, -0.5, 1.5, -2.5, 1.0, -1.0]
    if "width" in ref.DEFAULTS.get(name, {}):
        w = params.get("width", ref.DEFAULTS[name]["width"])
        values += [w, -w, w * (1 + e["eps"]), -w * (1 + e["eps"]), w * (1 - e["eps"] / 2)]
    return values


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_available_lists_exactly_the_readme_estimators(op):
    assert set(surrogate.available(op)) == set(ESTIMATORS)


@pytest.mark.parametrize("name", BUMPS)
def test_parameter_defaults_are_the_readme_table(name):
    assert surrogate.parameters(name) == pytest.approx(ref.DEFAULTS[name], rel=1e-15)


# ---------------------------------------------------------------------------------------------
# 1. Forward: bit-exact, the README's forward conventions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "empty"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("op", OPS)
def test_forward_is_bit_exact(op, name, dtype, layout, device):
    values = edge_values(dtype) + list(random_values(1200, seed=7))
    values = values[: len(values) // 16 * 16]
    x = to_tensor(values, dtype, device, layout)
    expected = from_ref(ref.FORWARD[op](as_f64(x)), x)
    for requires_grad in (False, True):
        out = FUNCTION[op](x.detach().requires_grad_(requires_grad), name)
        assert_bitwise(out, expected)
    assert_bitwise(MODULE[op](name)(x), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_forward_matches_torch_where_the_readme_names_it(op, dtype, device):
    """step is torch.heaviside(x, 0) and round is torch.round, wherever x is not NaN."""
    x = to_tensor(edge_values(dtype) + list(random_values(300, seed=3)), dtype, device)
    x = x[~x.isnan()]
    out = FUNCTION[op](x, "atan")
    if op == "step":
        assert_bitwise(out, torch.heaviside(x, torch.zeros_like(x)))
    elif op == "round":
        assert_bitwise(out, torch.round(x))
    else:  # torch.sign(0) = 0; ours is +1 there, and equals torch.sign elsewhere
        nonzero = x != 0
        assert_bitwise(out[nonzero], torch.sign(x[nonzero]))
        assert torch.all(out[~nonzero] == 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_named_corners(dtype):
    """The forward conventions spelled out in the README, one value at a time."""

    def t(*v):
        return torch.tensor(v, dtype=torch.float64).to(dtype)

    nan, inf = math.nan, math.inf
    step = surrogate.step(t(0.0, -0.0, 1e-3, -1e-3, inf, -inf, nan), "sigmoid")
    assert_bitwise(step, t(0.0, 0.0, 1.0, 0.0, 1.0, 0.0, nan))
    sign = surrogate.sign(t(0.0, -0.0, 1e-3, -1e-3, inf, -inf, nan), "atan")
    assert_bitwise(sign, t(1.0, 1.0, 1.0, -1.0, 1.0, -1.0, nan))
    rnd = surrogate.round(t(0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -0.25, 0.75, inf, -inf, nan), "ste")
    assert_bitwise(rnd, t(0.0, 2.0, 2.0, -0.0, -2.0, -2.0, -0.0, 1.0, inf, -inf, nan))


# ---------------------------------------------------------------------------------------------
# 2. Backward against the float64 reference of the estimator table
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("api", ["function", "estimator", "module", "module_swap"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("op", OPS)
def test_backward_matches_reference(op, name, params, dtype, api, device):
    x = to_tensor(backward_inputs(op, name, params, dtype), dtype, device)
    g = random_grad(x, seed=11)
    y, grad = forward_backward(build(op, name, params, api), x, g)
    assert_bitwise(y, from_ref(ref.FORWARD[op](as_f64(x)), x))
    assert grad.dtype == dtype and grad.device == x.device and grad.shape == x.shape
    expected = ref.surrogate_grad(op, name, as_f64(x), as_f64(g), **params)
    if name == "ste":
        assert torch.equal(grad, g)
    elif name == "none":
        assert torch.equal(grad, torch.zeros_like(g))
    else:
        assert torch.isfinite(grad).all()
        assert_close_to_ref(grad, expected, GRAD_TOL[dtype])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["transposed", "strided", "empty"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("op", OPS)
def test_backward_on_strided_and_empty_inputs(op, name, dtype, layout, device):
    values = list(random_values(480, seed=5))
    x = to_tensor(values, dtype, device, layout)
    g = random_grad(x, seed=13)
    if layout != "empty":
        g = g.t().contiguous().t()  # a non-contiguous incoming gradient as well
    y, grad = forward_backward(lambda t: FUNCTION[op](t, name), x, g)
    assert_bitwise(y, from_ref(ref.FORWARD[op](as_f64(x)), x))
    assert grad.dtype == dtype and grad.shape == x.shape
    expected = ref.surrogate_grad(op, name, as_f64(x), as_f64(g))
    assert_close_to_ref(grad, expected, GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", BUMPS)
def test_jump_scales_the_bump_at_the_jump(name, dtype):
    """At the jump: step gets p(0) = 1, sign 2·p(0) = 2, round p(0) at every k + 1/2.

    clipped_ste has p(0) = 1/(2w) = 1/2 at its default instead.
    """
    p0 = 0.5 if name == "clipped_ste" else 1.0
    rtol = 1e-6 if dtype in (torch.float32, torch.float64) else 0.0
    zero = torch.zeros(3, dtype=dtype)
    halves = torch.tensor([0.5, -0.5, 2.5, -3.5, 10.5], dtype=dtype)
    for op, x, j in (("step", zero, 1.0), ("sign", zero, 2.0), ("round", halves, 1.0)):
        _, grad = forward_backward(lambda t, op=op: FUNCTION[op](t, name), x, torch.ones_like(x))
        expected = torch.full_like(grad, j * p0, dtype=torch.float64)
        torch.testing.assert_close(grad.double(), expected, rtol=rtol, atol=0.0)


@pytest.mark.parametrize("api", ["function", "estimator", "module"])
@pytest.mark.parametrize("name", BUMPS)
def test_parameter_changes_the_gradient(name, api):
    """A non-default parameter is really used: its gradient differs from the default one's."""
    x = torch.linspace(-2.0, 2.0, 101, dtype=torch.float64)
    g = torch.ones_like(x)
    _, default = forward_backward(build("step", name, {}, api), x, g)
    _, other = forward_backward(build("step", name, NON_DEFAULT[name], api), x, g)
    assert not torch.allclose(default, other)


# ---------------------------------------------------------------------------------------------
# 3. Unit area and p(0)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), CASES[2:], ids=CASE_IDS[2:])
def test_bump_has_unit_area(name, params):
    """∫ p = 1, with p read off the library's step gradient in float64.

    Integrated in θ with x = tan θ, so the slow 1/x² tails (atan, fast_sigmoid) are included;
    swish is negative in its tails and still has unit area.
    """
    theta = torch.linspace(-math.pi / 2, math.pi / 2, 400_001, dtype=torch.float64)
    x = torch.tan(theta)
    _, p = forward_backward(lambda t: surrogate.step(t, name, **params), x, torch.ones_like(x))
    assert torch.isfinite(p).all()
    area = torch.trapezoid(p * (1 + x.square()), theta).item()
    assert area == pytest.approx(1.0, abs=5e-5)
    if name == "swish":
        assert p.min() < 0
    else:
        assert p.min() >= 0


@pytest.mark.parametrize("name", BUMPS)
def test_bump_area_on_a_plain_grid(name):
    """The same on x in [-50, 50]; what lies beyond is the reference's tail mass, at most 0.4%."""
    x = torch.linspace(-50.0, 50.0, 1_000_001, dtype=torch.float64)
    _, p = forward_backward(lambda t: surrogate.step(t, name), x, torch.ones_like(x))
    tail = 1.0 - (ref.integral(name, 50.0) - ref.integral(name, -50.0))
    # The grid steps over clipped_ste's two jumps; a trapezoid is off by ~h/4 at each.
    tol = 1e-4 if name == "clipped_ste" else 1e-6
    assert torch.trapezoid(p, x).item() + tail == pytest.approx(1.0, abs=tol)


# ---------------------------------------------------------------------------------------------
# 4. Relaxed mode
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("api", ["function", "estimator", "module", "module_swap"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "params"), CASES[2:], ids=CASE_IDS[2:])
@pytest.mark.parametrize("op", OPS)
def test_relaxed_forward_is_the_integral(op, name, params, dtype, api, device):
    """step: P(x); sign: 2P(x) − 1; round: floor(x) + P(r). Backward as in hard mode."""
    values = list(random_values(600, seed=17)) + [0.0, -0.0, 0.5, -0.5, 1.0, -1.0]
    x = to_tensor(values, dtype, device)
    g = random_grad(x, seed=19)
    y, grad = forward_backward(build(op, name, params, api, relaxed=True), x, g)
    assert y.dtype == dtype and y.device == x.device and y.shape == x.shape
    assert_close_to_ref(y, ref.relaxed(op, name, as_f64(x), **params), VALUE_TOL[dtype])
    expected = ref.surrogate_grad(op, name, as_f64(x), as_f64(g), **params)
    assert_close_to_ref(grad, expected, GRAD_TOL[dtype])


def _away_from_kinks(op: str, name: str, params: dict, x: np.ndarray) -> np.ndarray:
    """Drop points where P or floor has a kink or jump within the finite-difference step."""
    if op == "round":
        return x[np.abs(x - np.round(x)) > 1e-3]
    kinks = [0.0]
    if "width" in ref.DEFAULTS[name]:
        w = params.get("width", ref.DEFAULTS[name]["width"])
        kinks += [w, -w]
    return x[np.min([np.abs(x - k) for k in kinks], axis=0) > 1e-3]


@pytest.mark.parametrize(("name", "params"), CASES[2:], ids=CASE_IDS[2:])
@pytest.mark.parametrize("op", OPS)
def test_relaxed_forward_finite_difference_is_the_backward(op, name, params):
    """(F(x + h) − F(x − h)) / 2h of the relaxed forward F ≈ the backward."""
    rng = np.random.default_rng(23)
    span = 6.0 if op == "round" else 3.0
    x = _away_from_kinks(op, name, params, rng.uniform(-span, span, 2000))
    x = torch.from_numpy(x)
    h = 1e-6
    relaxed = build(op, name, params, "function", relaxed=True)
    fd = (relaxed(x + h) - relaxed(x - h)) / (2 * h)
    _, grad = forward_backward(build(op, name, params, "function"), x, torch.ones_like(x))
    torch.testing.assert_close(fd, grad, rtol=1e-5, atol=1e-6)
    expected = ref.surrogate_grad(op, name, x.numpy(), np.ones(x.shape), **params)
    assert_close_to_ref(fd, expected, (1e-5, 1e-6))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "params"), CASES[2:], ids=CASE_IDS[2:])
@pytest.mark.parametrize("op", OPS)
def test_relaxed_forward_at_the_extremes(op, name, params, dtype, device):
    """±inf give the limits (P(-inf) = 0, P(+inf) = 1), NaN gives NaN, huge finite x stay finite."""
    e = extremes(dtype)
    values = [math.inf, -math.inf, math.nan, e["max"], -e["max"], e["max"] / 2, -e["max"] / 2]
    x = to_tensor(values, dtype, device)
    g = random_grad(x, seed=29)
    y, grad = forward_backward(build(op, name, params, "function", relaxed=True), x, g)
    limits = {"step": (1.0, 0.0), "sign": (1.0, -1.0), "round": (math.inf, -math.inf)}[op]
    assert y[0, 0].item() == limits[0] and y[0, 1].item() == limits[1]
    assert y[0, 2].isnan()
    assert torch.isfinite(y[0, 3:]).all(), f"relaxed {op} of a finite input: {y[0, 3:]}"
    assert_close_to_ref(y, ref.relaxed(op, name, as_f64(x), **params), VALUE_TOL[dtype])
    assert torch.equal(grad[0, :2], torch.zeros_like(grad[0, :2]))


@pytest.mark.parametrize("name", ["none", "ste"])
@pytest.mark.parametrize("op", OPS)
def test_relaxed_refused_without_a_smooth_forward(op, name):
    x = torch.randn(8)
    with pytest.raises(ValueError, match=name):
        FUNCTION[op](x, name, relaxed=True)
    with pytest.raises(ValueError, match=name):
        FUNCTION[op](x, surrogate.estimator(name), relaxed=True)
    with pytest.raises(ValueError, match=name):
        MODULE[op](name, relaxed=True)
    layer = MODULE[op]("atan", relaxed=True)
    with pytest.raises(ValueError, match=name):
        layer.estimator = name
    assert layer.estimator == surrogate.estimator("atan")  # the refused swap left it as it was
    layer = MODULE[op](name)
    with pytest.raises(ValueError, match=name):
        layer.relaxed = True
    assert not layer.relaxed


# ---------------------------------------------------------------------------------------------
# 5. NaN and ±inf inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("op", OPS)
def test_nan_input_gradient(op, name, params, dtype, device):
    """Smooth estimators give NaN at NaN (only there); none gives 0, ste passes g."""
    x = to_tensor([math.nan, 0.3, -1.7, math.nan, 0.0, 2.5, -0.5, 4.0], dtype, device)
    g = random_grad(x, seed=31)
    y, grad = forward_backward(build(op, name, params, "function"), x, g)
    nan = x.isnan()
    assert torch.equal(y.isnan(), nan)
    if name == "none":
        assert torch.equal(grad, torch.zeros_like(g))
    elif name == "ste":
        assert torch.equal(grad, g)
    elif name != "clipped_ste":  # clipped_ste follows its formula and need not look at NaN
        assert grad[nan].isnan().all()
    assert torch.isfinite(grad[~nan]).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("op", OPS)
def test_infinite_input_gradient(op, name, params, dtype, device):
    """Every bounded estimator (all but ste) gives exactly 0 at ±inf, never NaN."""
    x = to_tensor([math.inf, -math.inf, 0.3, -0.2, math.inf, -math.inf], dtype, device)
    g = random_grad(x, seed=37) * 1000
    y, grad = forward_backward(build(op, name, params, "function"), x, g)
    inf = x.isinf()
    assert_bitwise(y[inf], from_ref(ref.FORWARD[op](as_f64(x[inf])), x))
    if name == "ste":
        assert torch.equal(grad, g)
    else:
        assert torch.equal(grad[inf], torch.zeros_like(grad[inf]))
        assert torch.isfinite(grad).all()


# ---------------------------------------------------------------------------------------------
# 6. A user-supplied bump
# ---------------------------------------------------------------------------------------------

SEEN_DTYPES: list[torch.dtype] = []


def epanechnikov(r: torch.Tensor) -> torch.Tensor:
    """p(r) = 3/4·(1 − r²) on [-1, 1]: unit area."""
    SEEN_DTYPES.append(r.dtype)
    return 0.75 * (1 - r.square()).clamp(min=0.0)


def epanechnikov_integral(r: torch.Tensor) -> torch.Tensor:
    u = r.clamp(-1.0, 1.0)
    return 0.5 + 0.75 * (u - u**3 / 3)


def epanechnikov_ref(r: np.ndarray) -> np.ndarray:
    return np.where(np.abs(r) <= 1.0, 0.75 * (1.0 - r**2), 0.0)


def epanechnikov_integral_ref(r: np.ndarray) -> np.ndarray:
    u = np.clip(r, -1.0, 1.0)
    return 0.5 + 0.75 * u - 0.25 * u**3


@pytest.mark.parametrize("api", ["function", "estimator", "module"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_custom_bump_backward(op, dtype, api):
    x = to_tensor(random_values(600, seed=41), dtype, "cpu")
    g = random_grad(x, seed=43)
    SEEN_DTYPES.clear()
    y, grad = forward_backward(build(op, epanechnikov, {}, api), x, g)
    assert_bitwise(y, from_ref(ref.FORWARD[op](as_f64(x)), x))
    assert set(SEEN_DTYPES) == {torch.float64 if dtype == torch.float64 else torch.float32}
    expected = as_f64(g) * ref.JUMP[op] * epanechnikov_ref(ref.offset(op, as_f64(x)))
    assert grad.dtype == dtype
    assert_close_to_ref(grad, expected, GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_custom_bump_relaxed(op, dtype):
    x = to_tensor(random_values(600, seed=47), dtype, "cpu")
    est = surrogate.estimator(epanechnikov, integral=epanechnikov_integral)
    y = FUNCTION[op](x, est, relaxed=True)
    x64 = as_f64(x)
    P = epanechnikov_integral_ref
    expected = {
        "step": lambda: P(x64),
        "sign": lambda: 2 * P(x64) - 1,
        "round": lambda: np.floor(x64) + P(ref.round_offset(x64)),
    }[op]()
    assert y.dtype == dtype
    assert_close_to_ref(y, expected, VALUE_TOL[dtype])
    assert_close_to_ref(MODULE[op](est, relaxed=True)(x), expected, VALUE_TOL[dtype])


@pytest.mark.parametrize("op", OPS)
def test_custom_bump_without_integral_refuses_relaxed(op):
    with pytest.raises(ValueError):
        FUNCTION[op](torch.randn(4), epanechnikov, relaxed=True)
    with pytest.raises(ValueError):
        MODULE[op](surrogate.estimator(epanechnikov), relaxed=True)


def test_custom_estimator_pickles_and_compares_by_value():
    est = surrogate.estimator(epanechnikov, integral=epanechnikov_integral)
    assert pickle.loads(pickle.dumps(est)) == est
    layer = pickle.loads(pickle.dumps(surrogate.Sign(est, relaxed=True)))
    assert layer == surrogate.Sign(est, relaxed=True)


# ---------------------------------------------------------------------------------------------
# The reference checks itself (so a failure above points at the library, not at reference.py)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), CASES[2:], ids=CASE_IDS[2:])
def test_reference_is_consistent(name, params):
    x = np.linspace(-7.0, 7.0, 3001)
    h = 1e-6
    fd = (ref.integral(name, x + h, **params) - ref.integral(name, x - h, **params)) / (2 * h)
    w = params.get("width", ref.DEFAULTS[name].get("width", math.nan))
    # Away from the kinks of p (0, ±w), where a central difference of P is off by O(h).
    smooth = (np.abs(np.abs(x) - w) > 1e-3) & (np.abs(x) > 1e-3)
    np.testing.assert_allclose(fd[smooth], ref.bump(name, x[smooth], **params), atol=1e-7)
    np.testing.assert_allclose(ref.integral(name, [-np.inf, np.inf], **params), [0.0, 1.0])
    np.testing.assert_array_equal(ref.bump(name, [-np.inf, np.inf], **params), [0.0, 0.0])
    area, _ = integrate.quad(lambda t: ref.bump(name, t, **params), -np.inf, np.inf, limit=400)
    assert area == pytest.approx(1.0, abs=1e-6)
    if not params:
        assert ref.bump(name, 0.0) == pytest.approx(0.5 if name == "clipped_ste" else 1.0)

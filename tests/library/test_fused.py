"""The fused path (``surrogate.fused``) against the eager formulas it compiles.

Every scalar op with every estimator runs on a tensor above the fused threshold twice, once through
the compiled kernels and once eagerly: hard forwards must agree bit for bit (NaN positions and signs
of zero included), gradients and relaxed forwards to rounding. Also: memory saved for backward,
layouts, when the fused path must stand aside, and the fallback when no compiler works.

Each kernel compiles in one to three seconds on a small CPU (kernels are cached for the session), so
the fast tier covers step with every estimator and sign and round with one of each kind; the other
pairs, bf16 and relaxed mode are marked slow.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import surrogate
from surrogate import fused

OPS = ("step", "sign", "round")
FUNCTION = {"step": surrogate.step, "sign": surrogate.sign, "round": surrogate.round}
ESTIMATORS = surrogate.available("step")
SMOOTH = [n for n in ESTIMATORS if n not in ("none", "ste", "clipped_ste")]
RELAXABLE = ["clipped_ste", *SMOOTH]
SHIPPED = dict(fused.thresholds)  # the rule as shipped, before the fixture below lowers it
# The tests run the compiled path on tensors of this size (the CPU threshold of the fixture): well
# below the shipped one, so that they stay fast.
THRESHOLD = 2**17
N = THRESHOLD + 37  # above the threshold, and not a multiple of any vector width
# (rtol, atol) between the compiled and the eager formulas: the same math, rounded differently.
TOL = {torch.float32: (2e-5, 1e-6), torch.bfloat16: (1e-2, 1e-5)}
FAST = {("step", n) for n in ESTIMATORS} | {
    (op, n) for op in ("sign", "round") for n in ("none", "clipped_ste", "atan")
}
CASES = [
    pytest.param(op, name, id=f"{op}-{name}", marks=() if (op, name) in FAST else pytest.mark.slow)
    for op in OPS
    for name in ESTIMATORS
]


def inputs(dtype: torch.dtype, n: int = N, seed: int = 0) -> torch.Tensor:
    """``n`` values: every edge case of the forward conventions, exact halves and integers, and
    noise."""
    fi = torch.finfo(dtype)
    edges = [0.0, -0.0, math.nan, math.inf, -math.inf, fi.max, -fi.max, fi.tiny, -fi.tiny]
    edges += [fi.tiny * fi.eps, -fi.tiny * fi.eps, 0.5, -0.5, 1.5, -2.5, 1.0, -1.0]
    rng = np.random.default_rng(seed)
    rest = n - len(edges)
    noise = np.concatenate(
        [rng.normal(0, 2, rest // 2), rng.integers(-40, 41, rest - rest // 2) / 4.0]
    )
    return torch.tensor(np.concatenate([edges, rng.permutation(noise)])).to(dtype)


@pytest.fixture(autouse=True)
def _test_threshold(monkeypatch):
    monkeypatch.setattr(fused, "thresholds", {**fused.thresholds, "cpu": THRESHOLD})


@pytest.fixture
def compiled_calls(monkeypatch):
    """Counts the calls that took the compiled path (only it flattens its tensors)."""
    calls = []
    flat = fused._flat

    def counting(t):
        calls.append(t.shape)
        return flat(t)

    skip_unless_the_fused_path_works()
    monkeypatch.setattr(fused, "_flat", counting)
    return calls


def skip_unless_the_fused_path_works() -> None:
    """Skip, saying why, where the compiled path is off: ``SURROGATE_FUSED=0``, or no compiler
    (the first compile fails and turns it off, which one small call finds out)."""
    if fused.enabled:
        surrogate.step(torch.zeros(N, requires_grad=True), "ste").sum().backward()
    if not fused.enabled:
        reason = fused.failure or "SURROGATE_FUSED=0 in the environment"
        pytest.skip(f"the fused (compiled) path is off here: {reason}")


def forward_backward(fn, x: torch.Tensor, g: torch.Tensor):
    x = x.detach().requires_grad_(True)
    y = fn(x)
    y.backward(g)
    return y.detach(), x.grad


def both_paths(fn, x, g, monkeypatch, compiled_calls):
    """``forward_backward`` through the compiled kernels, then through the eager formulas."""
    fused_result = forward_backward(fn, x, g)
    assert compiled_calls, "the fused path was not taken"
    with monkeypatch.context() as m:
        m.setattr(fused, "enabled", False)
        eager_result = forward_backward(fn, x, g)
    return fused_result, eager_result


def assert_bitwise(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    nan = expected.isnan()
    assert torch.equal(actual.isnan(), nan), "NaN positions differ"
    assert torch.equal(actual[~nan], expected[~nan]), "values differ"
    assert torch.equal(actual[~nan].signbit(), expected[~nan].signbit()), "signs of zero differ"


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype
    rtol, atol = TOL[expected.dtype]
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


# Every (op, estimator) in fp32; bf16 (the fp32 formulas, cast) on the FAST ones. Each case
# compiles its own kernels, seconds apiece on a cold cache, so the grid stays small.
@pytest.mark.parametrize(
    ("op", "name", "dtype"),
    [pytest.param(*case.values, torch.float32, id=f"{case.id}-float32", marks=case.marks)
     for case in CASES]
    + [pytest.param(op, name, torch.bfloat16, id=f"{op}-{name}-bfloat16", marks=pytest.mark.slow)
       for op, name in sorted(FAST)],
)  # fmt: skip
def test_fused_equals_eager(op, name, dtype, monkeypatch, compiled_calls):
    x = inputs(dtype)
    g = torch.randn(N, generator=torch.Generator().manual_seed(1)).to(dtype)
    (y, grad), (y_eager, grad_eager) = both_paths(
        lambda t: FUNCTION[op](t, name), x, g, monkeypatch, compiled_calls
    )
    assert_bitwise(y, y_eager)
    if name == "ste":
        assert torch.equal(grad, g)
    else:
        assert_close(grad, grad_eager)


# Every relaxed formula in fp32; bf16 on one per op (see test_fused_equals_eager).
RELAXED_CASES = [(op, name, torch.float32) for op in OPS for name in RELAXABLE] + [
    ("step", "sigmoid", torch.bfloat16),
    ("sign", "clipped_ste", torch.bfloat16),
    ("round", "triangle", torch.bfloat16),
]


@pytest.mark.slow
@pytest.mark.parametrize(("op", "name", "dtype"), RELAXED_CASES, ids=str)
def test_fused_relaxed_equals_eager(op, name, dtype, monkeypatch, compiled_calls):
    x = inputs(dtype, seed=2)
    g = torch.randn(N, generator=torch.Generator().manual_seed(3)).to(dtype)
    (y, grad), (y_eager, grad_eager) = both_paths(
        lambda t: FUNCTION[op](t, name, relaxed=True), x, g, monkeypatch, compiled_calls
    )
    assert_close(y, y_eager)
    assert_close(grad, grad_eager)


def saved_tensors(fn, x: torch.Tensor) -> list[torch.Tensor]:
    """The tensors the autograd graph of ``fn(x)`` keeps for backward (after running it)."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(x)
    y.backward(torch.ones_like(y))
    return saved


@pytest.mark.parametrize("op", OPS)
def test_saved_bytes_on_the_fused_path(op, compiled_calls):
    """The memory guarantee on a large tensor: nothing, a one-byte mask, or the input itself."""
    x = inputs(torch.float32).requires_grad_(True)
    for name, expected in [("none", 0), ("ste", 0), ("clipped_ste", 1), ("atan", 4)]:
        saved = saved_tensors(lambda t, n=name: FUNCTION[op](t, n), x)
        assert sum(t.numel() * t.element_size() for t in saved) / x.numel() == expected, name
        if name == "atan":
            assert len(saved) == 1 and saved[0] is x
    assert compiled_calls


def test_dense_layouts_keep_their_strides_and_outputs_are_not_views(compiled_calls):
    x = inputs(torch.float32, n=4 * 8 * 72 * 72).reshape(4, 8, 72, 72)
    for layout in (x.contiguous(memory_format=torch.channels_last), x.transpose(0, 3)):
        layout = layout.detach().requires_grad_(True)
        y = surrogate.sign(layout, "atan")
        assert y.stride() == layout.stride()
        assert_bitwise(y, surrogate.sign(layout.contiguous(), "atan"))
        y.mul_(2).sum().backward()  # in place on the output: legal only if it is not a view
        assert layout.grad.stride() == layout.stride()
    assert compiled_calls


def test_strided_inputs_and_small_tensors_run_eagerly(compiled_calls):
    x = torch.randn(2 * N)[::2].requires_grad_(True)  # not dense
    surrogate.step(x, "atan").sum().backward()
    small = torch.randn(THRESHOLD - 1, requires_grad=True)
    surrogate.step(small, "atan").sum().backward()  # the incoming gradient is expanded: eager
    assert not compiled_calls


# The largest activation a hard op of a shipped network sees at its data config's batch size: the
# first block of model=cnn on 28x28 images (batch 128, 16 channels, 14x14 after pooling).
LARGEST_SHIPPED = (128, 16, 14, 14)


def test_the_shipped_cpu_rule_trains_the_shipped_networks_eagerly(monkeypatch, compiled_calls):
    monkeypatch.setattr(fused, "thresholds", SHIPPED)
    x = torch.randn(LARGEST_SHIPPED, requires_grad=True)
    for op in OPS:
        FUNCTION[op](x, "atan").backward(torch.randn(LARGEST_SHIPPED))
    assert not compiled_calls


def test_the_shipped_cpu_threshold_compiles_from_its_size_up(monkeypatch, compiled_calls):
    monkeypatch.setattr(fused, "thresholds", SHIPPED)
    for n, compiled in [(SHIPPED["cpu"] - 1, False), (SHIPPED["cpu"], True)]:
        x = torch.randn(n, requires_grad=True)
        surrogate.sign(x, "atan").backward(torch.ones(n))
        assert bool(compiled_calls) == compiled, n


def test_an_equal_estimator_reuses_the_kernel_and_new_lengths_do_not_recompile(compiled_calls):
    x = inputs(torch.float32)
    g = torch.ones_like(x)
    forward_backward(lambda t: surrogate.sign(t, "atan"), x, g)
    count = len(fused.kernels())
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for n in (N, N + 1, 3 * N):
        x = inputs(torch.float32, n=n)
        forward_backward(lambda t: surrogate.sign(t, surrogate.estimator("atan")), x, x.abs())
    assert len(fused.kernels()) == count
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs


@pytest.mark.slow
def test_torch_compile_and_create_graph_stand_aside(compiled_calls):
    """Under the caller's torch.compile the formulas join its graph; a create_graph backward runs
    eagerly, and can be differentiated again."""
    x = inputs(torch.float32).nan_to_num(0.0, 0.0, 0.0).clamp(-5, 5).requires_grad_(True)
    compiled = torch.compile(lambda t: surrogate.step(t, "atan"), fullgraph=True, dynamic=False)
    compiled(x).sum().backward()
    assert not compiled_calls
    (grad,) = torch.autograd.grad(surrogate.step(x, "atan").sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), x)
    assert torch.isfinite(second).all() and second.abs().sum() > 0


@pytest.mark.parametrize("when", ["first call", "torch.compile"])
def test_a_failed_compile_falls_back_to_eager_for_good(when, monkeypatch):
    """No C++ compiler (here: a compile that raises when the kernel first runs, or a torch.compile
    that refuses at once): one warning, then the eager formulas."""

    def no_compiler(fn, **kwargs):
        def failing(*args):
            raise RuntimeError("no C++ compiler found")

        return failing() if when == "torch.compile" else failing

    monkeypatch.setattr(fused, "_kernels", {})
    monkeypatch.setattr(fused, "enabled", True)
    monkeypatch.setattr(fused, "failure", None)
    monkeypatch.setattr(torch, "compile", no_compiler)
    x = inputs(torch.float32)
    g = torch.randn(N)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        y, grad = forward_backward(lambda t: surrogate.sign(t, "gaussian"), x, g)
    assert not fused.enabled and "no C++ compiler" in fused.failure
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not again
        y_again, grad_again = forward_backward(lambda t: surrogate.sign(t, "gaussian"), x, g)
    expected = torch.where(x >= 0, 1.0, torch.where(x < 0, -1.0, x))
    assert_bitwise(y, expected)
    assert_bitwise(y_again, expected)
    assert_bitwise(grad, grad_again)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_traced_and_eager_forms_of_the_formulas_agree_bit_for_bit(dtype):
    """``exact`` and ``offset`` select under torch.compile and clamp eagerly: same bits, every
    edge case of the forward conventions, every float dtype (``offset`` in the fp32 or fp64 that the
    library computes it in)."""
    from surrogate.dtypes import upcast
    from surrogate.hardops import ROUND, SIGN, STEP

    def formulas(x):
        return STEP.exact(x), SIGN.exact(x), ROUND.exact(x), ROUND.offset(upcast(x))

    x = inputs(dtype, n=4096)
    compiled = torch.compile(formulas, fullgraph=True, dynamic=False)
    for traced, eager in zip(compiled(x), formulas(x), strict=True):
        assert_bitwise(traced, eager)
    # The eager forms themselves, against the definitions of the forwards written with torch.where.
    step, sign, _, offset = formulas(x)
    assert_bitwise(step, torch.where(x > 0, 1.0, torch.where(x <= 0, 0.0, x)).to(dtype))
    assert_bitwise(sign, torch.where(x >= 0, 1.0, torch.where(x < 0, -1.0, x)).to(dtype))
    wide = upcast(x)
    assert_bitwise(offset, torch.where(wide.isinf(), wide, wide - wide.floor() - 0.5))


@pytest.mark.parametrize("op", OPS)
def test_clipped_ste_under_torch_compile_saves_a_uint8_mask(op):
    """Under a caller's torch.compile the saved mask stays one uint8 byte per element: a bool mask
    (what the partitioner picks when the backward compares the mask) runs element by element in
    inductor's C++ loops, 3-5x slower."""
    x = inputs(torch.float32, n=1024).nan_to_num(0.0, 0.0, 0.0).requires_grad_(True)
    g = torch.randn(1024, generator=torch.Generator().manual_seed(3))
    compiled = torch.compile(lambda t: FUNCTION[op](t, "clipped_ste"), fullgraph=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = compiled(x)
    assert [t.dtype for t in saved] == [torch.uint8], [t.dtype for t in saved]
    (grad,) = torch.autograd.grad(y, x, g)
    (eager,) = torch.autograd.grad(FUNCTION[op](x, "clipped_ste"), x, g)
    assert_bitwise(grad, eager)

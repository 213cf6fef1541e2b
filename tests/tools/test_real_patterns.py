"""Acceptance of ``surrogate.audit`` and ``surrogate.intercept`` on models written the way public
repositories write hard ops (``tests/tools/real_patterns.py``). For each model:

(a) the audit's dead parameters are those a plain ``loss.backward()`` leaves with grad None or
    all zero, and the op it blames is cut, with the intercept keyword that heals it as remedy;
(b) under ``surrogate.intercept`` every parameter gets a nonzero gradient;
(c) that gradient is the gradient of the same model written with the library's ops
    (``surrogate.step(v - t)``, ``surrogate.sign``, ``surrogate.round``, ``surrogate.argmax(-d)``),
    in float64 (float32 where the model casts with ``.float()``), and the forward is PyTorch's,
    bit for bit.

Two controls that route the gradient past their hard op themselves are "handled by the model",
and the intercept leaves their gradients as they were."""

from __future__ import annotations

import copy

import pytest
import torch

import surrogate
from surrogate.audit.findings import CUT, HANDLED
from tests.tools.real_patterns import (
    LIF,
    VQ,
    BinaryNet,
    DetachTrick,
    Dreamer,
    OwnSTE,
    Quantized,
    SpyTorch,
    mse,
    spytorch_loss,
)

D = torch.float64
LIF_DEAD = ["fc.weight", "fc.bias"]
BINARY_DEAD = ["fc1.weight", "bn1.weight", "bn1.bias", "fc2.weight"]

# name: (factory, input shape, loss, intercept keywords (the last heals the op blamed), dead as
# written, op blamed, dtype)
CASES = {
    "spytorch spike_fn": (SpyTorch, (3, 4, 5), spytorch_loss, "step", ["w1"], "gt", D),
    "lif (mem > threshold).float()": (lambda: LIF("parameter"), (3, 2, 4), mse, "step",
                                      ["threshold", *LIF_DEAD], "gt", torch.float32),
    "lif torch.where(mem > thr, 1.0, 0.0)": (lambda: LIF("where"), (3, 2, 4), mse, "step",
                                             ["threshold", *LIF_DEAD], "gt", D),
    "lif mem.gt(thr).to(mem.dtype)": (lambda: LIF("gt_to"), (3, 2, 4), mse, "step", LIF_DEAD,
                                      "gt", D),
    "lif (mem - thr > 0) * 1.0": (lambda: LIF("mul"), (3, 2, 4), mse, "step",
                                  ["threshold", *LIF_DEAD], "gt", D),
    "lif zeros.masked_fill(mem > thr, 1.0)": (lambda: LIF("masked_fill"), (3, 2, 4), mse, "step",
                                              ["threshold", *LIF_DEAD], "gt", D),
    "lif 1 - (mem < thr).type_as(mem)": (lambda: LIF("lt"), (3, 2, 4), mse, "step",
                                         ["threshold", *LIF_DEAD], "lt", D),
    "binarynet torch.sign and sign_": (BinaryNet, (5, 6), mse, "sign", BINARY_DEAD, "sign", D),
    "binarynet torch.where(h >= 0, 1.0, -1.0)": (lambda: BinaryNet("where"), (5, 6), mse,
                                                 "sign step", BINARY_DEAD, "ge", D),
    **{f"vq {lookup}": (lambda lookup=lookup: VQ(lookup), (2, 4, 6), mse, "argmax",
                        ["enc.weight", "enc.bias"], "max" if lookup == "max" else "argmin", D)
       for lookup in VQ.lookups},
    "dreamer one_hot(argmax).float()": (Dreamer, (5, 6), mse, "argmax", ["fc.weight", "fc.bias"],
                                        "argmax", torch.float32),
    "dreamer one_hot(argmax).to(dtype)": (lambda: Dreamer("to"), (5, 6), mse, "argmax",
                                          ["fc.weight", "fc.bias"], "argmax", D),
    "lsq round": (lambda: Quantized("round"), (5, 6), mse, "round",
                  ["weight", "fc1.weight", "fc1.bias"], "round", D),
    "quantizer floor_": (lambda: Quantized("floor"), (5, 6), mse, "round",
                         ["weight", "fc1.weight", "fc1.bias"], "floor", D),
    "fixed point trunc": (lambda: Quantized("trunc"), (5, 6), mse, "round",
                          ["weight", "fc1.weight", "fc1.bias"], "trunc", D),
}  # fmt: skip
CONTROLS = {"own autograd.Function": OwnSTE, "x + (torch.sign(x) - x).detach()": DetachTrick}
ESTIMATORS = [
    {"step": "sigmoid", "sign": "atan", "round": "sigmoid", "argmax": "softmax"},
    {"step": "atan", "sign": "sigmoid", "round": "atan", "argmax": "ste"},
]


@pytest.fixture(autouse=True)
def float64_by_default():
    """Python numbers in ``torch.where(mask, 1.0, 0.0)`` and new tensors become float64."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(D)
    yield
    torch.set_default_dtype(before)


def build(name):
    factory, shape, loss, keyword, dead, op, dtype = CASES[name]
    torch.manual_seed(0)
    return factory().to(dtype), torch.randn(shape, dtype=dtype), loss


def truth(model, x, loss) -> list[str]:
    """The parameters that a plain ``loss(model(x)).backward()`` leaves with grad None or all
    zero, read off ``.grad``."""
    model = copy.deepcopy(model)
    loss(model(x)).backward()
    return [n for n, p in model.named_parameters() if p.grad is None or not p.grad.ne(0).any()]


def gradients(model, x, loss, mode=None):
    """The model's output and each parameter's gradient (zeros where it gets none)."""
    params = list(model.parameters())
    if mode is None:
        out = model(x)
    else:
        with mode:
            out = model(x)
    grads = torch.autograd.grad(loss(out), params, allow_unused=True)
    return out.detach(), [
        torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_audit_dead_parameters_are_a_plain_backwards_and_the_blamed_op_has_the_remedy(name):
    model, x, loss = build(name)
    keyword, dead, op = CASES[name][3:6]
    report = surrogate.audit(model, x, loss=loss)
    assert truth(model, x, loss) == dead  # the pattern kills these as written
    assert report.dead_parameters == dead
    finding = next(f for f in report if f.op == op)
    assert finding.status == CUT and finding.cuts
    assert set().union(*(f.cuts for f in report)) == set(dead)
    assert finding.remedy.startswith(f"surrogate.intercept({keyword.split()[-1]}=...)")


@pytest.mark.parametrize("ests", ESTIMATORS, ids=lambda e: "-".join(e.values()))
@pytest.mark.parametrize("name", list(CASES))
def test_intercept_gives_every_parameter_the_explicit_twins_gradient(name, ests):
    model, x, loss = build(name)
    keyword = CASES[name][3]
    plain, _ = gradients(model, x, loss)
    mode = surrogate.intercept(**{k: ests[k] for k in keyword.split()})
    out, got = gradients(model, x, loss, mode)
    assert torch.equal(out, plain)  # PyTorch's forward
    names = [n for n, _ in model.named_parameters()]
    assert [n for n, g in zip(names, got, strict=True) if not g.ne(0).any()] == []
    twin = copy.deepcopy(model)
    twin.explicit = ests
    twin_out, want = gradients(twin, x, loss)
    assert torch.equal(twin_out, plain)
    tol = {"rtol": 1e-12, "atol": 1e-14} if x.dtype == D else {"rtol": 1e-6, "atol": 1e-7}
    for n, g, w in zip(names, got, want, strict=True):
        torch.testing.assert_close(g, w, **tol, msg=lambda m, n=n: f"{name}, {n}: {m}")


@pytest.mark.parametrize("name", list(CONTROLS))
def test_a_model_with_its_own_straight_through_is_handled_and_left_alone(name):
    torch.manual_seed(0)
    model, x = CONTROLS[name]().to(D), torch.randn(5, 4, dtype=D)
    report = surrogate.audit(model, x, loss=mse)
    assert truth(model, x, mse) == [] and report.dead_parameters == []
    calls = 2 if name == "own autograd.Function" else 1  # BinarizeSTE.apply at two call sites
    assert len(report) == calls
    for finding in report:
        assert (finding.op, finding.status) == ("sign", HANDLED)
        assert finding.remedy.startswith("none: handled by the model")
    out, plain = gradients(model, x, mse)
    for est in ("atan", "sigmoid"):
        got_out, got = gradients(model, x, mse, surrogate.intercept(sign=est))
        assert torch.equal(got_out, out)
        assert all(torch.equal(g, w) for g, w in zip(got, plain, strict=True))


def relu_cast_first(x):
    return x * (x > 0).to(x.dtype)


def reset_by_where(x):
    return torch.where(x > 1.0, 0.0, x)


SPELLINGS = [
    pytest.param(
        lambda x: x * (x > 0),
        relu_cast_first,
        id="relu: x * (x > 0) and x * (x > 0).to(x.dtype)",
    ),
    pytest.param(
        reset_by_where,
        lambda x: x * (1 - (x > 1.0).to(x.dtype)),
        id="reset to zero: where(x > 1, 0.0, x) and x * (1 - (x > 1).to(x.dtype))",
    ),
]


@pytest.mark.parametrize(("one", "other"), SPELLINGS)
def test_one_function_spelled_two_ways_gets_one_intercepted_gradient(one, other):
    x = torch.tensor([0.5, -0.3, 1.2, 2.0], dtype=D, requires_grad=True)
    grads = []
    for spelling in (one, other):
        with surrogate.intercept(step="sigmoid"):
            y = spelling(x)
        assert torch.equal(y.detach(), one(x.detach()))
        grads.append(torch.autograd.grad(y.sum(), x)[0])
    torch.testing.assert_close(*grads, rtol=1e-12, atol=1e-14)

"""surrogate.intercept(step=...): a comparison whose mask becomes numbers keeps PyTorch's values and
gets step's backward at x − t (t − x for < and <=), checked against the same computation written
with surrogate.step in float64; masks used otherwise are left alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import surrogate

D = torch.float64
SHAPE = (4, 6)
ESTIMATORS = ["sigmoid", "atan", "ste"]


def aux():
    """The values a mask selects between: a, b, y (each requires grad)."""
    g = torch.Generator().manual_seed(1)
    return {k: torch.randn(SHAPE, dtype=D, generator=g).requires_grad_() for k in "aby"}


def put(x, mask, v):
    out = torch.zeros(SHAPE, dtype=D)
    out[mask] = v
    return out


def put_into(y, mask, v):
    h = y * 1.0
    h[mask] = v
    return h


def index_put(x, mask, v):
    return torch.zeros(SHAPE, dtype=D).index_put_((mask,), torch.tensor(v, dtype=D))


def filled_(y, mask, v):
    h = y * 1.0
    h.masked_fill_(mask, v)
    return h


def join(out, s, jump):
    """PyTorch's ``out`` plus jump·s's gradient: the reference for a result selected by a mask."""
    return out + jump.detach() * (s - s.detach())


# (form, plain torch, reference: a function of s_gt = step(x − t), s_lt = step(t − x), x, t, A)
FORMS = [
    ("(x > t).double()", lambda x, t, A: (x > t).double(), lambda gt, lt, x, t, A: gt),
    ("x.gt(t).float()", lambda x, t, A: x.gt(t).float(), lambda gt, lt, x, t, A: gt.float()),
    ("torch.greater(x, t).to(D)", lambda x, t, A: torch.greater(x, t).to(D),
     lambda gt, lt, x, t, A: gt),
    ("(x >= t).type(D)", lambda x, t, A: (x >= t).type(D), lambda gt, lt, x, t, A: gt),
    ("(x < t).type_as(x)", lambda x, t, A: (x < t).type_as(A["y"]), lambda gt, lt, x, t, A: lt),
    ("torch.le(x, t).to(y)", lambda x, t, A: torch.le(x, t).to(A["y"]),
     lambda gt, lt, x, t, A: lt),
    ("t < x (reflected)", lambda x, t, A: (t < x).double(), lambda gt, lt, x, t, A: gt),
    ("(x <= t) * 1.0", lambda x, t, A: (x <= t) * torch.tensor(1.0, dtype=D),
     lambda gt, lt, x, t, A: lt),
    ("2.0 * (x > t)", lambda x, t, A: torch.tensor(2.0, dtype=D) * (x > t),
     lambda gt, lt, x, t, A: 2.0 * gt),
    ("(x > t) * y", lambda x, t, A: (x > t) * A["y"], lambda gt, lt, x, t, A: gt * A["y"]),
    ("((x > t) + 0).double()", lambda x, t, A: ((x > t) + 0).double(),
     lambda gt, lt, x, t, A: gt),
    ("1 - (x < t).double()", lambda x, t, A: 1 - (x < t).double(),
     lambda gt, lt, x, t, A: 1 - lt),
    ("view/unsqueeze/expand/[...]", lambda x, t, A: (x > t).view(2, 12).unsqueeze(0)
     .expand(3, -1, -1)[1:, :, 2:].double(),
     lambda gt, lt, x, t, A: gt.view(2, 12).unsqueeze(0).expand(3, -1, -1)[1:, :, 2:]),
    ("torch.where(x > t, a, b)", lambda x, t, A: torch.where(x > t, A["a"], A["b"]),
     lambda gt, lt, x, t, A: join(torch.where(x > t, A["a"], A["b"]), gt, A["a"] - A["b"])),
    ("a.where(x <= t, b)", lambda x, t, A: A["a"].where(x <= t, A["b"]),
     lambda gt, lt, x, t, A: join(A["a"].where(x <= t, A["b"]), lt, A["a"] - A["b"])),
    ("torch.where(x < t, 1.0, -1.0)", lambda x, t, A: torch.where(x < t, 1.0, -1.0).to(D),
     lambda gt, lt, x, t, A: 2 * lt - 1),
    ("y.masked_fill(x > t, 0.5)", lambda x, t, A: A["y"].masked_fill(x > t, 0.5),
     lambda gt, lt, x, t, A: join(A["y"].masked_fill(x > t, 0.5), gt, 0.5 - A["y"])),
    ("torch.masked_fill(y, x < t, -1)", lambda x, t, A: torch.masked_fill(A["y"], x < t, -1),
     lambda gt, lt, x, t, A: join(A["y"].masked_fill(x < t, -1), lt, -1 - A["y"])),
    ("y.masked_fill_(x >= t, 2.0)", lambda x, t, A: filled_(A["y"], x >= t, 2.0),
     lambda gt, lt, x, t, A: join(A["y"].masked_fill(x >= t, 2.0), gt, 2.0 - A["y"])),
    ("out[x > t] = 1.0", lambda x, t, A: put(x, x > t, 1.0), lambda gt, lt, x, t, A: gt),
    ("h = y * 1; h[x <= t] = 0.5", lambda x, t, A: put_into(A["y"], x <= t, 0.5),
     lambda gt, lt, x, t, A: join(A["y"].masked_fill(x <= t, 0.5), lt, 0.5 - A["y"])),
    ("out.index_put_((x < t,), 3.0)", lambda x, t, A: index_put(x, x < t, 3.0),
     lambda gt, lt, x, t, A: 3 * lt),
]  # fmt: skip
IDS = [f for f, *_ in FORMS]


def thresholds():
    """t as a Python number, a tensor, a 0-d Parameter and a per-column Parameter."""
    return {
        "number": 0.25,
        "tensor": torch.tensor(0.25, dtype=D),
        "parameter": nn.Parameter(torch.tensor(0.25, dtype=D)),
        "columns": nn.Parameter(torch.linspace(-0.5, 0.5, SHAPE[1], dtype=D)),
    }


def inputs():
    return torch.randn(SHAPE, dtype=D, generator=torch.Generator().manual_seed(0))


def leaves(t, A):
    return [v for v in (t, *A.values()) if isinstance(v, torch.Tensor) and v.requires_grad]


@pytest.mark.parametrize("est", ESTIMATORS)
@pytest.mark.parametrize("kind", ["number", "tensor", "parameter", "columns"])
@pytest.mark.parametrize(("form", "plain", "ref"), FORMS, ids=IDS)
def test_forward_is_pytorchs_and_gradients_are_steps(form, plain, ref, kind, est):
    t, A, x = thresholds()[kind], aux(), inputs()
    want = plain(x, t, A)
    xg = x.clone().requires_grad_()
    with surrogate.intercept(step=est):
        out = plain(xg, t, A)
    assert out.dtype == want.dtype and torch.equal(out.detach(), want.detach())
    g = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)
    wrt = [xg, *leaves(t, A)]
    got = torch.autograd.grad(out, wrt, g, allow_unused=True)
    xr = x.clone().requires_grad_()
    gt, lt = surrogate.step(xr - t, est), surrogate.step(t - xr, est)
    expected = ref(gt, lt, xr, t, A)
    wants = torch.autograd.grad(
        expected, [xr, *leaves(t, A)], g.to(expected.dtype), allow_unused=True
    )
    assert got[0].abs().sum() > 0
    for a, b in zip(got, wants, strict=True):
        if b is None:
            assert a is None or not a.any()
        else:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_threshold_parameter_gets_minus_the_bump_summed():
    x = torch.linspace(-2, 2, 9, dtype=D, requires_grad=True)
    t = nn.Parameter(torch.tensor(0.5, dtype=D))
    with surrogate.intercept(step="sigmoid"):
        (gx, gt) = torch.autograd.grad((x > t).double().sum(), (x, t))
    s = torch.sigmoid(4.0 * (x.detach() - 0.5))
    p = 4.0 * s * (1 - s)  # sigmoid's bump at its default beta = 4
    torch.testing.assert_close(gx, p)
    torch.testing.assert_close(gt, -p.sum())
    with surrogate.intercept(step="sigmoid"):
        (gx_lt, gt_lt) = torch.autograd.grad((x < t).double().sum(), (x, t))
    torch.testing.assert_close(gx_lt, -p)
    torch.testing.assert_close(gt_lt, p.sum())


def test_where_adds_the_jump_times_the_bump_and_keeps_pytorchs_gradient_to_a_and_b():
    x = torch.tensor([-1.0, 0.2, 0.7], dtype=D, requires_grad=True)
    a = torch.tensor([3.0, 3.0, 3.0], dtype=D, requires_grad=True)
    b = torch.tensor([1.0, -1.0, 0.0], dtype=D, requires_grad=True)
    with surrogate.intercept(step="ste"):
        out = torch.where(x > 0, a, b)
    gx, ga, gb = torch.autograd.grad(out.sum(), (x, a, b))
    assert gx.tolist() == [2.0, 4.0, 3.0]  # ste: p = 1, so a − b
    assert ga.tolist() == [0.0, 1.0, 1.0] and gb.tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_forwards_bit_identical_at_zero_nan_and_inf(dtype):
    x = torch.tensor([0.0, -0.0, 0.5, -2.5, float("nan"), float("inf"), -float("inf")], dtype=dtype)
    y = torch.tensor([-1.0, 2.0, -0.0, 4.0, float("nan"), -3.0, 1.0], dtype=dtype)
    calls = [
        lambda h: (h > 0).to(dtype), lambda h: (h <= 0.5) * y, lambda h: y * (0 < h),  # noqa: SIM300 (the reflected form)
        lambda h: (h >= 0) / 3, lambda h: torch.where(h < 0, y, -y),
        lambda h: y.masked_fill(h > 0, float("inf")), lambda h: (h < 1) + 0.1,
    ]  # fmt: skip
    for call in calls:
        want = call(x)
        xg = x.clone().requires_grad_()
        with surrogate.intercept(step="atan"):
            got = call(xg)
        assert got.grad_fn is not None and got.dtype == want.dtype
        assert torch.equal(got.detach().view(torch.uint8), want.view(torch.uint8))


def test_masks_used_otherwise_are_left_alone():
    x = torch.randn(10, dtype=D, requires_grad=True)
    with surrogate.intercept(step="sigmoid"):
        picked = x[x > 0]  # an indexing read
        count = (x > 0).sum()  # an integer count
        both = ((x > 0) & (x < 1)).double()  # a logical op
        inverted = (~(x > 0)).double()
        flag = bool((x > 0).any())  # control flow
        eq = (x == 0).double()  # not an inequality
    assert flag is bool((x.detach() > 0).any())
    assert count.dtype == torch.int64 and not count.requires_grad
    assert not both.requires_grad and not inverted.requires_grad and not eq.requires_grad
    (g,) = torch.autograd.grad(picked.sum(), x)
    assert torch.equal(g, (x.detach() > 0).double())  # PyTorch's


def every_form(x, t, A):
    return [plain(x, t, A) for _, plain, _ in FORMS]


def test_no_grad_and_integer_inputs_are_left_alone():
    t, A, x = 0.25, aux(), inputs()
    want = every_form(x, t, A)
    xg = x.clone().requires_grad_()
    with surrogate.intercept(step="sigmoid"):
        with torch.no_grad():
            got = every_form(xg, t, A)
        plain = every_form(x, t, A)  # x carries no gradient
        ints = every_form(torch.arange(24).view(SHAPE) - 12, 3, A)
    want_ints = every_form(torch.arange(24).view(SHAPE) - 12, 3, A)
    for a, b in zip(got + plain + ints, want + want + want_ints, strict=True):
        assert a.dtype == b.dtype and torch.equal(a.detach(), b.detach())
    assert not any(o.requires_grad for o in got)  # no_grad: nothing joins


def test_lif_layer_spikes_by_comparison_match_surrogate_step():
    """A LIF layer: v ← βv + Wx; spike = (v > θ).float(); reset by subtraction. θ learnable."""
    torch.manual_seed(0)
    lin = nn.Linear(5, 4).double()
    theta = nn.Parameter(torch.tensor(0.5, dtype=D))
    x = torch.randn(6, 3, 5, dtype=D)

    def run(spike_fn):
        v, total = torch.zeros(3, 4, dtype=D), 0
        for step_in in x:
            v = 0.9 * v + lin(step_in)
            s = spike_fn(v)
            v = v - s * theta
            total = total + s
        return total.sum()

    with surrogate.intercept(step="atan"):
        out = run(lambda v: (v > theta).float().to(D))
    got = torch.autograd.grad(out, [*lin.parameters(), theta])
    want_out = run(lambda v: surrogate.step(v - theta, "atan"))
    want = torch.autograd.grad(want_out, [*lin.parameters(), theta])
    assert out.item() == want_out.item()
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)

"""surrogate.intercept: plain torch hard ops keep PyTorch's forward bit for bit and get the same
gradients as the same model built from surrogate's own ops with the same estimators."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surrogate

GROUPS, CATS = 3, 4


class Net(nn.Module):
    """sign -> heaviside -> round -> argmax one-hot (groups x categories) -> linear, with the hard
    ops given by ``ops``: plain torch calls, or surrogate's functions (the reference)."""

    def __init__(self, ops):
        super().__init__()
        self.ops = ops
        self.a, self.b, self.c = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.d, self.e = nn.Linear(8, GROUPS * CATS), nn.Linear(GROUPS * CATS, 3)

    def forward(self, x):
        h = self.ops.sign(self.a(x))
        h = self.ops.step(self.b(h))
        h = self.ops.round(2 * self.c(h))
        logits = self.d(h).unflatten(1, (GROUPS, CATS))
        return self.e(self.ops.onehot(logits).flatten(1))


class TorchOps:
    sign = staticmethod(torch.sign)
    round = staticmethod(torch.round)

    @staticmethod
    def step(x):
        return torch.heaviside(x, torch.zeros(()))

    @staticmethod
    def onehot(logits):
        return F.one_hot(torch.argmax(logits, dim=-1), CATS).float()


class MethodOps:
    """The method forms, a non-last argmax dim, and other casts."""

    @staticmethod
    def sign(x):
        return x.sign()

    @staticmethod
    def round(x):
        return x.round()

    @staticmethod
    def step(x):
        return x.heaviside(torch.zeros(()))

    @staticmethod
    def onehot(logits):
        index = logits.transpose(1, 2).argmax(1)  # (batch, groups), the classes on dim 1
        return F.one_hot(index, CATS).to(logits.dtype).type_as(logits)


class LibraryOps:
    def __init__(self, step, sign, round, argmax):
        self.est = {"step": step, "sign": sign, "round": round, "argmax": argmax}

    def _pair(self, op):
        spec = self.est[op]
        return spec if isinstance(spec, tuple) else (spec, False)

    def sign(self, x):
        est, relaxed = self._pair("sign")
        return surrogate.sign(x, est, relaxed=relaxed)

    def step(self, x):
        est, relaxed = self._pair("step")
        return surrogate.step(x, est, relaxed=relaxed)

    def round(self, x):
        est, relaxed = self._pair("round")
        return surrogate.round(x, est, relaxed=relaxed)

    def onehot(self, logits):
        est, relaxed = self._pair("argmax")
        return surrogate.argmax(logits, est, dim=-1, relaxed=relaxed, training=False)


def narrow_bump(r):
    return torch.exp(-(r**2) / 0.02) / (0.02 * torch.pi) ** 0.5


COMBOS = [
    {"step": "ste", "sign": "ste", "round": "ste", "argmax": "ste"},
    {"step": "sigmoid", "sign": "atan", "round": "triangle", "argmax": "softmax"},
    {"step": "gaussian", "sign": "clipped_ste", "round": "sigmoid", "argmax": "sparsemax"},
    {
        "step": surrogate.estimator("sigmoid", beta=8.0),
        "sign": narrow_bump,
        "round": "tanh",
        "argmax": surrogate.estimator("softmax", tau=0.5),
    },
    {"step": "none", "sign": "swish", "round": "exponential", "argmax": "reinmax"},
]


def grads(model, x):
    model.zero_grad()
    out = model(x)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def twins(estimators, plain_ops=TorchOps):
    torch.manual_seed(0)
    plain = Net(plain_ops)
    library = Net(LibraryOps(**estimators))
    library.load_state_dict(plain.state_dict())
    return plain, library, torch.randn(16, 6)


@pytest.mark.parametrize("plain_ops", [TorchOps, MethodOps])
@pytest.mark.parametrize("estimators", COMBOS)
def test_forward_is_pytorch_and_gradients_are_the_librarys(estimators, plain_ops):
    plain, library, x = twins(estimators, plain_ops)
    pytorch_out = plain(x)
    with surrogate.intercept(**estimators):
        out, got = grads(plain, x)
    want_out, want = grads(library, x)
    assert torch.equal(out, pytorch_out.detach())
    assert torch.equal(out, want_out)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    assert (got[0].abs().sum() > 0) == ("none" not in (estimators["sign"], estimators["step"]))


def test_relaxed_pairs_run_the_smooth_forward_like_the_library():
    estimators = {
        "step": ("sigmoid", True),
        "sign": ("atan", True),
        "round": "ste",
        "argmax": ("softmax", True),
    }
    plain, library, x = twins(estimators)
    with surrogate.intercept(**estimators):
        out, got = grads(plain, x)
    want_out, want = grads(library, x)
    torch.testing.assert_close(out, want_out)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_config_nodes_are_accepted_like_estimators():
    nodes = {
        "step": {"name": "sigmoid", "beta": 8.0, "relaxed": False},
        "sign": {"name": "atan", "alpha": None},  # None: the default
        "round": {"name": "ste"},
        "argmax": {"name": "softmax", "tau": 0.5},
    }
    objects = {
        "step": surrogate.estimator("sigmoid", beta=8.0),
        "sign": "atan",
        "round": "ste",
        "argmax": surrogate.estimator("softmax", tau=0.5),
    }
    plain, library, x = twins(objects)
    with surrogate.intercept(**nodes):
        out, got = grads(plain, x)
    want_out, want = grads(library, x)
    assert torch.equal(out, want_out)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_forwards_bit_identical_at_zero_nan_and_inf(dtype):
    x = torch.tensor([0.0, -0.0, 0.5, 1.5, -2.5, float("nan"), float("inf"), -3.0], dtype=dtype)
    values = torch.tensor(0.25, dtype=dtype)
    logits = torch.tensor([[1.0, 1.0, 0.0], [float("nan"), 0.0, 1.0]], dtype=dtype)
    calls = [
        lambda t: torch.sign(t),
        lambda t: torch.heaviside(t, values),
        lambda t: torch.round(t),
        lambda t: torch.round(t, decimals=1),
    ]
    for call in calls:
        want = call(x)
        xg = x.clone().requires_grad_()
        with surrogate.intercept(step="atan", sign="atan", round="sigmoid"):
            got = call(xg)
        assert got.grad_fn is not None
        assert torch.equal(got.detach().view(torch.uint8), want.view(torch.uint8))
    want = F.one_hot(logits.argmax(-1), 5).to(dtype)
    with surrogate.intercept(argmax="softmax"):
        got = F.one_hot(logits.clone().requires_grad_().argmax(-1), 5).to(dtype)
    assert got.grad_fn is not None and torch.equal(got.detach(), want)


def test_sign_at_zero_keeps_torch_forward_and_gets_the_jump_of_two():
    x = torch.zeros(3, requires_grad=True)
    with surrogate.intercept(sign="atan", step="atan"):
        s = torch.sign(x)
        h = torch.heaviside(x, torch.tensor(0.5))
    assert s.tolist() == [0.0, 0.0, 0.0] and h.tolist() == [0.5, 0.5, 0.5]
    (gs,) = torch.autograd.grad(s.sum(), x)
    (gh,) = torch.autograd.grad(h.sum(), x)
    assert torch.allclose(gs, torch.full((3,), 2.0)) and torch.allclose(gh, torch.ones(3))


def test_heaviside_values_get_their_exact_gradient():
    x = torch.tensor([-1.0, 0.0, 0.0, 2.0], requires_grad=True)
    values = torch.tensor(0.5, requires_grad=True)
    with surrogate.intercept(step="ste"):
        out = torch.heaviside(x, values)
    gx, gv = torch.autograd.grad(out.sum(), (x, values))
    assert gv.item() == 2.0 and torch.equal(gx, torch.ones(4))


def test_round_decimals_backward_is_the_bump_at_the_scaled_input():
    x = torch.linspace(-1, 1, 41, dtype=torch.float64, requires_grad=True)
    with surrogate.intercept(round="sigmoid"):
        (got,) = torch.autograd.grad(torch.round(x, decimals=1).sum(), x)
    (want,) = torch.autograd.grad((surrogate.round(x * 10, "sigmoid") / 10).sum(), x)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    ("chain", "on_floats"),  # the calls on the int64 one-hot, and the same calls on floats
    [
        (lambda oh: oh.float(), None),
        (lambda oh: oh.double().float(), None),
        (lambda oh: oh.long().view(4, -1).cpu().float(), lambda t: t.view(4, -1)),
        (lambda oh: oh.permute(1, 0, 2).reshape(3, -1).to(torch.float32), None),
        (lambda oh: oh[:, 1:].mT.contiguous().to(torch.zeros(())), None),
        (lambda oh: oh.flatten(1).T.type(torch.float32), None),
    ],
)
def test_one_hot_casts_after_views_carry_the_gradient(chain, on_floats):
    logits = torch.randn(4, 3, 5)
    want_out = chain(F.one_hot(logits.argmax(-1), 6))
    g = torch.randn_like(want_out)
    x = logits.clone().requires_grad_()
    with surrogate.intercept(argmax="softmax"):
        out = chain(F.one_hot(x.argmax(-1), 6))
    assert torch.equal(out, want_out)
    (got,) = torch.autograd.grad(out, x, g)
    ref = logits.clone().requires_grad_()
    padded = F.pad(surrogate.argmax(ref, "softmax"), (0, 1))  # num_classes 6 > 5 logits
    (want,) = torch.autograd.grad((on_floats or chain)(padded), ref, g)
    torch.testing.assert_close(got, want)


def test_argmax_with_keepdim_and_without_dim():
    logits = torch.randn(4, 5)
    x = logits.clone().requires_grad_()
    with surrogate.intercept(argmax="ste"):
        kept = F.one_hot(x.argmax(1, keepdim=True), 5).float()
        flat = F.one_hot(torch.argmax(x), 20).float()
    assert torch.equal(kept, F.one_hot(logits.argmax(1, keepdim=True), 5).float())
    assert torch.equal(flat, F.one_hot(logits.argmax(), 20).float())
    g1, g2 = torch.randn(4, 1, 5), torch.randn(20)
    (got,) = torch.autograd.grad((kept * g1).sum() + (flat * g2).sum(), x)
    torch.testing.assert_close(got, g1.squeeze(1) + g2.view(4, 5))  # ste: g passes unchanged


def test_gumbel_keeps_pytorch_forward_unless_training():
    torch.manual_seed(0)
    logits = torch.randn(64, 5)
    x = logits.clone().requires_grad_()
    with surrogate.intercept(argmax="gumbel"):
        plain = F.one_hot(x.argmax(-1), 5).float()
    assert torch.equal(plain, F.one_hot(logits.argmax(-1), 5).float())
    torch.manual_seed(1)
    with surrogate.intercept(argmax="gumbel", training=True):
        sampled = F.one_hot(x.argmax(-1), 5).float()
    torch.manual_seed(1)
    ref = logits.clone().requires_grad_()
    want = surrogate.argmax(ref, "gumbel", training=True)
    assert torch.equal(sampled, want) and not torch.equal(sampled, plain)
    g = torch.randn(64, 5)
    (got,) = torch.autograd.grad(sampled, x, g)
    torch.testing.assert_close(got, torch.autograd.grad(want, ref, g)[0])


def test_pytorch_behaviour_is_back_after_the_block():
    x = torch.randn(4, 3, requires_grad=True)
    with surrogate.intercept(step="ste", sign="ste", round="ste", argmax="ste"):
        torch.sign(x)
        index = x.argmax(-1)
    (g,) = torch.autograd.grad(torch.sign(x).sum() + torch.round(x).sum(), x)
    assert torch.equal(g, torch.zeros_like(x))
    with pytest.raises(RuntimeError, match="heaviside"):
        torch.heaviside(x, torch.zeros(())).sum().backward()
    assert not F.one_hot(index, 3).float().requires_grad  # followed inside, cast outside
    assert not F.one_hot(x.argmax(-1), 3).float().requires_grad


def test_ops_not_named_keep_pytorch_behaviour():
    x = torch.randn(5, requires_grad=True)
    with surrogate.intercept(sign="ste"):
        (g,) = torch.autograd.grad(torch.round(x).sum(), x)
        assert not F.one_hot(x.argmax(), 5).float().requires_grad
        with pytest.raises(RuntimeError, match="heaviside"):
            torch.heaviside(x, torch.zeros(())).sum().backward()
    assert torch.equal(g, torch.zeros(5))


def test_nesting_inner_wins_for_its_ops_and_outer_is_back_after():
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)

    def grad(fn):
        return torch.autograd.grad(fn(x).sum(), x)[0]

    with surrogate.intercept(sign=("sigmoid", True), round="ste"):
        with surrogate.intercept(sign="atan"):
            inner = torch.sign(x)
            assert torch.equal(inner, torch.sign(x.detach()))  # exact, not the outer's relaxed
            assert torch.allclose(grad(torch.sign), grad(lambda t: surrogate.sign(t, "atan")))
            assert torch.equal(grad(torch.round), torch.ones_like(x))  # from the outer block
        relaxed = torch.sign(x)
    torch.testing.assert_close(relaxed, surrogate.sign(x, "sigmoid", relaxed=True))


def test_no_grad_and_library_ops_are_left_alone():
    x = torch.randn(6, requires_grad=True)
    with surrogate.intercept(sign="atan", round="atan"):
        with torch.no_grad():
            assert torch.sign(x).grad_fn is None
        y = surrogate.round(x, "ste")  # torch.round inside the library's own op: untouched
    assert torch.equal(torch.autograd.grad(y.sum(), x)[0], torch.ones(6))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"sigm": "ste"}, ["'sigm'", "step, sign, round, argmax"]),
        ({"heaviside": "ste"}, ["'heaviside'", "step"]),
        ({"sign": "atn"}, ["'atn'", "sign", "atan", "clipped_ste"]),
        ({"sign": "gumbel"}, ["gumbel", "sign", "atan"]),
        ({"argmax": "sigmoid"}, ["sigmoid", "argmax", "softmax"]),
        ({"argmax": narrow_bump}, ["custom", "argmax", "softmax"]),
        ({"sign": ("ste", True)}, ["relaxed", "ste", "sigmoid"]),
        ({"sign": {"name": "sigmoid", "alpha": 2.0}}, ["sigmoid", "'alpha'", "beta"]),
        ({"step": {"name": "atan", "alpha": -1}}, ["alpha", "-1", "> 0"]),
        ({"training": "yes"}, ["training", "'yes'"]),
    ],
)
def test_bad_input_is_a_value_error_naming_it(kwargs, words):
    with pytest.raises(ValueError) as info:
        surrogate.intercept(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_torch_compile_works_and_fullgraph_says_why_not():
    torch._dynamo.reset()
    estimators = {"step": "sigmoid", "sign": "atan", "round": "ste", "argmax": "softmax"}
    plain, library, x = twins(estimators)
    compiled = torch.compile(plain)
    with surrogate.intercept(**estimators):
        out, got = grads(compiled, x)
    want_out, want = grads(library, x)
    assert torch.equal(out, want_out)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()
    with surrogate.intercept(**estimators), pytest.raises(Exception, match="intercept runs eager"):
        torch.compile(plain, fullgraph=True)(x)
    torch._dynamo.reset()


class OneHotByAxis(torch.nn.Module):
    """Dreamer-style one-hot: ``torch.argmax(logits, axis=-1)`` (numpy's keyword), then a cast."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(5, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x, keyword="axis"):
        logits = self.linear(x)
        index = torch.argmax(logits, **{keyword: -1})
        return self.head(F.one_hot(index, 4).float())


@pytest.mark.parametrize("keyword", ["axis", "dim"])
def test_argmax_with_numpys_axis_keyword_gets_the_estimators_gradient(keyword):
    torch.manual_seed(0)
    model, x = OneHotByAxis(), torch.randn(6, 5)
    with surrogate.intercept(argmax="softmax"):
        model(x, keyword).sum().backward()
    intercepted = model.linear.weight.grad.clone()
    model.zero_grad()
    logits = model.linear(x)  # the same model written with surrogate's argmax
    model.head(surrogate.argmax(logits, "softmax", dim=-1)).sum().backward()
    assert intercepted.abs().sum() > 0
    torch.testing.assert_close(intercepted, model.linear.weight.grad)


def test_audit_of_a_model_with_argmax_axis_does_not_crash():
    report = surrogate.audit(OneHotByAxis(), torch.randn(6, 5))
    assert sorted(report.dead_parameters) == ["linear.bias", "linear.weight"]  # argmax cuts them


@pytest.mark.parametrize(
    ("keyword", "estimator", "in_place", "out_of_place"),
    [
        ("sign", "atan", lambda h: h.sign_(), torch.sign),
        ("sign", "atan", lambda h: h.sgn_(), torch.sgn),
        ("round", "sigmoid", lambda h: h.round_(), torch.round),
        ("step", "triangle", lambda h: h.heaviside_(torch.zeros(())),
         lambda h: torch.heaviside(h, torch.zeros(()))),
    ],
)  # fmt: skip
def test_in_place_forms_get_the_same_values_and_gradient_as_the_out_of_place_ones(
    keyword, estimator, in_place, out_of_place
):
    torch.manual_seed(0)
    x = torch.randn(64, requires_grad=True)
    weights = torch.randn(64)
    grads, values = [], []
    for form in (in_place, out_of_place):
        x.grad = None
        with surrogate.intercept(**{keyword: estimator}):
            h = x * 1.5
            y = form(h)
        (y * weights).sum().backward()
        grads.append(x.grad.clone())
        values.append(y.detach())
    assert torch.equal(values[0], values[1])
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1])


# Index ops that pick a maximum or a minimum, each against argmax of x (or of -x), through the
# same one-hot and cast.
INDEX_OPS = [
    ("x.argmin(-1)", lambda x: x.argmin(-1), False),
    ("x.max(-1).indices", lambda x: x.max(-1).indices, True),
    ("torch.max(x, dim=1)[1]", lambda x: torch.max(x, dim=1)[1], True),
    ("x.min(dim=-1).indices", lambda x: x.min(dim=-1).indices, False),
    ("x.topk(1, dim=-1).indices", lambda x: x.topk(1, dim=-1).indices, True),
    ("torch.topk(x, 1, largest=False)", lambda x: torch.topk(x, 1, largest=False)[1], False),
]


@pytest.mark.parametrize(("form", "index_of", "largest"), INDEX_OPS, ids=[f for f, *_ in INDEX_OPS])
def test_index_ops_reach_the_scores_like_argmax(form, index_of, largest):
    torch.manual_seed(0)
    scores = torch.randn(6, 4, requires_grad=True)
    weights = torch.randn(6, 4)
    with surrogate.intercept(argmax="softmax"):
        index = index_of(scores)
        onehot = F.one_hot(index, 4).float().reshape(6, 4)  # topk keeps a dim of 1
    (onehot * weights).sum().backward()
    intercepted = scores.grad.clone()
    scores.grad = None
    logits = scores if largest else -scores  # written with surrogate's argmax
    (surrogate.argmax(logits, "softmax", dim=-1) * weights).sum().backward()
    assert intercepted.abs().sum() > 0
    torch.testing.assert_close(intercepted, scores.grad)


@pytest.mark.parametrize("name", ["floor", "ceil"])
@pytest.mark.parametrize("in_place", [False, True])
def test_floor_and_ceil_get_rounds_bump_at_the_integers(name, in_place):
    x = torch.linspace(-2.7, 2.7, 55, dtype=torch.float64, requires_grad=True)
    with surrogate.intercept(round="sigmoid"):
        h = x * 1.0
        y = getattr(h, f"{name}_")() if in_place else getattr(torch, name)(h)
    y.sum().backward()
    assert torch.equal(y.detach(), getattr(torch, name)(x.detach()))  # PyTorch's forward
    r = x.detach() - torch.round(x.detach())  # distance to the nearest integer, where they jump
    s = torch.sigmoid(4.0 * r)  # sigmoid's bump at its default beta = 4
    torch.testing.assert_close(x.grad, 4.0 * s * (1 - s))


@pytest.mark.parametrize("form", ["torch.trunc", "torch.fix", "x.trunc_()", "x.fix_()"])
def test_trunc_gets_rounds_bump_at_the_nonzero_integers_only(form):
    x = torch.linspace(-2.7, 2.7, 55, dtype=torch.float64, requires_grad=True)
    with surrogate.intercept(round="sigmoid"):
        h = x * 1.0
        y = getattr(h, form[2:-2])() if form.endswith("_()") else getattr(torch, form[6:])(h)
    y.sum().backward()
    assert torch.equal(y.detach(), torch.trunc(x.detach()))  # PyTorch's forward
    jumps = torch.tensor([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    r = x.detach()[:, None] - jumps  # distance to each jump; trunc does not jump at 0
    r = r.gather(1, r.abs().argmin(1, keepdim=True)).squeeze(1)
    s = torch.sigmoid(4.0 * r)  # sigmoid's bump at its default beta = 4
    torch.testing.assert_close(x.grad, 4.0 * s * (1 - s))

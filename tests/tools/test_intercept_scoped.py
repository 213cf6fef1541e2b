"""``surrogate.intercept(..., only=surrogate.audit(model, x, loss=fn))`` acts at the call sites the
audit finds cut and nowhere else: a model that routes its own gradient keeps its forward and every
gradient bit for bit, and a cut site gets the gradient of the same model written with surrogate's
ops. Each audit label is checked on a model written for it. Models re-write the hard-op forwards
of public repositories (straight-through attention, VQ-VAE, a top-1 router, soft thresholding,
a categorical latent with ``.mode``, LIF neurons), seeded and small."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surrogate
from surrogate.audit.findings import CUT, HANDLED, UNREACHED

D = torch.float64


def grads(model, x, loss, mode=None):
    """The loss's value and every parameter's gradient (zeros for None), under ``mode``."""
    params = list(model.parameters())
    if mode is None:
        value = loss(model(x))
    else:
        with mode:
            value = loss(model(x))
    got = torch.autograd.grad(value, params, allow_unused=True)
    return value.detach(), [
        torch.zeros_like(p) if g is None else g for p, g in zip(params, got, strict=True)
    ]


def mse(y):
    return (y - 0.3).square().mean()


# --- models that route their own gradient ------------------------------------------------------


class HardAttention(nn.Module):
    """A straight-through one-hot attention: ``hard + soft - soft.detach()``."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        scores = self.q(x) @ self.k(x).transpose(-1, -2)
        soft = scores.softmax(-1)
        hard = F.one_hot(scores.argmax(-1), scores.shape[-1]).to(soft.dtype)
        return (hard + soft - soft.detach()) @ self.v(x)


class VectorQuantizer(nn.Module):
    """A VQ-VAE quantizer: straight-through to the encoder, codebook and commitment losses on the
    undetached lookup."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 3), nn.Linear(3, 4)
        self.codebook = nn.Embedding(5, 3)

    def forward(self, x):
        z = self.enc(x)
        d = (
            z.pow(2).sum(1, keepdim=True)
            + self.codebook.weight.pow(2).sum(1)
            - 2 * z @ (self.codebook.weight.T)
        )
        z_q = self.codebook(d.argmin(1))
        self.vq_loss = (z_q - z.detach()).pow(2).mean() + 0.25 * (z_q.detach() - z).pow(2).mean()
        return self.dec(z + (z_q - z).detach())


def vq_loss(model):
    return lambda y: mse(y) + model.vq_loss


class Top1Router(nn.Module):
    """A switch-style top-1 router: gate read at the index, a load-balancing loss from a float
    count of the indices, tokens written back by a boolean mask."""

    def __init__(self, experts=3):
        super().__init__()
        self.gate = nn.Linear(4, experts)
        self.experts = nn.ModuleList(nn.Linear(4, 4) for _ in range(experts))

    def forward(self, x):
        probs = self.gate(x).softmax(-1)
        idx = probs.argmax(-1)
        gate = probs.gather(-1, idx[:, None])
        counts = torch.zeros_like(probs).scatter_(1, idx[:, None], 1.0)
        self.aux = (counts.mean(0) * probs.mean(0)).sum() * probs.shape[-1]
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            chosen = idx == e
            out[chosen] = expert(x[chosen])
        return out * gate


def router_loss(model):
    return lambda y: mse(y) + 0.1 * model.aux


class SoftThreshold(nn.Module):
    """Weights shrunk by a soft threshold ``sign(w) * relu(|w| - t)``: continuous already."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 4))
        self.t = 0.5

    def forward(self, x):
        w = torch.sign(self.weight) * F.relu(self.weight.abs() - self.t)
        return x @ w.T


ROUTED = {
    "straight-through attention": (HardAttention, (2, 5, 4), lambda m: mse, "argmax"),
    "vq-vae": (VectorQuantizer, (6, 4), vq_loss, "argmin"),
    "top-1 router": (Top1Router, (7, 4), router_loss, "argmax"),
    "soft threshold": (SoftThreshold, (5, 4), lambda m: mse, "sign"),
}
KEYWORDS = dict(step="atan", sign="atan", round="atan", argmax="softmax")


@pytest.mark.parametrize("name", list(ROUTED))
def test_a_model_that_routes_its_own_gradient_is_handled_and_left_bit_identical(name):
    factory, shape, make_loss, op = ROUTED[name]
    torch.manual_seed(0)
    model, x = factory().to(D), torch.randn(shape, dtype=D)
    loss = make_loss(model)
    report = surrogate.audit(model, x, loss=loss)
    assert [f.status for f in report if f.op == op] == [HANDLED]
    value, plain = grads(model, x, loss)
    scoped = surrogate.intercept(**KEYWORDS, only=surrogate.audit(model, x, loss=loss))
    got_value, got = grads(model, x, loss, scoped)
    assert torch.equal(got_value, value)
    assert all(torch.equal(g, w) for g, w in zip(got, plain, strict=True))
    # the plain intercept changes every call, these included
    _, everywhere = grads(model, x, loss, surrogate.intercept(**KEYWORDS))
    assert not all(torch.equal(g, w) for g, w in zip(everywhere, plain, strict=True))


# --- models with a cut call site ---------------------------------------------------------------


class CategoricalLatent(nn.Module):
    """A straight-through categorical: the sample feeds one head, the ``.mode`` (an argmax
    one-hot) another. No parameter is wholly dead, but the mode is cut."""

    explicit: str | None = None

    def __init__(self):
        super().__init__()
        self.enc, self.head_a, self.head_b = nn.Linear(4, 5), nn.Linear(5, 2), nn.Linear(5, 2)

    def forward(self, x):
        logits = self.enc(x)
        probs = logits.softmax(-1)
        sample = F.one_hot(torch.multinomial(probs.detach(), 1)[:, 0], 5).to(probs.dtype)
        sample = sample + probs - probs.detach()
        if self.explicit is None:
            mode = F.one_hot(logits.argmax(-1), 5).to(logits.dtype)
        else:
            mode = surrogate.argmax(logits, self.explicit)
        return self.head_a(sample) + self.head_b(mode)


class TwoSigns(nn.Module):
    """Two ``torch.sign`` calls in one module: binary weights made straight-through by hand,
    binary activations left cut."""

    explicit: str | None = None

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x):
        w = self.fc1.weight
        w = w + (torch.sign(w) - w).detach()
        h = F.linear(x, w, self.fc1.bias)
        h = torch.sign(h) if self.explicit is None else surrogate.sign(h, self.explicit)
        return self.fc2(h)


class LIFReadout(nn.Module):
    """snnTorch-style LIF over time, the loss on the membrane as well as the spikes: every
    parameter gets a gradient as written, yet each spike is cut."""

    explicit: str | None = None

    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x):
        mem = torch.zeros(x.shape[1], 6, dtype=x.dtype)
        spikes, mems = [], []
        for t in range(x.shape[0]):
            mem = 0.9 * mem + self.fc(x[t])
            if self.explicit is None:
                spk = (mem > 0.5).to(mem.dtype)
            else:
                spk = surrogate.step(mem - 0.5, self.explicit)
            mem = mem - spk * 0.5
            spikes.append(spk)
            mems.append(mem)
        return self.head(torch.stack(spikes)).mean(0) + torch.stack(mems).mean(0)[:, :2]


CUT_MODELS = {
    "categorical .mode": (CategoricalLatent, (6, 4), "argmax", "softmax", 1),
    "two signs in one module": (TwoSigns, (5, 4), "sign", "atan", 1),
    "lif, loss on the membrane": (LIFReadout, (4, 3, 4), "step", "atan", 4),
}


@pytest.mark.parametrize("name", list(CUT_MODELS))
def test_a_cut_call_site_gets_the_gradient_of_the_model_written_with_surrogate(name):
    factory, shape, keyword, est, calls = CUT_MODELS[name]
    torch.manual_seed(0)
    model, x = factory().to(D), torch.randn(shape, dtype=D)
    report = surrogate.audit(model, x, loss=mse)
    cut = [f for f in report if f.status == CUT]
    assert len(cut) == 1 and cut[0].calls == calls  # a loop over time is one site
    assert report.remedy == (f'with surrogate.intercept({keyword}="{SUGGESTED[keyword]}", '
                             "only=surrogate.audit(model, x, loss=fn)):")  # fmt: skip
    scoped = surrogate.intercept(**{keyword: est}, only=report)
    with torch.random.fork_rng():
        value, got = grads(model, x, mse, scoped)
    model.explicit = est
    with torch.random.fork_rng():
        twin_value, twin = grads(model, x, mse)
    assert torch.equal(value, twin_value)
    for g, w in zip(got, twin, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    assert any(g.ne(0).any() for g in got)


SUGGESTED = {"step": "atan", "sign": "atan", "round": "atan", "argmax": "softmax"}


def test_two_calls_of_one_op_in_one_module_are_two_sites():
    torch.manual_seed(0)
    model, x = TwoSigns().to(D), torch.randn(5, 4, dtype=D)
    report = surrogate.audit(model, x, loss=mse)
    weights, activations = list(report)
    assert (weights.op, activations.op) == ("sign", "sign") and weights.site != activations.site
    # The weights' straight-through is read only through the cut activations, so in the backward
    # as written no gradient reaches it: not cut, left alone by the scoped intercept.
    assert (weights.status, activations.status) == (UNREACHED, CUT)
    assert report.scope.sites == {activations.site}


# --- a result that does not reach the loss, and the model's own Function -------------------------


class Unreached(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.fc(x)
        self.spikes = torch.sign(h).detach()  # kept for a plot
        return self.head(h)


class SignNewStyle(torch.autograd.Function):
    @staticmethod
    def forward(x):
        return torch.sign(x * 1.0)  # a hard op on a tensor made inside the forward

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g


class OwnFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.head(SignNewStyle.apply(self.fc(x)))


def test_a_result_kept_only_detached_does_not_reach_the_loss():
    torch.manual_seed(0)
    report = surrogate.audit(Unreached(), torch.randn(3, 4), loss=mse)
    assert [(f.op, f.status) for f in report] == [("sign", UNREACHED)]
    assert report.remedy is None


def test_an_op_in_the_models_own_new_style_function_is_listed_as_the_models():
    torch.manual_seed(0)
    report = surrogate.audit(OwnFunction(), torch.randn(3, 4), loss=mse)
    assert [(f.op, f.status, f.own) for f in report] == [("sign", HANDLED, "SignNewStyle")]
    assert report[0].remedy == "none: handled by the model (its autograd.Function SignNewStyle)"


# --- boolean-mask assignment of rows -----------------------------------------------------------


@pytest.mark.parametrize("selected", range(0, 7))
@pytest.mark.parametrize("form", ["rows", "row", "vector", "number"])
def test_mask_assignment_matches_the_float_step_for_every_count(selected, form):
    """``y[x > t] = v`` against y + s·(V − y), s = surrogate.step(x − t), V the values PyTorch
    writes (v where selected; rows: y elsewhere, as no row lands there)."""
    torch.manual_seed(selected)
    x = torch.randn(6, dtype=D, requires_grad=True)
    t = float(x.detach().sort().values[6 - selected]) - 1e-9 if selected else 9.0
    y0 = torch.randn(6, 3, dtype=D, requires_grad=True)
    w = torch.randn(3, dtype=D, requires_grad=True)
    probe = torch.randn(6, 3, dtype=D)

    def value(mask):
        if form == "rows":
            return w * torch.arange(1.0, 1.0 + int(mask.sum()), dtype=D)[:, None]
        return {"row": w[None], "vector": w, "number": 2.5}[form]

    with surrogate.intercept(step="atan"):
        y = y0 * 1.0
        mask = x > t
        y[mask] = value(mask)
    got = torch.autograd.grad((y * probe).sum(), (x, y0, w), allow_unused=True)
    sel = (x > t).detach()
    v = value(sel)
    written = y0.detach().clone()
    written[sel] = v.detach() if isinstance(v, torch.Tensor) else v
    if form != "rows" and not (form == "row" and selected == 1):
        written = (v.detach() if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=D)) + (
            0 * y0.detach()
        )
    s = surrogate.step(x - t, "atan")[:, None]
    plain = y0.clone()
    plain[sel] = v
    ref = plain + s * (written - y0.detach()) - s.detach() * (written - y0.detach())
    want = torch.autograd.grad((ref * probe).sum(), (x, y0, w), allow_unused=True)
    assert torch.equal(y.detach(), plain.detach())
    for g, r in zip(got, want, strict=True):
        if r is None:
            assert g is None or not g.ne(0).any()
        else:
            torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_only_must_be_an_audit_report():
    with pytest.raises(ValueError, match="only must be the report of surrogate.audit.*got dict"):
        surrogate.intercept(sign="atan", only={"sign": 1})

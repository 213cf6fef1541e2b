"""surrogate.intercept(argmax=...): a table read by an argmax index with leading head or batch
dims (gather of an expanded or per-head codebook, torch.take_along_dim) or by advanced indexing
with two index tensors (hard attention, y[torch.arange(B)[:, None], idx]) keeps PyTorch's values
and gets the gradients of the same read written with surrogate.argmax's one-hot (one-hot @
table), in float64, under the plain and the scoped intercept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import surrogate
from surrogate.audit.findings import CUT

D = torch.float64
B, N, K, E = 3, 4, 5, 2
ESTIMATORS = ["softmax", "sparsemax", "ste"]


def ar(n):
    return torch.arange(n)


# (form, scores' shape, table's shape, argmax dim, plain torch of scores s and table W,
#  reference from the one-hot Y = surrogate.argmax(s, dim))
FORMS = [
    ("W[None].expand(b, K, E).gather(1, idx[..., None].expand(b, n, E))", (B, N, K), (K, E), -1,
     lambda s, W: W[None].expand(B, K, E).gather(1, s.argmax(-1)[..., None].expand(B, N, E)),
     lambda Y, W: Y @ W),
    ("per-head W.gather(1, idx.unsqueeze(-1).expand(-1, -1, E))", (B, N, K), (B, K, E), -1,
     lambda s, W: W.gather(1, s.argmax(-1).unsqueeze(-1).expand(-1, -1, E)),
     lambda Y, W: torch.einsum("hnk,hke->hne", Y, W)),
    ("per-head gather of a repeated index", (B, N, K), (B, K, E), 2,
     lambda s, W: torch.gather(W, 1, s.argmax(2, keepdim=True).repeat(1, 1, E)),
     lambda Y, W: Y @ W),
    ("torch.take_along_dim(W[None], idx[..., None], dim=1)", (B, N, K), (K, E), -1,
     lambda s, W: torch.take_along_dim(W[None], s.argmax(-1)[..., None], dim=1),
     lambda Y, W: Y @ W),
    ("per-head W.take_along_dim(idx[..., None], 1)", (B, N, K), (B, K, E), -1,
     lambda s, W: W.take_along_dim(s.argmax(-1)[..., None], 1), lambda Y, W: Y @ W),
    ("torch.take_along_dim(v, idx) (flattened)", (N, K), (K,), -1,
     lambda s, W: torch.take_along_dim(W, s.argmax(-1)), lambda Y, W: Y @ W),
    ("y[torch.arange(B)[:, None], scores.argmax(-1)]", (B, N, K), (B, K, E), -1,
     lambda s, y: y[ar(B)[:, None], s.argmax(-1)], lambda Y, y: Y @ y),
    ("y[torch.arange(B).unsqueeze(1), idx, :]", (B, N, K), (B, K, E), -1,
     lambda s, y: y[ar(B).unsqueeze(1), s.argmax(-1), :], lambda Y, y: Y @ y),
    ("codebooks[heads, idx] with idx one per head (1-D)", (B, K), (B, K, E), -1,
     lambda s, W: W[ar(B), s.argmax(-1)], lambda Y, W: torch.einsum("hk,hke->he", Y, W)),
    ("W[:, idx]", (N, K), (E, K), -1,
     lambda s, W: W[:, s.argmax(-1)], lambda Y, W: (Y @ W.T).T),
    ("W.index_select(1, idx)", (N, K), (E, K), -1,
     lambda s, W: W.index_select(1, s.argmax(-1)), lambda Y, W: (Y @ W.T).T),
    ("W[..., idx] with the index apart from another (numpy puts them first)", (B, K), (K, E, B),
     -1, lambda s, W: W[s.argmax(-1), :, ar(B)], lambda Y, W: torch.einsum("bk,keb->be", Y, W)),
    ("W.gather(0, idx) with every column its own index", (N, K, E), (K, E), 1,
     lambda s, W: W.gather(0, s.argmax(1)), lambda Y, W: (Y * W).sum(1)),
]  # fmt: skip
IDS = [f for f, *_ in FORMS]


def leaves(score_shape, table_shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(score_shape, dtype=D, generator=g), torch.randn(table_shape, dtype=D,
                                                                       generator=g)  # fmt: skip


def check(plain, ref, dim, scores, table, est, mode):
    want = plain(scores, table)
    s, W = scores.clone().requires_grad_(), table.clone().requires_grad_()
    with mode:
        out = plain(s, W)
    assert out.dtype == want.dtype and torch.equal(out.detach(), want)
    g = torch.linspace(-1, 1, out.numel(), dtype=D).view(out.shape)
    got = torch.autograd.grad(out, (s, W), g)
    sr, Wr = scores.clone().requires_grad_(), table.clone().requires_grad_()
    expected = ref(surrogate.argmax(sr, est, dim=dim), Wr)
    wants = torch.autograd.grad(expected, (sr, Wr), g)
    assert got[0].abs().sum() > 0
    for a, b in zip(got, wants, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("est", ESTIMATORS)
@pytest.mark.parametrize(("form", "scores", "table", "dim", "plain", "ref"), FORMS, ids=IDS)
def test_a_read_gets_the_gradient_of_one_hot_at_table(form, scores, table, dim, plain, ref, est):
    s, W = leaves(scores, table)
    check(plain, ref, dim, s, W, est, surrogate.intercept(argmax=est))


def test_a_read_of_the_scores_own_softmax_is_the_one_hot_dotted_with_it():
    """Every read of an argmax index is the one-hot's contraction with what it reads, also a
    read of the softmax of the scores themselves (a router's gate): (Y · probs).sum(-1)."""
    scores = leaves((N, K), (1,))[0]
    s = scores.clone().requires_grad_()
    with surrogate.intercept(argmax="softmax"):
        probs = s.softmax(-1)
        out = probs.gather(-1, s.argmax(-1, keepdim=True))
    sr = scores.clone().requires_grad_()
    probs_r = sr.softmax(-1)
    want = (surrogate.argmax(sr, "softmax") * probs_r).sum(-1, keepdim=True)
    assert torch.equal(out.detach(), want.detach())
    g = torch.linspace(-1, 1, N, dtype=D).view(N, 1)
    (got,) = torch.autograd.grad(out, s, g)
    torch.testing.assert_close(got, torch.autograd.grad(want, sr, g)[0], rtol=1e-12, atol=1e-12)


def test_a_read_with_two_followed_indices_keeps_pytorchs_gradient():
    """``W[argmax_a, argmax_b]`` reads one entry for two one-hots: not a one-hot @ table, left
    as PyTorch computes it."""
    scores, table = leaves((N, K), (K, K))
    s, W = scores.clone().requires_grad_(), table.clone().requires_grad_()
    with surrogate.intercept(argmax="softmax"):
        out = W[s.argmax(-1), s.argmin(-1)]
    got_s, got_W = torch.autograd.grad(out.sum(), (s, W), allow_unused=True)
    assert got_s is None
    plain = table.clone().requires_grad_()
    want = torch.autograd.grad(plain[scores.argmax(-1), scores.argmin(-1)].sum(), plain)[0]
    assert torch.equal(got_W, want)


# --- the same reads in models, under the scoped intercept -----------------------------------


class HeadCodebooks(nn.Module):
    """Per-head VQ (a codebook per head, the nearest code by argmax of −distance), its codes read
    as ``form``; ``explicit``: the twin written with surrogate.argmax."""

    explicit: str | None = None

    def __init__(self, form, heads=2, codes=5, dim=3):
        super().__init__()
        self.form, self.heads, self.dim = form, heads, dim
        self.enc, self.dec = nn.Linear(4, heads * dim), nn.Linear(heads * dim, 2)
        self.codebook = nn.Parameter(torch.randn(heads, codes, dim))

    def forward(self, x):
        b = x.shape[0]
        z = self.enc(x).view(b, self.heads, self.dim).transpose(0, 1)  # (heads, b, dim)
        logits = -torch.cdist(z, self.codebook)  # (heads, b, codes)
        if self.explicit is not None:
            q = surrogate.argmax(logits, self.explicit) @ self.codebook
        elif self.form == "gather":
            idx = logits.argmax(-1)
            q = self.codebook.gather(1, idx[..., None].expand(-1, -1, self.dim))
        elif self.form == "take_along_dim":
            q = torch.take_along_dim(self.codebook, logits.argmax(-1)[..., None], dim=1)
        else:
            q = self.codebook[torch.arange(self.heads)[:, None], logits.argmax(-1)]
        return self.dec(q.transpose(0, 1).reshape(b, -1))


class HardAttention(nn.Module):
    """Each query attends to one key: the values at its argmax, by two index tensors."""

    explicit: str | None = None

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        scores = self.q(x) @ self.k(x).transpose(-1, -2)
        values = self.v(x)
        if self.explicit is not None:
            return surrogate.argmax(scores, self.explicit) @ values
        return values[torch.arange(x.shape[0])[:, None], scores.argmax(-1)]


def mse(y):
    return (y - 0.3).square().mean()


MODELS = {
    "per-head codebooks, gather": (lambda: HeadCodebooks("gather"), (6, 4)),
    "per-head codebooks, take_along_dim": (lambda: HeadCodebooks("take_along_dim"), (6, 4)),
    "per-head codebooks, two index tensors": (lambda: HeadCodebooks("index"), (6, 4)),
    "hard attention": (HardAttention, (3, 5, 4)),
}


@pytest.mark.parametrize("scoped", [False, True], ids=["plain", "scoped"])
@pytest.mark.parametrize("name", list(MODELS))
def test_a_model_reading_by_argmax_gets_the_twins_gradient(name, scoped):
    factory, shape = MODELS[name]
    torch.manual_seed(0)
    model, x = factory().to(D), torch.randn(shape, dtype=D)
    report = surrogate.audit(model, x, loss=mse)
    assert [(f.op, f.status) for f in report] == [("argmax", CUT)]
    assert report.remedy.startswith('with surrogate.intercept(argmax="softmax", only=')
    params = list(model.parameters())
    mode = surrogate.intercept(argmax="softmax", only=report if scoped else None)
    with mode:
        value = mse(model(x))
    got = torch.autograd.grad(value, params)
    model.explicit = "softmax"
    twin = mse(model(x))
    assert torch.equal(value, twin)
    for g, w in zip(got, torch.autograd.grad(twin, params), strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


# --- forms intercept cannot follow: audit's remedy says so ---------------------------------


class FlatCodebooks(nn.Module):
    """Per-head codebooks flattened to one table, read at ``idx + head * codes``: the index
    passes through arithmetic, which intercept does not follow."""

    def __init__(self, heads=2, codes=5, dim=3):
        super().__init__()
        self.heads, self.codes, self.dim = heads, codes, dim
        self.enc, self.dec = nn.Linear(4, heads * dim), nn.Linear(heads * dim, 2)
        self.codebook = nn.Parameter(torch.randn(heads, codes, dim))

    def forward(self, x):
        b = x.shape[0]
        z = self.enc(x).view(b, self.heads, self.dim).transpose(0, 1)
        idx = (-torch.cdist(z, self.codebook)).argmax(-1)
        flat = idx + torch.arange(self.heads)[:, None] * self.codes
        q = self.codebook.flatten(0, 1)[flat]
        return self.dec(q.transpose(0, 1).reshape(b, -1))


class MaskedExperts(nn.Module):
    """Tokens sent to their top-1 expert by ``idx == e`` masks, with no gate: the router is cut."""

    def __init__(self, experts=3):
        super().__init__()
        self.router = nn.Linear(4, experts)
        self.experts = nn.ModuleList(nn.Linear(4, 4) for _ in range(experts))

    def forward(self, x):
        idx = self.router(x).argmax(-1)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            out[idx == e] = expert(x[idx == e])
        return out


class TopTwo(nn.Module):
    """Each token to its two best experts at equal weight: ``topk(2)``, which intercept does not
    follow (it follows ``topk(1)``, an argmax)."""

    def __init__(self, experts=3):
        super().__init__()
        self.router = nn.Linear(4, experts)
        self.experts = nn.ModuleList(nn.Linear(4, 4) for _ in range(experts))

    def forward(self, x):
        idx = self.router(x).topk(2, dim=-1).indices
        gates = torch.zeros(x.shape[0], len(self.experts), dtype=x.dtype).scatter_(1, idx, 0.5)
        outs = torch.stack([expert(x) for expert in self.experts], dim=-1)
        return (outs * gates[:, None]).sum(-1)


@pytest.mark.parametrize(
    ("factory", "lost", "dead"),
    [(FlatCodebooks, "add", "enc.weight"), (MaskedExperts, "eq", "router.weight"),
     (TopTwo, "topk(k=2)", "router.weight")],
    ids=["index + offset", "idx == e", "topk(2)"],
)  # fmt: skip
def test_an_index_intercept_cannot_follow_gets_a_remedy_that_says_so(factory, lost, dead):
    torch.manual_seed(0)
    model, x = factory().to(D), torch.randn(6, 4, dtype=D)
    report = surrogate.audit(model, x, loss=mse)
    (finding,) = [f for f in report if f.op in ("argmax", "topk")]
    assert finding.status == CUT and dead in report.dead_parameters
    assert finding.remedy == (
        f"surrogate.argmax in the model (intercept cannot follow it: lost at {lost})"
    )
    assert report.remedy is None
    # and it is true: intercept leaves the parameter dead
    with surrogate.intercept(argmax="softmax"):
        value = mse(model(x))
    params = dict(model.named_parameters())
    (got,) = torch.autograd.grad(value, [params[dead]], allow_unused=True)
    assert got is None or not got.ne(0).any()

"""surrogate.intercept(argmax=...): an index followed through shape ops into F.one_hot, a scatter
one-hot or a codebook lookup keeps PyTorch's values and gets the gradients of the same model
written with surrogate.argmax's one-hot (then @ weight), in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surrogate

D = torch.float64
N, K, E = 5, 4, 3
ESTIMATORS = ["softmax", "sparsemax", "ste"]


def zeros():
    return torch.zeros(N, K, dtype=D)


# (form, plain torch of scores s and codebook W, reference from the one-hot Y of argmax(±s))
FORMS = [
    ("zeros.scatter_(1, argmin.unsqueeze(1), 1) @ W",
     lambda s, W: zeros().scatter_(1, s.argmin(1).unsqueeze(1), 1) @ W, lambda Y, W: Y @ W, False),
    ("zeros.scatter_(1, argmax.view(-1, 1), ones)",
     lambda s, W: zeros().scatter_(1, s.argmax(1).view(-1, 1), torch.ones(N, 1, dtype=D)),
     lambda Y, W: Y, True),
    ("torch.scatter(zeros, 1, max(1).indices[:, None], 1.0)",
     lambda s, W: torch.scatter(zeros(), 1, s.max(1).indices[:, None], 1.0),
     lambda Y, W: Y, True),
    ("y.scatter(1, argmin(keepdim), 2.0)",
     lambda s, W: W[:, :1].T.expand(N, K).scatter(1, s.argmin(1, keepdim=True), 2.0),
     lambda Y, W: W[:, :1].T + Y * (2.0 - W[:, :1].T), False),
    ("F.one_hot(argmax.view(N, 1)).double()",
     lambda s, W: F.one_hot(s.argmax(1).view(N, 1), K).double(),
     lambda Y, W: Y.view(N, 1, K), True),
    ("F.one_hot(argmax(keepdim).flatten()).type(D)",
     lambda s, W: F.one_hot(s.argmax(1, keepdim=True).flatten(), K).type(D), lambda Y, W: Y, True),
    ("F.one_hot(argmin.unsqueeze(0).flip(1)).to(D)",
     lambda s, W: F.one_hot(s.argmin(1).unsqueeze(0).flip(1), K).to(D),
     lambda Y, W: Y.unsqueeze(0).flip(1), False),
    ("F.one_hot(topk(1).indices.squeeze(1)[1:]) * 1.0",
     lambda s, W: F.one_hot(s.topk(1, 1).indices.squeeze(1)[1:], K) * 1.0,
     lambda Y, W: Y[1:], True),
    ("F.embedding(argmin, W)", lambda s, W: F.embedding(s.argmin(1), W), lambda Y, W: Y @ W, False),
    ("F.embedding(argmax.view(N, 1), W)", lambda s, W: F.embedding(s.argmax(1).view(N, 1), W),
     lambda Y, W: (Y @ W).view(N, 1, E), True),
    ("W[argmin]", lambda s, W: W[s.argmin(dim=1)], lambda Y, W: Y @ W, False),
    ("W.index_select(0, argmax)", lambda s, W: W.index_select(0, s.argmax(axis=1)),
     lambda Y, W: Y @ W, True),
    ("torch.index_select(W, 0, min(1)[1])", lambda s, W: torch.index_select(W, 0, s.min(1)[1]),
     lambda Y, W: Y @ W, False),
    ("W.gather(0, argmin(keepdim).expand(-1, E))",
     lambda s, W: W.gather(0, s.argmin(1, keepdim=True).expand(-1, E)), lambda Y, W: Y @ W, False),
    ("torch.gather(W, 0, argmax.unsqueeze(1).expand(N, E))",
     lambda s, W: torch.gather(W, 0, s.argmax(1).unsqueeze(1).expand(N, E)), lambda Y, W: Y @ W,
     True),
]  # fmt: skip
IDS = [f for f, *_ in FORMS]


def leaves():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(N, K, dtype=D, generator=g)
    return scores, torch.randn(K, E, dtype=D, generator=g)


@pytest.mark.parametrize("est", ESTIMATORS)
@pytest.mark.parametrize(("form", "plain", "ref", "largest"), FORMS, ids=IDS)
def test_forward_is_pytorchs_and_gradients_are_the_one_hot_models(form, plain, ref, largest, est):
    scores, table = leaves()
    want = plain(scores, table)
    s, W = scores.clone().requires_grad_(), table.clone().requires_grad_()
    with surrogate.intercept(argmax=est):
        out = plain(s, W)
    assert out.dtype == want.dtype and torch.equal(out.detach(), want)
    g = torch.linspace(-1, 1, out.numel(), dtype=D).view(out.shape)
    got = torch.autograd.grad(out, (s, W), g, allow_unused=True)
    sr, Wr = scores.clone().requires_grad_(), table.clone().requires_grad_()
    Y = surrogate.argmax(sr if largest else -sr, est, dim=1)
    expected = ref(Y, Wr)
    wants = torch.autograd.grad(expected, (sr, Wr), g, allow_unused=True)
    assert got[0].abs().sum() > 0
    for a, b in zip(got, wants, strict=True):
        if b is None or not b.any():
            assert a is None or not a.any()
        else:
            torch.testing.assert_close(a, b)


def test_index_followed_through_permute_on_a_middle_dim():
    scores = torch.randn(2, K, 3, dtype=D)
    s = scores.clone().requires_grad_()
    with surrogate.intercept(argmax="softmax"):
        out = F.one_hot(s.argmax(1).permute(1, 0).reshape(6), K).double()
    assert torch.equal(out, F.one_hot(scores.argmax(1).permute(1, 0).reshape(6), K).double())
    g = torch.randn(6, K, dtype=D)
    (got,) = torch.autograd.grad(out, s, g)
    sr = scores.clone().requires_grad_()
    Y = surrogate.argmax(sr, "softmax", dim=1).movedim(1, -1).permute(1, 0, 2).reshape(6, K)
    torch.testing.assert_close(got, torch.autograd.grad(Y, sr, g)[0])


class VQ(nn.Module):
    """VQ-VAE quantizer: the nearest code by argmin, its one-hot by scatter_, then @ codebook."""

    def __init__(self):
        super().__init__()
        self.codebook = nn.Embedding(K, E).double()

    def forward(self, z, onehot=None):
        w = self.codebook.weight
        d = (z**2).sum(1, keepdim=True) - 2 * z @ w.T + (w**2).sum(1)
        if onehot is None:
            idx = torch.argmin(d, dim=1).unsqueeze(1)
            onehot = torch.zeros(z.shape[0], K, dtype=z.dtype).scatter_(1, idx, 1)
        else:
            onehot = onehot(-d)
        return onehot @ w


def test_vq_layer_with_argmin_and_scatter_matches_surrogate_argmax():
    torch.manual_seed(0)
    vq, z = VQ(), torch.randn(7, E, dtype=D, requires_grad=True)
    with surrogate.intercept(argmax="softmax"):
        out = vq(z)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, (z, vq.codebook.weight), g)
    want_out = vq(z, onehot=lambda logits: surrogate.argmax(logits, "softmax", dim=1))
    want = torch.autograd.grad(want_out, (z, vq.codebook.weight), g)
    assert torch.equal(out, want_out) and got[0].abs().sum() > 0
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_no_grad_integer_scores_and_unfollowed_indices_are_left_alone():
    scores, table = leaves()
    s = scores.clone().requires_grad_()
    with surrogate.intercept(argmax="softmax"):
        with torch.no_grad():
            quiet = [plain(s, table) for _, plain, *_ in FORMS]
        ints = [plain(scores.round().long(), table) for _, plain, *_ in FORMS[4:8]]
        fixed = F.embedding(torch.tensor([0, 2]), table.requires_grad_())  # not an argmax
    assert not any(o.requires_grad for o in quiet + ints)
    for a, (_, plain, *_) in zip(quiet, FORMS, strict=True):
        assert torch.equal(a, plain(scores, table.detach()))
    assert fixed.grad_fn is not None and "Attach" not in type(fixed.grad_fn).__name__

"""A battery of hard-op forwards re-written from public repositories (each model names the file it
re-writes, keeping its spelling), small and seeded, in float64. For each: audit's dead parameters
are those a plain backward leaves without gradient; a model that routes its own gradient is left
bit-identical (forward and every gradient) under the scoped intercept; a cut model gets, under the
scoped intercept, the gradient of its twin written with surrogate's ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import OneHotCategorical

import surrogate
from surrogate.audit.findings import CUT, HANDLED, UNREACHED

D = torch.float64
KEYWORDS = dict(step="atan", sign="atan", round="atan", argmax="softmax")


def mse(y):
    return (y - 0.3).square().mean()


# --- DingKe/pytorch_workplace, binary/functions.py and binary/modules.py -----------------------


class BinarizeF(torch.autograd.Function):
    """Sign by two boolean index-puts, straight-through backward."""

    @staticmethod
    def forward(cxt, input):
        output = input.new(input.size())
        output[input >= 0] = 1
        output[input < 0] = -1
        return output

    @staticmethod
    def backward(cxt, grad_output):
        grad_input = grad_output.clone()
        return grad_input


binarize = BinarizeF.apply


class BinaryMLP(nn.Module):
    """Binary weights and binary activations, both through the model's own Function."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x):
        h = binarize(F.linear(x, binarize(self.fc1.weight), self.fc1.bias))
        return F.linear(h, binarize(self.fc2.weight), self.fc2.bias)


# --- AverageMetaheuristicsEnjoyer/Multi-Head-MomentumSMoE, gates.py ----------------------------


class TopKGate(nn.Module):
    """Gates scattered from the softmax of the top-k routing weights. With top_k = 1 that softmax
    is the constant 1: the router gets no gradient (cut); its twin is one-hot × 1."""

    explicit: str | None = None

    def __init__(self, d_model=4, num_experts=3, top_k=2):
        super().__init__()
        self.gate = nn.Linear(d_model, num_experts)
        self.top_k, self.num_experts = top_k, num_experts
        self.experts = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(num_experts))

    def forward(self, x):
        routing_weights = self.gate(x)
        top_k_weights, top_k_indices = torch.topk(routing_weights, k=self.top_k, dim=-1)
        if self.explicit is None:
            gates = torch.zeros_like(routing_weights)
            gates = gates.scatter_(-1, top_k_indices, F.softmax(top_k_weights, dim=-1))
        else:
            one_hot = surrogate.argmax(routing_weights, self.explicit)
            gates = one_hot * F.softmax(top_k_weights, dim=-1)
        outs = torch.stack([expert(x) for expert in self.experts], dim=-1)
        return (outs * gates[:, None]).sum(-1)


# --- lucidrains/vector-quantize-pytorch, vector_quantize_pytorch/vector_quantize_pytorch.py ------


def batched_embedding(indices, embeds):
    """Per-head codebook read; einops' repeat written as the expands it makes."""
    batch, dim = indices.shape[1], embeds.shape[-1]
    indices = indices[..., None].expand(*indices.shape, dim)
    embeds = embeds[:, None].expand(embeds.shape[0], batch, *embeds.shape[1:])
    return embeds.gather(2, indices)


class SeparateCodebooks(nn.Module):
    """A codebook per head, the nearest code by argmax of −cdist, a straight-through to the
    encoder and codebook and commitment losses on the lookup."""

    def __init__(self, heads=2, codebook_size=5, dim=3):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.enc, self.dec = nn.Linear(4, heads * dim), nn.Linear(heads * dim, 2)
        self.embed = nn.Parameter(torch.randn(heads, codebook_size, dim))

    def forward(self, x):
        b = x.shape[0]
        z = self.enc(x).view(b, 1, self.heads, self.dim).permute(2, 0, 1, 3)  # h b n d
        flatten = z.reshape(self.heads, -1, self.dim)
        dist = -torch.cdist(flatten, self.embed, p=2)
        embed_ind = dist.argmax(dim=-1).view(self.heads, b, 1)
        quantize = batched_embedding(embed_ind, self.embed)
        self.aux = F.mse_loss(quantize, z.detach()) + 0.25 * F.mse_loss(quantize.detach(), z)
        quantize = z + (quantize - z).detach()
        return self.dec(quantize.permute(1, 2, 0, 3).reshape(b, -1))


# --- ErwannMillon/face-editor, vqgan_latent_ops.py and gradient_flow_ops.py --------------------


class ReplaceGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_forward, x_backward):
        ctx.shape = x_backward.shape
        return x_forward

    @staticmethod
    def backward(ctx, grad_in):
        return None, grad_in.sum_to_size(ctx.shape)


replace_grad = ReplaceGrad.apply


def vector_quantize(x, codebook):
    d = x.pow(2).sum(dim=-1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2 * x @ codebook.T
    indices = d.argmin(-1)
    x_q = F.one_hot(indices, codebook.shape[0]).to(d.dtype) @ codebook
    return replace_grad(x_q, x)


class ReplaceGradVQ(nn.Module):
    """The quantized latent's value with the gradient replaced by the encoder's: the one-hot never
    sees a gradient (does not reach the loss), the codebook is dead as written."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 3), nn.Linear(3, 2)
        self.codebook = nn.Parameter(torch.randn(5, 3))

    def forward(self, x):
        return self.dec(vector_quantize(self.enc(x), self.codebook))


# --- facebookresearch/encodec, encodec/quantization/core_vq.py ---------------------------------


class EuclideanCodebook(nn.Module):
    """The codebook a buffer (updated by EMA outside autograd); the nearest code by
    ``dist.max(dim=-1).indices`` and read by ``F.embedding``."""

    explicit: str | None = None

    def __init__(self, dim, codebook_size):
        super().__init__()
        self.register_buffer("embed", torch.randn(codebook_size, dim))

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        embed = self.embed.t()
        dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))
        if self.explicit is not None:
            return (surrogate.argmax(dist, self.explicit) @ self.embed).view(shape)
        embed_ind = dist.max(dim=-1).indices
        embed_ind = embed_ind.view(*shape[:-1])
        return F.embedding(embed_ind, self.embed)


class ResidualVQ(nn.Module):
    """Residual VQ between an encoder and a decoder; in training each layer's output is a
    straight-through with a commitment loss, in eval the lookup itself (cut)."""

    def __init__(self, num_quantizers=2, dim=3, codebook_size=5):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, dim), nn.Linear(dim, 2)
        self.layers = nn.ModuleList(
            EuclideanCodebook(dim, codebook_size) for _ in range(num_quantizers)
        )

    @property
    def explicit(self):
        return self.layers[0].explicit

    @explicit.setter
    def explicit(self, est):
        for layer in self.layers:
            layer.explicit = est

    def forward(self, x):
        residual = self.enc(x)
        quantized_out, self.aux = 0.0, 0.0
        for layer in self.layers:
            quantize = layer(residual)
            if self.training:
                self.aux = self.aux + F.mse_loss(quantize.detach(), residual)
                quantize = residual + (quantize - residual).detach()
            residual = residual - quantize
            quantized_out = quantized_out + quantize
        return self.dec(quantized_out)


def residual_vq(training):
    def make():
        model = ResidualVQ()
        return model.train(training)

    return make


# --- NM512/dreamerv3-torch, tools.py (OneHotDist) ----------------------------------------------


class OneHotDist(OneHotCategorical):
    def __init__(self, logits=None, probs=None, unimix_ratio=0.0):
        if logits is not None and unimix_ratio > 0.0:
            probs = F.softmax(logits, dim=-1)
            probs = probs * (1.0 - unimix_ratio) + unimix_ratio / probs.shape[-1]
            logits = torch.log(probs)
            super().__init__(logits=logits, probs=None)
        else:
            super().__init__(logits=logits, probs=probs)

    def mode(self):
        _mode = F.one_hot(torch.argmax(super().logits, axis=-1), super().logits.shape[-1])
        return _mode.detach() + super().logits - super().logits.detach()


class CategoricalLatents(nn.Module):
    """World-model latents: 2 categoricals of 4 classes, their straight-through mode decoded."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        logits = self.enc(x).view(x.shape[0], 2, 4)
        stoch = OneHotDist(logits=logits, unimix_ratio=0.01).mode()
        return self.dec(stoch.reshape(x.shape[0], -1))


# --- the battery ---------------------------------------------------------------------------------


def with_aux(model):
    return lambda y: mse(y) + model.aux


# name: (factory, input shape, loss of the model, op, the status audit gives it)
BATTERY = {
    "binarized, own Function": (BinaryMLP, (5, 4), lambda m: mse, "ge", HANDLED),
    "top-2 gate": (TopKGate, (6, 4), lambda m: mse, "topk", HANDLED),
    "top-1 gate": (lambda: TopKGate(top_k=1), (6, 4), lambda m: mse, "topk", CUT),
    "per-head codebooks": (SeparateCodebooks, (6, 4), with_aux, "argmax", HANDLED),
    "replace_grad vq": (ReplaceGradVQ, (6, 4), lambda m: mse, "argmin", UNREACHED),
    "residual vq, training": (residual_vq(True), (6, 4), with_aux, "max", HANDLED),
    "residual vq, eval": (residual_vq(False), (6, 4), lambda m: mse, "max", CUT),
    "categorical latents": (CategoricalLatents, (6, 4), lambda m: mse, "argmax", HANDLED),
}
CUT_NAMES = [n for n, spec in BATTERY.items() if spec[4] == CUT]
KEPT_NAMES = [n for n, spec in BATTERY.items() if spec[4] != CUT]


def build(name):
    factory, shape, make_loss, op, status = BATTERY[name]
    torch.manual_seed(0)
    model = factory().to(D)
    return model, torch.randn(shape, dtype=D), make_loss(model), op, status


def grads(model, x, loss, mode=None):
    """The loss and every parameter's gradient (None kept), under ``mode``."""
    params = list(model.parameters())
    if mode is None:
        value = loss(model(x))
    else:
        with mode:
            value = loss(model(x))
    return value.detach(), torch.autograd.grad(value, params, allow_unused=True)


@pytest.mark.parametrize("name", list(BATTERY))
def test_audit_labels_the_op_and_its_dead_list_is_a_plain_backwards(name):
    model, x, loss, op, status = build(name)
    report = surrogate.audit(model, x, loss=loss)
    assert {f.status for f in report if f.op == op} == {status}
    _, plain = grads(model, x, loss)
    dead = [n for (n, _), g in zip(model.named_parameters(), plain, strict=True)
            if g is None or not g.ne(0).any()]  # fmt: skip
    assert report.dead_parameters == dead


@pytest.mark.parametrize("name", KEPT_NAMES)
def test_a_model_that_routes_or_drops_its_gradient_is_left_bit_identical(name):
    model, x, loss, _, _ = build(name)
    value, plain = grads(model, x, loss)
    scoped = surrogate.intercept(**KEYWORDS, only=surrogate.audit(model, x, loss=loss))
    got_value, got = grads(model, x, loss, scoped)
    assert torch.equal(got_value, value)
    for g, w in zip(got, plain, strict=True):
        assert (g is None and w is None) or torch.equal(g, w)


@pytest.mark.parametrize("name", CUT_NAMES)
def test_a_cut_model_is_revived_with_its_twins_gradient(name):
    model, x, loss, _, _ = build(name)
    report = surrogate.audit(model, x, loss=loss)
    assert report.dead_parameters
    value, got = grads(model, x, loss, surrogate.intercept(argmax="softmax", only=report))
    model.explicit = "softmax"
    twin_value, twin = grads(model, x, loss)
    assert torch.equal(value, twin_value)
    params = dict(zip(dict(model.named_parameters()), range(len(got)), strict=True))
    for name_ in report.dead_parameters:
        assert got[params[name_]].ne(0).any()
    for g, w in zip(got, twin, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)

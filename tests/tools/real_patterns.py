"""Small models written the way public repositories write hard ops: spiking nets, binarized nets,
vector quantisers, categorical latents and quantizers.

Each model has an ``explicit`` attribute: None runs the plain torch ops as the repositories write
them; a dict of estimator names (``{"step": "atan", "argmax": "ste", ...}``) runs the same model
with the library's ops in their place:

    (v > t).float(), out[v > t] = 1, where / masked_fill   ->  surrogate.step(v - t, est)
    (v < t).float()                                          ->  surrogate.step(t - v, est)
    torch.sign(v), v.sign_()                                 ->  surrogate.sign(v, est)
    torch.round(v)                                           ->  surrogate.round(v, est)
    floor(v)            (= round(v - 1/2) off the integers)  ->  surrogate.round(v - 0.5, est)
    trunc(v)            (jumps at the nonzero integers k)    ->  trunc(v) + S - S.detach(),
                                                                 S = surrogate.step(v - k, est)
    one-hot of argmin(d) / max(-d), then scatter or lookup   ->  surrogate.argmax(-d, est) @ W
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import surrogate


class Explicit(nn.Module):
    explicit: dict[str, str] | None = None


def mse(y):
    return (y - 0.3).square().mean()


# --- spiking nets ---------------------------------------------------------------------------


def spike_fn(x):
    """spytorch's naive spike: the Heaviside step written as a boolean index-put."""
    out = torch.zeros_like(x)
    out[x > 0] = 1.0
    return out


class SpyTorch(Explicit):
    """Two layers in the style of spytorch's first tutorial: a LIF hidden layer whose reset goes
    through a detached spike, and a leaky integrator readout."""

    def __init__(self, n_in=5, n_hid=6, n_out=3, steps=4):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(n_in, n_hid) * 0.9)
        self.w2 = nn.Parameter(torch.randn(n_hid, n_out) * 0.5)
        self.steps, self.alpha, self.beta = steps, 0.8, 0.9

    def spike(self, mthr):
        if self.explicit is None:
            return spike_fn(mthr)
        return surrogate.step(mthr, self.explicit["step"])

    def forward(self, inputs):
        h1 = torch.einsum("abc,cd->abd", (inputs, self.w1))
        syn = torch.zeros(inputs.shape[0], self.w1.shape[1], dtype=inputs.dtype)
        mem = torch.zeros_like(syn)
        spk_rec = []
        for t in range(self.steps):
            out = self.spike(mem - 1.0)
            rst = out.detach()
            new_syn = self.alpha * syn + h1[:, t]
            mem = (self.beta * mem + syn) * (1.0 - rst)
            syn = new_syn
            spk_rec.append(out)
        h2 = torch.einsum("abc,cd->abd", (torch.stack(spk_rec, dim=1), self.w2))
        flt = out = torch.zeros(inputs.shape[0], self.w2.shape[1], dtype=inputs.dtype)
        out_rec = []
        for t in range(self.steps):
            flt, out = self.alpha * flt + h2[:, t], self.beta * out + flt
            out_rec.append(out)
        return torch.stack(out_rec, dim=1)


def spytorch_loss(out):
    labels = torch.arange(out.shape[0]) % out.shape[-1]
    return F.nll_loss(F.log_softmax(out.max(1)[0], 1), labels)


class LIF(Explicit):
    """A leaky integrate-and-fire net over time (input: time x batch x features), its spike and
    reset written as ``form``; the threshold a parameter where the form compares with one:

    parameter    spk = (mem > threshold).float(); mem = mem - spk * threshold
    where        spk = where(mem > thr, 1.0, 0.0); mem = where(mem > thr, 0.0, mem)
    gt_to        spk = mem.gt(0.4).to(mem.dtype); mem = mem * (1 - spk.detach())
    mul          spk = (mem - thr > 0) * 1.0; mem = mem * (1 - spk.detach())
    masked_fill  spk = zeros.masked_fill(mem > thr, 1.0); mem = mem.masked_fill(mem > thr, 0.0)
    lt           silent = (mem < thr).type_as(mem); spk = 1 - silent; mem = mem * silent

    Under ``surrogate.intercept`` the resets of ``where`` and ``masked_fill`` are mem + s·(0 − mem):
    their twin is ``mem * (1 - spk)``, the reset through the surrogate step; the others detach
    the spike in the reset themselves.
    """

    forms = ("parameter", "where", "gt_to", "mul", "masked_fill", "lt")

    def __init__(self, form, n_in=4, n_hid=8, n_out=2):
        super().__init__()
        self.form = form
        self.fc, self.head = nn.Linear(n_in, n_hid), nn.Linear(n_hid, n_out)
        if form != "gt_to":
            self.threshold = nn.Parameter(torch.tensor(0.4))

    def fire(self, mem):
        """The spikes and the membrane after the reset."""
        thr = self.threshold if self.form != "gt_to" else 0.4
        if self.explicit is not None:
            est = self.explicit["step"]
            if self.form == "lt":
                silent = surrogate.step(thr - mem, est)
                return 1.0 - silent, mem * silent
            spk = surrogate.step(mem - thr, est)
            if self.form == "parameter":
                return spk, mem - spk * thr
            if self.form in ("where", "masked_fill"):
                return spk, mem * (1.0 - spk)
            return spk, mem * (1.0 - spk.detach())
        if self.form == "parameter":
            spk = (mem > self.threshold).float()
            return spk, mem - spk * self.threshold
        if self.form == "where":
            fired = mem > thr
            return torch.where(fired, 1.0, 0.0), torch.where(fired, 0.0, mem)
        if self.form == "masked_fill":
            fired = mem > thr
            return torch.zeros_like(mem).masked_fill(fired, 1.0), mem.masked_fill(fired, 0.0)
        if self.form == "lt":
            silent = (mem < thr).type_as(mem)
            return 1.0 - silent, mem * silent
        spk = mem.gt(thr).to(mem.dtype) if self.form == "gt_to" else (mem - thr > 0) * 1.0
        return spk, mem * (1.0 - spk.detach())

    def forward(self, x):
        mem = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = self.fire(0.9 * mem + self.fc(x[t]))
            spikes.append(spk)
        return self.head(torch.stack(spikes)).mean(0)


# --- binarized nets --------------------------------------------------------------------------


class BinaryNet(Explicit):
    """BinaryNet-style MLP: sign of the weights in both layers, batch norm and hardtanh, the
    hidden activations binarized by ``act``: ``sign_`` in place on a clone, or ``where``,
    ``torch.where(h >= 0, 1.0, -1.0)`` (a step of jump 2: its twin is ``surrogate.sign`` with
    the step's estimator); no straight-through of its own."""

    acts = ("sign_", "where")

    def __init__(self, act="sign_", n_in=6, n_hid=8, n_out=3):
        super().__init__()
        self.act = act
        self.fc1 = nn.Linear(n_in, n_hid, bias=False)
        self.bn1 = nn.BatchNorm1d(n_hid)
        self.fc2 = nn.Linear(n_hid, n_out)

    def binarize(self, v, in_place=False):
        if self.explicit is not None:
            return surrogate.sign(v, self.explicit["sign"])
        if in_place:
            v = v.clone()
            v.sign_()
            return v
        return torch.sign(v)

    def activation(self, h):
        if self.act == "sign_":
            return self.binarize(h, in_place=True)
        if self.explicit is not None:
            return surrogate.sign(h, self.explicit["step"])
        return torch.where(h >= 0, 1.0, -1.0)

    def forward(self, x):
        h = F.linear(x, self.binarize(self.fc1.weight))
        h = F.hardtanh(self.bn1(h))
        a = self.activation(h)
        return F.linear(a, self.binarize(self.fc2.weight), self.fc2.bias)


class BinarizeSTE(torch.autograd.Function):
    """sign(x) forward, the clipped straight-through 1[|x| <= 1] backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sign()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class OwnSTE(Explicit):
    """A binarized layer with its own straight-through ``autograd.Function``."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return F.linear(BinarizeSTE.apply(h), BinarizeSTE.apply(self.fc2.weight), self.fc2.bias)


class DetachTrick(Explicit):
    """sign made straight-through by hand: ``h + (torch.sign(h) - h).detach()``."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h + (torch.sign(h) - h).detach())


# --- vector quantisation and categorical latents ---------------------------------------------


class VQ(Explicit):
    """encoder -> nearest of 5 codewords (distances; argmin) -> decoder, without a
    straight-through, so the encoder gets no gradient. The codeword is read by ``lookup``:

    scatter_   zeros(n, K).scatter_(1, argmin(d).unsqueeze(1), 1) @ codebook
    index      codebook[d.argmin(1)]
    embedding  F.embedding(torch.argmin(d, dim=1), codebook)
    max        F.embedding((-d).max(1) indices, codebook)
    """

    lookups = ("scatter_", "index", "embedding", "max")

    def __init__(self, lookup, n_in=6, dim=4, codes=5):
        super().__init__()
        self.lookup = lookup
        self.enc, self.dec = nn.Linear(n_in, dim), nn.Linear(dim, n_in)
        self.codebook = nn.Parameter(torch.randn(codes, dim))

    def forward(self, x):  # x: batch x length x n_in
        z = self.enc(x)
        flat, book = z.reshape(-1, z.shape[-1]), self.codebook
        d = flat.pow(2).sum(1, keepdim=True) + book.pow(2).sum(1) - 2 * flat @ book.t()
        if self.explicit is not None:
            zq = surrogate.argmax(-d, self.explicit["argmax"], dim=1) @ book
        elif self.lookup == "scatter_":
            idx = torch.argmin(d, dim=1).unsqueeze(1)
            onehot = torch.zeros(idx.shape[0], book.shape[0], dtype=flat.dtype)
            onehot.scatter_(1, idx, 1)
            zq = onehot @ book
        elif self.lookup == "index":
            zq = book[d.argmin(1)]
        elif self.lookup == "embedding":
            zq = F.embedding(torch.argmin(d, dim=1), book)
        else:
            _, idx = (-d).max(1)
            zq = F.embedding(idx, book)
        return self.dec(zq.view_as(z))


class Dreamer(Explicit):
    """DreamerV2's categorical latent without its straight-through: 3 variables of 4 classes,
    ``F.one_hot(torch.argmax(logits, axis=-1), 4)`` cast by ``cast`` (``.float()`` as written,
    or ``.to(logits.dtype)``)."""

    def __init__(self, cast="float"):
        super().__init__()
        self.cast = cast
        self.fc, self.head = nn.Linear(6, 12), nn.Linear(12, 2)

    def forward(self, x):
        logits = self.fc(x).unflatten(-1, (3, 4))
        if self.explicit is not None:
            sample = surrogate.argmax(logits, self.explicit["argmax"], dim=-1)
            sample = sample.float() if self.cast == "float" else sample
        elif self.cast == "float":
            sample = F.one_hot(torch.argmax(logits, axis=-1), 4).float()
        else:
            sample = F.one_hot(torch.argmax(logits, axis=-1), 4).to(logits.dtype)
        return self.head(sample.flatten(1))


# --- quantizers -----------------------------------------------------------------------------


def trunc_twin(v, est):
    """trunc(v) with the backward p(v − k), k the nearest nonzero integer (trunc jumps at every
    nonzero integer, not at 0), p the step estimator's bump."""
    with torch.no_grad():
        k = torch.round(v)
        k = torch.where(k == 0, torch.where(v < 0, -1.0, 1.0).to(v.dtype), k)
    s = surrogate.step(v - k, est)
    return torch.trunc(v).detach() + s - s.detach()


class Quantized(Explicit):
    """fc1 -> tanh -> quantized linear, weights and input activations quantized by ``mode``:

    round   LSQ: round(clamp(v / s, -Qn, Qp)) * s, step sizes s learnable
    floor   (v / s + 1/2).floor_() (round half up, in place), clamped, * s
    trunc   fixed point with 3 fractional bits: trunc(v * 8) / 8
    """

    modes = ("round", "floor", "trunc")

    def __init__(self, mode, n_in=6, n_hid=8, n_out=3):
        super().__init__()
        self.mode = mode
        self.fc1 = nn.Linear(n_in, n_hid)
        self.weight = nn.Parameter(torch.randn(n_out, n_hid) * 0.5)
        self.bias = nn.Parameter(torch.zeros(n_out))
        if mode != "trunc":
            self.s_w = nn.Parameter(2 * self.weight.detach().abs().mean() / 7**0.5)
            self.s_x = nn.Parameter(torch.tensor(0.2))

    def quantize(self, v, s, qn, qp):
        est = None if self.explicit is None else self.explicit["round"]
        if self.mode == "trunc":
            return (torch.trunc(v * 8) if est is None else trunc_twin(v * 8, est)) / 8
        if self.mode == "round":
            v = torch.clamp(v / s, -qn, qp)
            return (torch.round(v) if est is None else surrogate.round(v, est)) * s
        v = v / s + 0.5
        v = v.floor_() if est is None else surrogate.round(v - 0.5, est)
        return torch.clamp(v, -qn, qp) * s

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        xq = self.quantize(h, getattr(self, "s_x", None), 8, 7)
        wq = self.quantize(self.weight, getattr(self, "s_w", None), 8, 7)
        return F.linear(xq, wq, self.bias)

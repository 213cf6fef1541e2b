"""surrogate.audit tells the truth on models written the way public repositories write them: its
dead parameters are exactly those a plain ``loss.backward()`` leaves without a gradient (or with
only zeros), each attributed to the op that cuts it; a hard op the model already routes a gradient
around is "handled by the model" and gets no remedy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surrogate
from surrogate.audit.findings import CUT, HANDLED
from surrogate.audit.modes import Healer, Recorder
from surrogate.intercept.sites import Modules
from tests.tools.real_patterns import BinarizeSTE, mse, spike_fn


def truth(model, x, loss=mse) -> list[str]:
    """The parameters a plain backward of ``loss(model(x))`` leaves with grad None or all zero."""
    model.zero_grad(set_to_none=True)
    loss(model(x)).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.ne(0).any()]
    model.zero_grad(set_to_none=True)
    return dead


# --- spiking nets ----------------------------------------------------------------------------


class SpyTorch(nn.Module):
    """spytorch tutorial 1: LIF hidden layer, leaky readout, reset through a detached spike."""

    def __init__(self, n_in=5, n_hid=6, n_out=3, steps=4):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(n_in, n_hid) * 0.8)
        self.w2 = nn.Parameter(torch.randn(n_hid, n_out) * 0.5)
        self.steps, self.alpha, self.beta = steps, 0.8, 0.9

    def forward(self, inputs):
        h1 = torch.einsum("abc,cd->abd", (inputs, self.w1))
        syn = torch.zeros(inputs.shape[0], self.w1.shape[1])
        mem = torch.zeros_like(syn)
        spk_rec = []
        for t in range(self.steps):
            mthr = mem - 1.0
            out = spike_fn(mthr)
            rst = out.detach()
            new_syn = self.alpha * syn + h1[:, t]
            mem = (self.beta * mem + syn) * (1.0 - rst)
            syn = new_syn
            spk_rec.append(out)
        h2 = torch.einsum("abc,cd->abd", (torch.stack(spk_rec, dim=1), self.w2))
        flt = out = torch.zeros(inputs.shape[0], self.w2.shape[1])
        out_rec = []
        for t in range(self.steps):
            flt, out = self.alpha * flt + h2[:, t], self.beta * out + flt
            out_rec.append(out)
        return torch.stack(out_rec, dim=1)


def spytorch_loss(out):
    return F.nll_loss(F.log_softmax(out.max(1)[0], 1), torch.tensor([0, 2, 1]))


class LIF(nn.Module):
    """A LIF layer with a learnable threshold, spikes as ``(mem > threshold).float()``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.threshold = nn.Parameter(torch.tensor(0.1))

    def forward(self, x):
        mem = torch.zeros(x.shape[1], 8)
        spikes = []
        for t in range(x.shape[0]):
            mem = 0.9 * mem + self.fc(x[t])
            spk = (mem > self.threshold).float()
            self.recorded = mem.detach()  # kept for plotting, as snntorch's layers do
            mem = mem - spk * self.threshold
            spikes.append(spk)
        return torch.stack(spikes)


class LIFNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lif, self.head = LIF(), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.lif(x)).mean(0)


class Thresholds(nn.Module):
    """``fc -> hard step -> head``, the step written as ``form``."""

    forms = {
        "masked_fill": lambda h: torch.zeros_like(h).masked_fill(h > 0, 1.0),
        "masked_fill_": lambda h: torch.zeros_like(h).masked_fill_(h > 0, 1.0),
        "mul": lambda h: (h > 0) * 1.0,
        "add": lambda h: ((h > 0) + 0).float(),
        "index_put_": lambda h: torch.zeros_like(h).index_put_((h > 0,), torch.tensor(1.0)),
        "where": lambda h: torch.where(h >= 0, 1.0, -1.0),
        "le": lambda h: (h <= 0).to(h.dtype),
    }

    def __init__(self, form):
        super().__init__()
        self.fc, self.head, self.form = nn.Linear(4, 6), nn.Linear(6, 2), self.forms[form]

    def forward(self, x):
        return self.head(self.form(self.fc(x)))


# --- the model's own straight-through --------------------------------------------------------


class BinaryLinear(nn.Linear):
    def forward(self, x):
        return F.linear(BinarizeSTE.apply(x), BinarizeSTE.apply(self.weight), self.bias)


class BinaryMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), BinaryLinear(8, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class DetachTrick(nn.Module):
    """``sign`` made straight-through by hand; ``off`` adds a branch whose gradient is zero."""

    def __init__(self, off=False):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
        self.off = nn.Linear(4, 8) if off else None

    def forward(self, x):
        h = self.fc1(x)
        if self.off is not None:
            h = h + 0.0 * self.off(x)
        return self.fc2(h + (torch.sign(h) - h).detach())


# --- vector quantisation and categorical latents ---------------------------------------------


class VQ(nn.Module):
    """encoder -> nearest codeword (argmin of distances) -> decoder; the codeword picked by
    ``lookup``: a scatter_ one-hot times the codebook, indexing, F.embedding or nn.Embedding."""

    def __init__(self, lookup, ste=False):
        super().__init__()
        self.enc, self.dec = nn.Linear(6, 4), nn.Linear(4, 6)
        self.codebook = nn.Embedding(5, 4)
        self.lookup, self.ste = lookup, ste

    def forward(self, x):
        z = self.enc(x)
        book = self.codebook.weight
        dist = z.pow(2).sum(1, keepdim=True) - 2 * z @ book.t() + book.pow(2).sum(1)
        idx = torch.argmin(dist, dim=1)
        if self.lookup == "scatter_":
            onehot = torch.zeros(idx.shape[0], book.shape[0]).scatter_(1, idx.unsqueeze(1), 1)
            zq = onehot @ book
        elif self.lookup == "index":
            zq = book[idx]
        elif self.lookup == "embedding":
            zq = F.embedding(idx, book)
        else:
            zq = self.codebook(idx)
        if not self.ste:
            return self.dec(zq)
        codebook_loss = F.mse_loss(zq, z.detach()) + 0.25 * F.mse_loss(z, zq.detach())
        return self.dec(z + (zq - z).detach()), codebook_loss


def vq_loss(out):
    return mse(out[0]) + out[1]


class Dreamer(nn.Module):
    """DreamerV2's categorical latent: one-hot of ``torch.argmax(logits, axis=-1)``, with or
    without its straight-through ``+ probs - probs.detach()``."""

    def __init__(self, ste):
        super().__init__()
        self.fc, self.head, self.ste = nn.Linear(6, 12), nn.Linear(12, 2), ste

    def forward(self, x):
        logits = self.fc(x).unflatten(-1, (3, 4))
        sample = F.one_hot(torch.argmax(logits, axis=-1), 4).float()
        if self.ste:
            probs = logits.softmax(-1)
            sample = sample + probs - probs.detach()
        return self.head(sample.flatten(1))


CASES = {
    # name: (model factory, input shape, loss, dead parameters, op, module, cuts it, status)
    "spytorch": (SpyTorch, (3, 4, 5), spytorch_loss, ["w1"], "gt", "", CUT),
    "lif threshold": (LIFNet, (3, 2, 4), mse, ["lif.threshold", "lif.fc.weight", "lif.fc.bias"],
                      "gt", "lif", CUT),
    **{f"step by {form}": (lambda form=form: Thresholds(form), (5, 4), mse,
                           ["fc.weight", "fc.bias"], "le" if form == "le" else
                           "ge" if form == "where" else "gt", "", CUT)
       for form in Thresholds.forms},
    "binary mlp, own Function": (BinaryMLP, (5, 4), mse, [], "sign", "fc2", HANDLED),
    "detach trick": (DetachTrick, (5, 4), mse, [], "sign", "", HANDLED),
    "detach trick beside a zeroed branch": (lambda: DetachTrick(off=True), (5, 4), mse,
                                            ["off.weight", "off.bias"], "sign", "", HANDLED),
    **{f"vq {lookup}": (lambda lookup=lookup: VQ(lookup), (7, 6), mse,
                        ["enc.weight", "enc.bias"], "argmin", "", CUT)
       for lookup in ("scatter_", "index", "embedding", "module")},
    "vq with its own straight-through": (lambda: VQ("index", ste=True), (7, 6), vq_loss, [],
                                         "argmin", "", HANDLED),
    "dreamer": (lambda: Dreamer(ste=False), (5, 6), mse, ["fc.weight", "fc.bias"], "argmax",
                "", CUT),
    "dreamer straight-through": (lambda: Dreamer(ste=True), (5, 6), mse, [], "argmax", "",
                                 HANDLED),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_dead_parameters_are_the_plain_backwards_and_each_is_attributed(name):
    factory, shape, loss, dead, op, module, status = CASES[name]
    torch.manual_seed(0)
    model, x = factory(), torch.randn(shape)
    report = surrogate.audit(model, x, loss=loss)
    assert truth(model, x, loss) == dead  # the test's own reading of the model
    assert report.dead_parameters == dead
    finding = next(f for f in report if f.op == op)
    assert (finding.module, finding.status) == (module, status)
    if status == CUT:
        assert list(finding.cuts) == dead
        assert all(report.causes[n] == f"cut by {op} in {module or '(model)'}" for n in dead)
    else:
        assert finding.cuts == ()
        assert all(
            c.startswith("unrecognised op: gradient all zero") for c in report.causes.values()
        )
    if status == HANDLED:
        assert finding.remedy.startswith("none: handled by the model")
        assert "handled by the model" in str(report)
    else:
        assert finding.remedy.startswith("surrogate.intercept(")
    assert ("step=" in finding.remedy) == (status == CUT and op in ("gt", "ge", "le"))
    assert ("argmax=" in finding.remedy) == (status == CUT and op in ("argmin", "argmax"))


def healed_dead(model, x, loss) -> list[str]:
    """The parameters still dead once the hard ops the recorder saw are straight-through."""
    recorder = Recorder(lambda: "", {}, Modules(model))
    with recorder:
        model(x)
    recorder.remove()
    with Healer(recorder.plan, recorder.events):
        value = loss(model(x))
    named = list(model.named_parameters())
    grads = torch.autograd.grad(value, [p for _, p in named], allow_unused=True)
    return [n for (n, _), g in zip(named, grads, strict=True) if g is None or not g.ne(0).any()]


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[-1] == CUT])
def test_healing_the_hard_ops_revives_every_dead_parameter(name):
    factory, shape, loss, *_ = CASES[name]
    torch.manual_seed(0)
    model, x = factory(), torch.randn(shape)
    assert healed_dead(model, x, loss) == []


def test_a_comparison_with_a_parameter_is_reported_as_written_with_its_broadcast_size():
    torch.manual_seed(0)
    report = surrogate.audit(LIFNet(), torch.randn(3, 2, 4), loss=mse)
    [finding] = list(report)
    # x > p runs p.__lt__(x) (Python tries a subclass's reflected operator first); 3 steps of a
    # 2 x 8 membrane, not the threshold's one element.
    assert (finding.op, finding.numel, finding.calls) == ("gt", 3 * 2 * 8, 3)


@pytest.mark.parametrize(
    ("compare", "da", "db"),
    [
        (lambda a, b: (a > b).float(), 1.0, -1.0),
        (lambda a, b: (a >= b).float(), 1.0, -1.0),
        (lambda a, b: torch.gt(a, b).float(), 1.0, -1.0),
        (lambda a, b: (a < b).float(), -1.0, 1.0),
        (lambda a, b: a.le(b).float(), -1.0, 1.0),
        (lambda a, b: (b < a).float(), 1.0, -1.0),
        (lambda a, b: (a > nn.Parameter(b)).float(), 1.0, None),
    ],
)
def test_a_healed_comparison_steps_up_where_it_turns_true(compare, da, db):
    """Straight-through H(a − b) for a > b gives ∂a = +1, ∂b = −1; H(b − a) for a < b the
    opposite: the gradient points where the comparison turns true."""
    a = torch.tensor([0.3, -0.2, 1.5], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.1, 0.4, 1.0], dtype=torch.float64, requires_grad=True)
    recorder = Recorder(lambda: "", {}, Modules(nn.Module()))
    with recorder:
        compare(a, b)
    recorder.remove()
    with Healer(recorder.plan, recorder.events):
        y = compare(a, b)
    assert torch.equal(y, compare(a, b).detach())  # PyTorch's values
    ga, gb = torch.autograd.grad(y.sum(), (a, b), allow_unused=True)
    assert torch.equal(ga, torch.full((3,), da, dtype=torch.float64))
    if db is not None:
        assert torch.equal(gb, torch.full((3,), db, dtype=torch.float64))


class Causes(nn.Module):
    """One layer per cause of death the audit does not trace to a hard op."""

    def __init__(self):
        super().__init__()
        self.detached, self.cast, self.zeroed, self.masked = (nn.Linear(4, 4) for _ in range(4))
        self.unused, self.head = nn.Linear(4, 4), nn.Linear(4, 2)
        self.gain = nn.Parameter(torch.ones(4))

    def forward(self, x):
        h = self.detached(x).detach()
        h = h + self.cast(x).round().long()
        h = h + self.zeroed(x) * 0.0
        h = h + torch.where(self.masked(x) > 0, self.gain, 0.0)
        return self.head(h)


def test_every_dead_parameter_has_a_cause_even_when_no_hard_op_cut_it():
    torch.manual_seed(0)
    model, x = Causes(), torch.randn(5, 4)
    report = surrogate.audit(model, x, loss=mse)
    assert report.dead_parameters == truth(model, x)
    causes = {n.split(".")[0]: c for n, c in report.causes.items()}
    assert causes == {
        "detached": "unrecognised op: detach in (model)",
        "cast": "unrecognised op: long in (model)",
        "zeroed": "unrecognised op: gradient all zero (first read by linear)",
        "masked": "unrecognised op: gt in (model), used as a mask or an index",
        "unused": "not used in the forward",
    }
    assert set(report.causes) == set(report.dead_parameters)
    [rounding] = list(report)  # round cuts cast, but healing it does not revive it: long does
    assert (rounding.op, rounding.cuts, rounding.status) == ("round", (), "does not reach the loss")


def test_the_table_names_each_finding_its_dead_parameters_and_a_working_remedy():
    torch.manual_seed(0)
    text = str(surrogate.audit(VQ("scatter_"), torch.randn(7, 6), loss=mse))
    lines = text.splitlines()
    assert lines[0].split() == ["op", "module", "elements", "calls", "PyTorch", "gives", "dead",
                                "remedy"]  # fmt: skip
    assert lines[1].split() == ["argmin", "(model)", "35", "1", "cut", "2",
                                "surrogate.intercept(argmax=...)"]  # fmt: skip
    assert lines[2:] == ["dead parameters (2 of 5):",
                         "  cut by argmin in (model): enc.weight, enc.bias",
                         "remedy (the cut call sites only): with surrogate.intercept("
                         'argmax="softmax", only=surrogate.audit(model, x, loss=fn)):']  # fmt: skip
    torch.manual_seed(0)
    text = str(surrogate.audit(DetachTrick(), torch.randn(5, 4), loss=mse))
    assert text.splitlines()[1].endswith("  0  none: handled by the model")
    assert text.splitlines()[2] == "dead parameters (0 of 4): none"

"""surrogate.audit finds the hard ops of a plain-torch model, the module that called each, and the
parameters they cut off; python -m surrogate.audit prints that audit for a model it builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surrogate

ROOT = Path(__file__).resolve().parents[2]


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 8)
        self.norm = nn.BatchNorm1d(8)

    def forward(self, x):
        return torch.sign(self.norm(self.lin(x)))


class Quantizer(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 12)

    def forward(self, h):
        logits = self.lin(h).unflatten(1, (3, 4))
        return F.one_hot(logits.argmax(-1), 4).float().flatten(1)


class Net(nn.Module):
    """encoder (sign) -> quantizer (argmax) -> head; a skip path through round at the top; an
    unused layer; ``heaviside=True`` adds a step whose backward raises."""

    def __init__(self, heaviside=False):
        super().__init__()
        self.encoder, self.quantizer = Encoder(), Quantizer()
        self.skip = nn.Linear(6, 3)
        self.head = nn.Linear(12, 3)
        self.unused = nn.Linear(2, 2)
        self.heaviside = heaviside

    def forward(self, x):
        y = self.head(self.quantizer(self.encoder(x))) + torch.round(self.skip(x))
        if self.heaviside:
            y = y + torch.heaviside(y, torch.zeros(()))
        return y


def found(report):
    return [(f.op, f.module, f.pytorch) for f in report]


def test_finds_each_hard_op_in_its_module_and_the_dead_parameters():
    torch.manual_seed(0)
    report = surrogate.audit(Net(), torch.randn(5, 6))
    assert found(report) == [("sign", "encoder", "zero"), ("argmax", "quantizer", "cut"),
                             ("round", "", "zero")]  # fmt: skip
    assert [(f.numel, f.calls) for f in report] == [(40, 1), (60, 1), (15, 1)]
    assert report.dead_parameters == [
        "encoder.lin.weight", "encoder.lin.bias", "encoder.norm.weight", "encoder.norm.bias",
        "quantizer.lin.weight", "quantizer.lin.bias", "skip.weight", "skip.bias",
        "unused.weight", "unused.bias",
    ]  # fmt: skip
    assert [f.cuts for f in report] == [
        ("encoder.lin.weight", "encoder.lin.bias", "encoder.norm.weight", "encoder.norm.bias"),
        ("quantizer.lin.weight", "quantizer.lin.bias"), ("skip.weight", "skip.bias"),
    ]  # fmt: skip
    assert report.causes["unused.weight"] == "not used in the forward"
    assert report.causes["skip.bias"] == "cut by round in (model)"
    assert report.error is None


def test_a_backward_that_raises_is_reported_not_raised():
    torch.manual_seed(0)
    report = surrogate.audit(Net(heaviside=True), torch.randn(5, 6))
    assert ("heaviside", "", "error") in found(report)
    assert "heaviside" in report.error and "not implemented" in report.error
    assert "head.weight" in report.dead_parameters  # the error stops every gradient
    assert report.causes["head.weight"] == "cut by heaviside in (model), whose backward raised"
    assert report.causes["unused.weight"] == "not used in the forward"
    assert "backward raised" in str(report) and "heaviside" in str(report)


def test_table_has_a_row_per_finding_and_the_dead_parameters():
    torch.manual_seed(0)
    text = str(surrogate.audit(Net(), torch.randn(5, 6)))
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["op", "module"]
    assert lines[1].split()[:5] == ["sign", "encoder", "40", "1", "zero"]
    assert lines[2].split()[:5] == ["argmax", "quantizer", "60", "1", "cut"]
    assert lines[3].split()[:5] == ["round", "(model)", "15", "1", "zero"]
    assert lines[4] == "dead parameters (10 of 12):"
    assert lines[5].startswith("  cut by sign in encoder: encoder.lin.weight, encoder.lin.bias")
    assert lines[8] == "  not used in the forward: unused.weight, unused.bias"


def test_repeated_calls_add_up_and_library_ops_are_not_findings():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.Linear(4, 4)
            self.out = surrogate.Sign("atan")

        def forward(self, x):
            for _ in range(3):
                x = torch.sign(self.cell(x))
            return self.out(x)

    report = surrogate.audit(Loop(), torch.randn(2, 4))
    assert [(f.op, f.module, f.numel, f.calls) for f in report] == [("sign", "", 24, 3)]
    clean = nn.Sequential(nn.Linear(4, 4), surrogate.Sign("atan"), nn.Linear(4, 6),
                          nn.Unflatten(1, (2, 3)), surrogate.ArgMax("softmax"))  # fmt: skip
    report = surrogate.audit(clean, torch.randn(2, 4))
    assert list(report) == [] and report.dead_parameters == []
    assert str(report).startswith("no hard ops")


def test_comparisons_count_when_cast_to_float_not_as_masks():
    class Masks(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            h = self.a(x)
            h = torch.where(h > 0, h, 0.1 * h)  # a mask: the gradient flows through where
            return (self.b(h) > 0).float().view(2, 2, 2)  # a hard step

    report = surrogate.audit(Masks(), torch.randn(2, 4))
    assert found(report) == [("gt", "", "cut")]
    assert report.dead_parameters == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_where_picking_constants_is_a_hard_step():
    class Steps(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            h = torch.where(self.a(x) > 0, 1.0, -1.0)  # a hard sign
            return self.b(h) + x.le(0).float()  # x carries no gradient: not a finding

    report = surrogate.audit(Steps(), torch.randn(2, 4))
    assert found(report) == [("gt", "", "cut")]
    assert report.dead_parameters == ["a.weight", "a.bias"]


def test_floor_and_method_forms_and_a_custom_loss():
    class Methods(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return {"q": self.b(self.a(x).floor()), "s": self.a(x).sign()}

    report = surrogate.audit(Methods(), torch.randn(3, 4), loss=lambda out: out["q"].sum())
    assert found(report) == [("floor", "", "zero"), ("sign", "", "zero")]
    assert report.dead_parameters == ["a.weight", "a.bias"]


def test_leaves_buffers_rng_grads_and_mode_as_they_were():
    torch.manual_seed(0)
    net = Net()
    net.head.weight.grad = torch.ones_like(net.head.weight)
    buffers = [b.clone() for b in net.buffers()]
    x = torch.randn(5, 6)
    rng = torch.get_rng_state()
    surrogate.audit(net, x)
    assert all(torch.equal(a, b) for a, b in zip(buffers, net.buffers(), strict=True))
    assert torch.equal(rng, torch.get_rng_state())
    assert torch.equal(net.head.weight.grad, torch.ones_like(net.head.weight))
    assert net.encoder.lin.weight.grad is None and net.training


def test_dropout_sees_the_same_masks_in_both_passes():
    net = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5), nn.Linear(8, 8))
    report = surrogate.audit(net, torch.randn(4, 8))
    assert list(report) == [] and report.dead_parameters == []


def test_not_a_module_is_a_type_error():
    with pytest.raises(TypeError, match="nn.Module"):
        surrogate.audit(torch.sign, torch.randn(3))


def audit_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "surrogate.audit", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_cli_prints_the_audit_of_the_model_it_builds():
    result = audit_cli("tests.tools.test_audit:Net", "--input", "5,6")
    assert result.returncode == 0, result.stderr
    torch.manual_seed(0)  # the CLI's default seed, for the model and then the input
    net = Net()
    assert result.stdout.strip() == str(surrogate.audit(net, torch.randn(5, 6)))
    assert "dead parameters" in result.stdout and "sign" in result.stdout


def test_cli_fails_on_dead_parameters_when_asked():
    result = audit_cli("tests.tools.test_audit:Net", "--input", "5,6", "--fail-on-dead")
    assert result.returncode == 1 and "dead parameters" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["tests.tools.test_audit", "--input", "5,6"], ["MODULE:FACTORY"]),
        (["tests.tools.test_audit:Nope", "--input", "5,6"], ["'tests.tools.test_audit:Nope'"]),
        (["no_such_module:Net", "--input", "5,6"], ["no_such_module"]),
        (["tests.tools.test_audit:Net", "--input", "5,x"], ["'5,x'", "8,1,28,28"]),
        (["tests.tools.test_audit:Net"], ["--input"]),
    ],
)
def test_cli_refuses_bad_arguments_naming_them(args, words):
    result = audit_cli(*args)
    assert result.returncode == 2 and result.stdout == ""
    for word in words:
        assert word in result.stderr, result.stderr


def test_an_in_place_sign_is_listed_under_sign():
    class InPlace(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.head = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)

        def forward(self, x):
            h = self.linear(x)
            h.sign_()
            return self.head(h)

    report = surrogate.audit(InPlace(), torch.randn(4, 3))
    assert [f.op for f in report] == ["sign"]
    assert sorted(report.dead_parameters) == ["linear.bias", "linear.weight"]

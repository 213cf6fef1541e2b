"""surrogate.audit names the library's own hard-op modules (Sign, Step, Round, ArgMax, also inside
BinaryConv2d and Quantize) whose estimator is ``none`` as the cause of the parameters they leave
dead, with another estimator (``surrogate.swap``) as the remedy, not intercept; modules whose
estimator passes a gradient change nothing."""

from __future__ import annotations

import torch
from torch import nn

import surrogate
from surrogate.training.models.bnn import BinaryCNN
from surrogate.training.models.cnn import HardCNN


def zero_by(kind: str, module: str) -> str:
    return f"zero gradient by surrogate.{kind} at {module} (estimator 'none')"


def images() -> torch.Tensor:
    return torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def binary_cnn() -> BinaryCNN:
    torch.manual_seed(0)
    return BinaryCNN((1, 8, 8))


def hard_cnn() -> HardCNN:
    torch.manual_seed(0)
    return HardCNN((1, 8, 8))


def test_binary_cnn_with_none_names_each_sign_module_and_its_estimator():
    net = binary_cnn()
    surrogate.swap(net, sign="none")
    report = surrogate.audit(net, images())
    assert report.causes == {
        "features.0.weight": zero_by("Sign", "features.3"),
        "features.2.weight": zero_by("Sign", "features.3"),
        "features.2.bias": zero_by("Sign", "features.3"),
        "features.4.weight": zero_by("Sign", "features.4.binarize"),
        "features.6.weight": zero_by("Sign", "features.7"),
        "features.6.bias": zero_by("Sign", "features.7"),
        "features.8.weight": zero_by("Sign", "features.8.binarize"),
        "features.10.weight": zero_by("Sign", "features.11"),
        "features.10.bias": zero_by("Sign", "features.11"),
    }
    assert list(report) == [] and report.remedy is None
    assert report.swap_remedy == 'surrogate.swap(model, sign="ste")'
    text = str(report)
    assert text.splitlines()[0] == "no torch hard ops on the gradient path"
    assert "unrecognised" not in text and "intercept(" not in text
    assert text.splitlines()[-1] == (
        "remedy (surrogate's modules with estimator 'none', not intercept): "
        'surrogate.swap(model, sign="ste")'
    )
    # the audit gave them ste for its second pass only
    assert {m.estimator.name for m in net.modules() if isinstance(m, surrogate.Sign)} == {"none"}


def test_hard_cnn_with_none_names_the_first_module_downstream():
    net = hard_cnn()
    surrogate.swap(net, step="none", sign="none")
    report = surrogate.audit(net, images())
    assert report.causes == {
        "features.0.weight": zero_by("Sign", "features.3"),
        "features.2.weight": zero_by("Sign", "features.3"),
        "features.2.bias": zero_by("Sign", "features.3"),
        "features.4.weight": zero_by("Step", "features.7"),
        "features.6.weight": zero_by("Step", "features.7"),
        "features.6.bias": zero_by("Step", "features.7"),
    }
    assert report.zeroed == {"features.3": "sign", "features.7": "step"}
    assert report.swap_remedy == 'surrogate.swap(model, sign="ste", step="ste")'


def test_quantize_with_none_names_the_round_of_each_quantizer():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 4), surrogate.QuantLinear(4, 3, estimator="none"), nn.Linear(3, 2)
    )
    x = torch.randn(6, 5)
    report = surrogate.audit(net, x)  # on a fresh network: the steps come from the data
    assert net[1].weight_quantizer.needs_init  # as it was: the next forward initializes
    assert report.causes == {
        "0.weight": zero_by("Round", "1.input_quantizer.round"),
        "0.bias": zero_by("Round", "1.input_quantizer.round"),
        "1.weight": zero_by("Round", "1.weight_quantizer.round"),
    }
    assert report.swap_remedy == 'surrogate.swap(model, round="ste")'


def test_mixed_estimators_label_only_what_the_none_module_cuts():
    torch.manual_seed(0)
    net = nn.Sequential(
        surrogate.Sign("none"),  # on the data: it cuts no parameter
        nn.Linear(4, 4), surrogate.Sign("none"), nn.Linear(4, 4), surrogate.Sign("ste"),
        nn.Linear(4, 4), surrogate.Sign("atan"), nn.Linear(4, 4), surrogate.Sign("none"),
        nn.Linear(4, 2),
    )  # fmt: skip
    report = surrogate.audit(net, torch.randn(3, 4))
    assert report.causes == {
        "1.weight": zero_by("Sign", "2"),
        "1.bias": zero_by("Sign", "2"),
        **{f"{i}.{p}": zero_by("Sign", "8") for i in (3, 5, 7) for p in ("weight", "bias")},
    }
    assert report.zeroed == {"2": "sign", "8": "sign"}


def test_a_parameter_another_estimator_would_not_revive_keeps_its_label():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.c, self.sign = nn.Linear(4, 4), nn.Linear(4, 2), surrogate.Sign("none")

        def forward(self, x):
            return self.c(self.sign(self.a(x) * 0.0))

    report = surrogate.audit(Net(), torch.randn(3, 4))
    zeros = "unrecognised op: gradient all zero (first read by linear)"
    assert report.causes == {"a.weight": zeros, "a.bias": zeros}
    assert report.zeroed == {} and report.swap_remedy is None


def test_a_torch_hard_op_before_a_none_module_keeps_its_own_label():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)
            self.sign = surrogate.Sign("none")

        def forward(self, x):
            return self.c(self.sign(self.b(torch.sign(self.a(x)))))

    torch.manual_seed(0)
    report = surrogate.audit(Net(), torch.randn(3, 4))
    assert report.causes == {
        "a.weight": "cut by sign in (model)",
        "a.bias": "cut by sign in (model)",
        "b.weight": zero_by("Sign", "sign"),
        "b.bias": zero_by("Sign", "sign"),
    }
    assert [(f.op, f.status, f.cuts) for f in report] == [("sign", "cut", ("a.weight", "a.bias"))]
    assert report.remedy is not None and report.swap_remedy is not None


def test_working_estimators_leave_no_dead_parameters():
    torch.manual_seed(0)
    models = [
        binary_cnn(),
        hard_cnn(),
        nn.Sequential(nn.Linear(5, 4), surrogate.QuantLinear(4, 3), nn.Linear(3, 2)),
        nn.Sequential(
            nn.Linear(4, 4),
            surrogate.Sign("ste"),
            nn.Linear(4, 4),
            surrogate.Sign("atan"),
            nn.Linear(4, 2),
        ),
    ]
    inputs = [images(), images(), torch.randn(6, 5), torch.randn(3, 4)]
    for net, x in zip(models, inputs, strict=True):
        net(x)  # QuantLinear's steps from the data
        report = surrogate.audit(net, x)
        assert report.dead_parameters == [] and report.zeroed == {}, type(net).__name__
        assert str(report).startswith("no hard ops on the gradient path")
        assert report.swap_remedy is None

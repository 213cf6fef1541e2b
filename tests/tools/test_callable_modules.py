"""``surrogate.audit``, ``surrogate.intercept`` and ``surrogate.swap`` are modules, not functions
bound over them: their submodules import and ``python -m surrogate.audit`` runs, while each is
still called as the function of its name, with that function's signature."""

from __future__ import annotations

import inspect
import pickle
import pydoc
import subprocess
import sys

import pytest
import torch
from torch import nn

import surrogate
from surrogate.callable_module import CallableModule, make_callable

NAMES = ("audit", "intercept", "swap")


def run(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter, where nothing has imported the submodules yet."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_the_attribute_is_the_module(name):
    module = getattr(surrogate, name)
    assert module is sys.modules[f"surrogate.{name}"]
    assert isinstance(module, CallableModule)


def test_submodules_import_as_names_in_a_fresh_interpreter():
    result = run(
        "import surrogate, sys\n"
        "import surrogate.audit.cli as cli\n"
        "import surrogate.intercept.mode as mode\n"
        "import surrogate.intercept.index as index\n"
        "import surrogate.swap as swap\n"
        "assert cli.main and mode.Intercept is surrogate.intercept.Intercept and index.Picked\n"
        "assert swap is sys.modules['surrogate.swap'] is surrogate.swap\n"
        "from surrogate.intercept import Intercept\n"
        "print(Intercept.__module__)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "surrogate.intercept.mode"


def test_python_m_surrogate_audit_runs():
    result = subprocess.run([sys.executable, "-m", "surrogate.audit", "--help"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m surrogate.audit")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.act = surrogate.Sign()

    def forward(self, x):
        return self.act(self.fc(x)).sign()


def test_each_module_is_called_as_its_function():
    torch.manual_seed(0)
    net, x = Net(), torch.randn(5, 4)
    assert str(surrogate.audit(net, x)) == str(surrogate.audit.audit(net, x))
    mode = surrogate.intercept(sign="atan")
    assert isinstance(mode, surrogate.intercept.Intercept)
    assert repr(mode) == "intercept(sign=estimator('atan', alpha=2.0))"
    with mode:
        net(x).sum().backward()
    assert net.fc.weight.grad is not None and net.fc.weight.grad.ne(0).any()
    assert surrogate.swap(net, sign="tanh") == 1
    assert surrogate.swap.swap(net, sign="tanh") == 0
    assert net.act.estimator == surrogate.estimator("tanh")


def test_a_model_pickles_after_swap():
    net = Net()
    surrogate.swap(net, sign=("sigmoid", True))
    back = pickle.loads(pickle.dumps(net))
    assert back.act.estimator == surrogate.estimator("sigmoid") and back.act.relaxed
    x = torch.randn(5, 4)
    assert torch.equal(back(x), net(x))


@pytest.mark.parametrize("name", NAMES)
def test_signature_and_help_are_the_functions(name):
    module = getattr(surrogate, name)
    function = vars(module)[name]
    assert inspect.signature(module) == inspect.signature(function)
    text = pydoc.render_doc(module, renderer=pydoc.plaintext)
    assert f"{name}{inspect.signature(function)}" in text
    assert inspect.getdoc(function).splitlines()[0] in text


def test_a_module_without_its_namesake_function_is_refused(monkeypatch):
    module = type(sys)("surrogate.nothing_here")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(TypeError, match="defines no function 'nothing_here'"):
        make_callable(module.__name__)

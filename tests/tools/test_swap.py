"""surrogate.swap: sets the estimator of every surrogate module in a model, and says how many."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import surrogate


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.act = surrogate.Sign("ste")

    def forward(self, x):
        return self.act(self.lin(x))


def model(sign="ste", step="ste", argmax="ste"):
    """Two Sign modules in nested blocks, a Step, a Round used twice (counted once), an ArgMax."""
    torch.manual_seed(0)
    shared = surrogate.Round("ste")
    net = nn.Sequential(
        Block(), Block(), nn.Linear(6, 6), surrogate.Step(step), shared, nn.Linear(6, 6),
        shared, nn.Unflatten(1, (2, 3)), surrogate.ArgMax(argmax), nn.Flatten(),
    )  # fmt: skip
    net[0].act.estimator = sign
    net[1].act.estimator = sign
    return net


def grads(net, x):
    net.zero_grad()
    net(x).backward(torch.linspace(-1, 1, x.numel()).reshape(x.shape))
    return [p.grad.clone() for p in net.parameters()]


def test_swap_sets_the_named_ops_and_counts_the_modules_it_changed():
    net = model()
    assert surrogate.swap(net, sign="atan", argmax="softmax") == 3
    signs = [m for m in net.modules() if isinstance(m, surrogate.Sign)]
    assert [m.estimator for m in signs] == [surrogate.estimator("atan")] * 2
    assert net[8].estimator == surrogate.estimator("softmax")
    assert net[3].estimator == net[4].estimator == surrogate.estimator("ste")  # not named
    assert surrogate.swap(net, sign="atan", argmax="softmax") == 0  # already so
    assert surrogate.swap(net, round=surrogate.estimator("sigmoid", beta=8.0)) == 1  # shared once


def test_swapped_model_has_the_gradients_of_one_built_with_those_estimators():
    x = torch.randn(5, 6)
    net = model()
    surrogate.swap(net, sign="atan", step="sigmoid", argmax="sparsemax")
    built = model(sign="atan", step="sigmoid", argmax="sparsemax")
    for a, b in zip(grads(net, x), grads(built, x), strict=True):
        assert torch.equal(a, b)
    before = grads(model(), x)
    assert not torch.equal(before[0], grads(net, x)[0])


def test_pairs_set_relaxed_both_ways():
    net = model()
    assert surrogate.swap(net, sign=("sigmoid", True), argmax=("softmax", True)) == 3
    assert net[0].act.relaxed and net[8].relaxed
    assert surrogate.swap(net, sign="ste", argmax="ste") == 3  # a bare name: hard again
    assert not net[0].act.relaxed and net[0].act.estimator == surrogate.estimator("ste")
    assert surrogate.swap(net, sign={"name": "tanh", "beta": 4.0, "relaxed": True}) == 2
    assert net[1].act.relaxed and net[1].act.estimator == surrogate.estimator("tanh", beta=4.0)


def test_a_callable_bump_is_accepted_for_scalar_ops():
    def bump(r):
        return torch.exp(-r.abs())

    net = model()
    assert surrogate.swap(net, step=bump) == 1
    assert net[3].estimator == surrogate.estimator(bump)


def test_a_model_without_surrogate_modules_changes_nothing():
    assert surrogate.swap(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), sign="atan") == 0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"sigm": "ste"}, ["'sigm'", "step, sign, round, argmax"]),
        ({"sign": "atan", "argmax": "atan"}, ["atan", "argmax", "softmax"]),
        ({"sign": "foo"}, ["'foo'", "sign", "clipped_ste"]),
        ({"round": ("ste", True)}, ["relaxed", "ste", "sigmoid"]),
    ],
)
def test_bad_input_raises_before_any_module_changes(kwargs, words):
    net = model()
    before = [m.estimator for m in net.modules() if isinstance(m, surrogate.HardOp)]
    with pytest.raises(ValueError) as info:
        surrogate.swap(net, **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert before == [m.estimator for m in net.modules() if isinstance(m, surrogate.HardOp)]


def test_not_a_module_is_a_type_error():
    with pytest.raises(TypeError, match="nn.Module"):
        surrogate.swap([surrogate.Sign()], sign="atan")

"""The two twin networks: the same shapes and initialization, and under ``surrogate.intercept`` the
plain-PyTorch twin gets exactly the gradients of the one built from surrogate's modules."""

from __future__ import annotations

import pytest
import torch

import surrogate
from surrogate.training.models.cnn import HardCNN, PlainCNN, build_net


def grads(model, x):
    model.zero_grad()
    out = model(x)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def test_plain_cnn_under_intercept_matches_the_library_cnn():
    estimators = {"step": "sigmoid", "sign": "atan", "round": "ste", "argmax": "softmax"}
    torch.manual_seed(0)
    plain = PlainCNN(image_size=8, activations=("sign", "step"))
    torch.manual_seed(0)
    pairs = {op: (surrogate.estimator(name), False) for op, name in estimators.items()}
    library = HardCNN(pairs, image_size=8, activations=("sign", "step"))
    layers = [plain.convs[0], plain.norms[0], plain.convs[1], plain.norms[1], plain.to_logits]
    in_order = [p for layer in [*layers, plain.head] for p in layer.parameters()]
    for p, q in zip(in_order, library.parameters(), strict=True):
        assert torch.equal(p, q)  # same shapes and initialization
    x = torch.randn(8, 1, 8, 8)
    with surrogate.intercept(**estimators):
        out, _ = grads(plain, x)
    got = [p.grad for p in in_order]
    want_out, want = grads(library, x)
    assert torch.equal(out, want_out)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    assert got[0].abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"channels": [16], "activations": ["sign", "step"]}, ["[16]", "same length"]),
        ({"activations": ["sign", "tanh"]}, ["'tanh'", "relu"]),
        ({"bottleneck": "softmax"}, ["'softmax'", "argmax"]),
        ({"name": "resnet"}, ["'resnet'", "cnn, plain_cnn"]),
    ],
)
def test_bad_layout_is_refused_by_both_twins(kwargs, words):
    pairs = {op: (surrogate.estimator("ste"), False) for op in ("step", "sign", "round", "argmax")}
    for name in ("cnn", "plain_cnn"):
        with pytest.raises(ValueError) as info:
            build_net(pairs, **{"name": name, **kwargs})
        for word in words:
            assert word in str(info.value), str(info.value)

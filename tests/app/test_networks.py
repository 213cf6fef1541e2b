"""The two twin networks: the same shapes and initialization, and under ``surrogate.intercept`` the
plain-PyTorch twin gets exactly the gradients of the one built from surrogate's modules."""

from __future__ import annotations

import pytest
import torch

import surrogate
from surrogate.training.data import DataShape
from surrogate.training.models import build_model
from surrogate.training.models.cnn import HardCNN
from surrogate.training.models.plain_cnn import PlainCNN


def grads(model, x):
    model.zero_grad()
    out = model(x)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def test_plain_cnn_under_intercept_matches_the_library_cnn():
    estimators = {"step": "sigmoid", "sign": "atan", "round": "ste", "argmax": "softmax"}
    torch.manual_seed(0)
    plain = PlainCNN((1, 8, 8), activations=("sign", "step"))
    torch.manual_seed(0)
    library = HardCNN((1, 8, 8), activations=("sign", "step"))
    assert surrogate.swap(library, **estimators) == 3
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


CNN = {
    "apply_estimators": "swap",
    "channels": [16, 32],
    "activations": ["sign", "step"],
    "pooled_size": None,
    "bottleneck": "argmax",
    "groups": 4,
    "categories": 8,
    "optimizer": {"name": "adam", "lr": 0.01, "weight_decay": 0.0, "momentum": 0.9},
    "scheduler": {"name": "none"},
}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"channels": [16], "activations": ["sign", "step"]}, ["[16]", "same length"]),
        ({"activations": ["sign", "tanh"]}, ["'tanh'", "relu"]),
        ({"bottleneck": "softmax"}, ["'softmax'", "argmax"]),
        ({"chanels": [4]}, ["chanels"]),
        ({"groups": "four"}, ["'four'", "groups"]),
    ],
)
def test_bad_layout_is_refused_by_both_twins(kwargs, words):
    for name in ("cnn", "plain_cnn"):
        with pytest.raises(ValueError) as info:
            build_model({**CNN, "name": name, **kwargs}, DataShape((1, 8, 8), 10))
        for word in words:
            assert word in str(info.value), str(info.value)


def test_an_unknown_model_names_the_registered_ones():
    message = (
        r"model.name: unknown 'resnet'; choose one of: bnn, cat_vae, cnn, csnn, custom, "
        r"plain_cnn, qcnn, rsnn"
    )
    with pytest.raises(ValueError, match=message):
        build_model({**CNN, "name": "resnet"}, DataShape((1, 8, 8), 10))


@pytest.mark.parametrize("name", ["cnn", "plain_cnn"])
def test_images_of_any_size_and_channel_count(name):
    """A 3 x 12 x 20 image: the map halves per block, rounding up (6 x 10, then 3 x 5)."""
    net = build_model({**CNN, "name": name}, DataShape((3, 12, 20), 5))
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    linear = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    assert first.in_channels == 3
    assert linear.in_features == 32 * 3 * 5
    assert net(torch.randn(2, 3, 12, 20)).shape == (2, 5)


def test_the_cnn_refuses_sequences():
    with pytest.raises(ValueError, match=r"takes images .*inputs are 50x4"):
        build_model({**CNN, "name": "cnn"}, DataShape((50, 4), 3))

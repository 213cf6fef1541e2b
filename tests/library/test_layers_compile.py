"""The binary and quantized layers and the spiking neurons under
``torch.compile(fullgraph=True)``: no graph break, the eager forward bit for bit, the eager
gradients (the input's and the parameters') up to the order of a sum."""

from __future__ import annotations

import pytest
import torch

import surrogate


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: surrogate.BinaryLinear(8, 4), (3, 8)),
        (lambda: surrogate.QuantLinear(8, 4, bits=3, learn_step=True), (3, 8)),
        (lambda: surrogate.LIF(0.8, estimator="atan"), (6, 3, 8)),
        (lambda: surrogate.LIF(learn_beta=True, learn_threshold=True), (6, 3, 8)),
        (lambda: surrogate.RecurrentLIF(8, reset="zero"), (6, 3, 8)),
        (lambda: surrogate.ALIF(features=8, estimator="sigmoid"), (6, 3, 8)),
    ],
    ids=["binary", "quant", "lif", "plif", "recurrent_lif", "alif"],
)
@pytest.mark.slow
def test_compiled_layers_match_eager(make, shape):
    torch.manual_seed(0)
    layer = make()
    x = (torch.randn(*shape) + 0.5).requires_grad_()
    layer(x)  # a quantizer's step comes from the first batch, eagerly
    compiled = torch.compile(layer, fullgraph=True)
    out = compiled(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in (x, *layer.parameters())]
    layer.zero_grad()
    x.grad = None
    eager = layer(x)
    eager.square().sum().backward()
    assert torch.equal(out, eager)
    for got, p in zip(grads, (x, *layer.parameters()), strict=True):
        torch.testing.assert_close(got, p.grad, rtol=1e-5, atol=1e-6)


def test_a_step_still_to_initialize_is_refused_under_compile():
    with pytest.raises(Exception, match="run one forward before torch.compile"):
        torch.compile(surrogate.Quantize(4, step=None), fullgraph=True)(torch.randn(5))

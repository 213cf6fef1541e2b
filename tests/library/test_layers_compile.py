"""The binary and quantized layers under ``torch.compile(fullgraph=True)``: no graph break, the
eager forward bit for bit, the eager gradients up to the order of a sum."""

from __future__ import annotations

import pytest
import torch

import surrogate


@pytest.mark.parametrize(
    "make",
    [
        lambda: surrogate.BinaryLinear(8, 4),
        lambda: surrogate.QuantLinear(8, 4, bits=3, learn_step=True),
    ],
    ids=["binary", "quant"],
)
@pytest.mark.slow
def test_compiled_layers_match_eager(make):
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(3, 8)
    layer(x)  # a quantizer's step comes from the first batch, eagerly
    compiled = torch.compile(layer, fullgraph=True)
    out = compiled(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    eager = layer(x)
    eager.square().sum().backward()
    assert torch.equal(out, eager)
    for got, p in zip(grads, layer.parameters(), strict=True):
        torch.testing.assert_close(got, p.grad, rtol=1e-5, atol=1e-6)


def test_a_step_still_to_initialize_is_refused_under_compile():
    with pytest.raises(Exception, match="run one forward before torch.compile"):
        torch.compile(surrogate.Quantize(4, step=None), fullgraph=True)(torch.randn(5))

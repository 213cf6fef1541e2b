"""``model=qcnn``: a low-bit CNN, weights and activations quantized to ``bits`` (``QuantCNN``).

    image -> [conv3x3 -> maxpool2 -> BN -> relu] x len(channels) -> flatten -> linear -> classes

Every conv block but the first is a ``surrogate.QuantConv2d``: its input (the previous block's
relu, so unsigned levels 0 … 2^b − 1) and its weight (signed, −2^(b−1) … 2^(b−1) − 1) pass through
``surrogate.Quantize``, whose round takes the op config's ``round`` estimator; ``learn_step``
learns each quantizer's step as LSQ (Esser et al. 2020, arXiv:1902.08153), else the step stays at
LSQ's initialization from the first batch, 2·mean|x|/√Qp. The first convolution (on the image)
and the classifier stay full precision, as in LSQ's and most low-bit networks' practice;
``quantize_first`` and ``quantize_last`` quantize them too. ``float_twin`` (``op=float``) builds
the same network with no quantizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from surrogate import QuantConv2d, QuantLinear
from surrogate.training.models import ModelConfig, register_model
from surrogate.training.models.cnn import feature_count, image_shape
from surrogate.training.ranges import Range


@dataclass
class QCNNConfig(ModelConfig):
    """The keys of ``configs/model/qcnn.yaml``."""

    channels: list[int] = field(default=MISSING, metadata={"range": Range(1, integer=True)})
    bits: int = field(default=MISSING, metadata={"range": Range(1, 16, integer=True)})  # Quantize's
    learn_step: bool = MISSING
    quantize_first: bool = MISSING
    quantize_last: bool = MISSING
    float_twin: bool = False


class QuantCNN(nn.Module):
    """The low-bit CNN; see the module docstring."""

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64, 128),
        bits: int = 4,
        learn_step: bool = True,
        quantize_first: bool = False,
        quantize_last: bool = False,
        float_twin: bool = False,
    ):
        super().__init__()
        width = image_shape(input_shape)[0]
        blocks: list[nn.Module] = []
        for i, out in enumerate(channels):
            if not float_twin and (i > 0 or quantize_first):
                signed = i == 0  # the image is standardized; a relu's output is not negative
                conv: nn.Module = QuantConv2d(
                    width, out, 3, padding=1, bias=False, bits=bits, input_signed=signed,
                    learn_step=learn_step,
                )  # fmt: skip
            else:
                conv = nn.Conv2d(width, out, 3, padding=1, bias=False)
            blocks += [conv, nn.MaxPool2d(2, ceil_mode=True), nn.BatchNorm2d(out), nn.ReLU()]
            width = out
        self.features = nn.Sequential(*blocks, nn.Flatten())
        features = feature_count(channels, input_shape, None)
        self.head = (
            QuantLinear(features, num_classes, bits=bits, learn_step=learn_step)
            if quantize_last and not float_twin
            else nn.Linear(features, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("qcnn", QCNNConfig)
def build_qcnn(config: QCNNConfig, shape) -> QuantCNN:
    return QuantCNN(
        shape.input_shape, shape.num_classes, config.channels, config.bits, config.learn_step,
        config.quantize_first, config.quantize_last, config.float_twin,
    )  # fmt: skip

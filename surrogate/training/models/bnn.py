"""``model=bnn``: a binarized CNN, binary weights and binary activations (``BinaryCNN``).

    image -> [conv3x3 -> maxpool2 -> BN -> sign] x len(channels) -> flatten -> linear -> classes

Every conv block but the first convolves the previous block's ±1 map with binary weights
(``surrogate.BinaryConv2d``: sign of real latent weights through the op config's ``sign``
estimator) and binarizes its output by a ``surrogate.Sign``: binary weights and activations, as
BinaryNet (Hubara et al. 2016, arXiv:1602.02830). The first convolution (on the image) and the
classifier keep full-precision weights, as in XNOR-Net and Bi-Real Net; ``binary_first`` and
``binary_last`` binarize them too. ``scale`` multiplies each binary weight tensor by its mean
|w| per output channel (XNOR-Net). ``latent_clip`` keeps the latent weights in
[−latent_clip, latent_clip] after every optimizer step (BinaryConnect; null: no clip), and
``model.optimizer.name=bop`` trains the binary weights with ``surrogate.Bop`` and the rest with
Adam. ``float_twin`` (``op=float``) builds the same network with float weights and relu.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from surrogate import BinaryConv2d, BinaryLinear, Sign
from surrogate.training.models import ModelConfig, register_model
from surrogate.training.models.cnn import feature_count, image_shape
from surrogate.training.ranges import Range


@dataclass
class BNNConfig(ModelConfig):
    """The keys of ``configs/model/bnn.yaml``."""

    channels: list[int] = field(default=MISSING, metadata={"range": Range(1, integer=True)})
    binary_first: bool = MISSING
    binary_last: bool = MISSING
    scale: bool = MISSING
    latent_clip: float | None = field(
        default=MISSING, metadata={"range": Range(0, low_open=True, nullable=True)}
    )
    float_twin: bool = False


class BinaryCNN(nn.Module):
    """The binarized CNN; see the module docstring."""

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64, 128),
        binary_first: bool = False,
        binary_last: bool = False,
        scale: bool = False,
        float_twin: bool = False,
    ):
        super().__init__()
        width = image_shape(input_shape)[0]
        blocks: list[nn.Module] = []
        for i, out in enumerate(channels):
            binary = not float_twin and (i > 0 or binary_first)
            conv = (
                BinaryConv2d(width, out, 3, padding=1, bias=False, scale=scale)
                if binary
                else nn.Conv2d(width, out, 3, padding=1, bias=False)
            )
            activation = nn.ReLU() if float_twin else Sign("clipped_ste")
            blocks += [conv, nn.MaxPool2d(2, ceil_mode=True), nn.BatchNorm2d(out), activation]
            width = out
        self.features = nn.Sequential(*blocks, nn.Flatten())
        features = feature_count(channels, input_shape, None)
        self.head = (
            BinaryLinear(features, num_classes, scale=scale)
            if binary_last and not float_twin
            else nn.Linear(features, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("bnn", BNNConfig)
def build_bnn(config: BNNConfig, shape) -> BinaryCNN:
    return BinaryCNN(
        shape.input_shape, shape.num_classes, config.channels, config.binary_first,
        config.binary_last, config.scale, config.float_twin,
    )  # fmt: skip

"""``model=plain_cnn``: the CNN of ``model=cnn`` written in plain PyTorch as found in the wild
(``torch.sign``, ``torch.heaviside``, ``torch.round``, ``F.one_hot(logits.argmax(-1))``), with no
surrogate code: the same shape, parameters and initialization. Left alone only its head learns;
``surrogate.intercept`` gives its hard ops the op config's estimators without touching it
(``model.apply_estimators: intercept``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from surrogate.training.models import register_model
from surrogate.training.models.cnn import (
    CNNConfig,
    check_layout,
    conv_blocks,
    feature_count,
    image_shape,
    network_args,
)

ACTIVATIONS = {
    "sign": torch.sign,
    "step": lambda x: torch.heaviside(x, torch.zeros((), dtype=x.dtype, device=x.device)),
    "round": torch.round,
    "relu": torch.relu,
}


class PlainCNN(nn.Module):
    """The plain-PyTorch twin; arguments as ``HardCNN``'s."""

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        activations: Sequence[str] = ("sign", "sign"),
        pooled_size: int | None = None,
        bottleneck: str | None = "argmax",
        groups: int = 32,
        categories: int = 8,
    ):
        super().__init__()
        check_layout(channels, activations, bottleneck)
        self.activations = list(activations)
        self.pooled_size, self.groups, self.categories = pooled_size, groups, categories
        convs, norms = conv_blocks(image_shape(input_shape)[0], channels)
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        features = feature_count(channels, input_shape, pooled_size)
        self.to_logits = None
        if bottleneck == "argmax":
            self.to_logits = nn.Linear(features, groups * categories)
            features = groups * categories
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm, act in zip(self.convs, self.norms, self.activations, strict=True):
            x = ACTIVATIONS[act](norm(F.max_pool2d(conv(x), 2, ceil_mode=True)))
        if self.pooled_size is not None:
            x = F.adaptive_avg_pool2d(x, self.pooled_size)
        x = x.flatten(1)
        if self.to_logits is not None:
            logits = self.to_logits(x).unflatten(1, (self.groups, self.categories))
            x = F.one_hot(logits.argmax(-1), self.categories).flatten(1).to(logits.dtype)
        return self.head(x)


@register_model("plain_cnn", CNNConfig)
def build_plain_cnn(config: CNNConfig, shape) -> PlainCNN:
    return PlainCNN(shape.input_shape, shape.num_classes, **network_args(config))

"""``model=cnn``: the hard-op CNN, built from surrogate's modules (``HardCNN``).

    image -> [conv3x3 -> maxpool2 -> BN -> activation] x len(channels) -> flatten
          -> linear -> (groups x categories) logits -> one-hot by argmax per group
          -> linear -> classes

Each block halves the map (rounding up): 28x28 images leave a 7x7 map after two blocks, 8x8 digits
a 2x2 one, and the bottleneck sees the whole map (``pooled_size=None``, the default). An integer
``pooled_size`` average-pools the map to that size first, for inputs too large to flatten.

``activations`` sets the op after each conv block (``sign``, ``step``, ``round``, or ``relu`` for a
float reference); ``bottleneck`` is ``"argmax"`` or ``None``. Pooling before the batch norm and
the hard op follows the binarized networks of Hubara et al. 2016 (arXiv:1602.02830): the op sees
normalized pre-activations, and max-pooling a ±1 map is avoided. Its hard ops are
``surrogate.Sign``, ``Step``, ``Round`` and ``ArgMax`` modules, built with surrogate's default
estimator and given the op config's by ``surrogate.swap``. Its plain-PyTorch twin, with the same
shape, parameters and initialization, is ``model=plain_cnn``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from surrogate import ArgMax, Round, Sign, Step
from surrogate.training.models import ModelConfig, register_model
from surrogate.training.ranges import Range

ACTIVATIONS = ("sign", "step", "round", "relu")
HARD_MODULES = {"sign": Sign, "step": Step, "round": Round}
BOTTLENECKS = ("argmax", None)
COUNT = Range(1, integer=True)


@dataclass
class CNNConfig(ModelConfig):
    """The keys of ``configs/model/cnn.yaml`` (and ``plain_cnn.yaml``)."""

    channels: list[int] = field(default=MISSING, metadata={"range": COUNT})  # each entry
    activations: list[str] = MISSING
    pooled_size: int | None = field(
        default=MISSING, metadata={"range": Range(1, integer=True, nullable=True)}
    )
    bottleneck: str | None = MISSING
    groups: int = field(default=MISSING, metadata={"range": COUNT})
    categories: int = field(default=MISSING, metadata={"range": Range(2, integer=True)})
    float_twin: bool = False  # true (op=float): relu after every block, whatever activations say


def check_layout(channels: Sequence[int], activations: Sequence[str], bottleneck) -> None:
    """Refuse a model config whose blocks, activations or bottleneck the networks cannot build."""
    if len(channels) != len(activations):
        raise ValueError(
            f"model: channels {list(channels)} and activations {list(activations)} "
            "must have the same length (one activation per conv block)"
        )
    for act in activations:
        if act not in ACTIVATIONS:
            raise ValueError(f"model.activations: unknown {act!r}; choose from {ACTIVATIONS}")
    if bottleneck not in BOTTLENECKS:
        raise ValueError(f"model.bottleneck: unknown {bottleneck!r}; choose 'argmax' or null")


def image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the images, refusing inputs that are not images."""
    if len(input_shape) != 3:
        raise ValueError(
            f"the CNN takes images (channels x height x width); this data's inputs are "
            f"{'x'.join(map(str, input_shape))}"
        )
    return tuple(input_shape)


def feature_count(
    channels: Sequence[int], input_shape: Sequence[int], pooled_size: int | None
) -> int:
    """How many features the conv blocks hand to the bottleneck: channels x map height x width."""
    in_channels, *size = image_shape(input_shape)
    for _ in channels:
        size = [math.ceil(s / 2) for s in size]
    if pooled_size is not None:
        size = [pooled_size, pooled_size]
    return (channels[-1] if channels else in_channels) * size[0] * size[1]


def conv_blocks(
    in_channels: int, channels: Sequence[int]
) -> tuple[list[nn.Conv2d], list[nn.BatchNorm2d]]:
    """The convolutions and batch norms of the conv blocks, in the order both twins create them."""
    convs, norms, width = [], [], in_channels
    for out in channels:
        convs.append(nn.Conv2d(width, out, 3, padding=1, bias=False))
        norms.append(nn.BatchNorm2d(out))
        width = out
    return convs, norms


class HardCNN(nn.Module):
    """The default network, built from surrogate's modules; see the module docstring."""

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        activations: Sequence[str] = ("sign", "step"),
        pooled_size: int | None = None,
        bottleneck: str | None = "argmax",
        groups: int = 32,
        categories: int = 8,
    ):
        super().__init__()
        check_layout(channels, activations, bottleneck)
        in_channels = image_shape(input_shape)[0]
        blocks = []
        for conv, norm, act in zip(*conv_blocks(in_channels, channels), activations, strict=True):
            hard = nn.ReLU() if act == "relu" else HARD_MODULES[act]()
            blocks += [conv, nn.MaxPool2d(2, ceil_mode=True), norm, hard]
        pool = [] if pooled_size is None else [nn.AdaptiveAvgPool2d(pooled_size)]
        self.features = nn.Sequential(*blocks, *pool, nn.Flatten())
        features = feature_count(channels, input_shape, pooled_size)
        if bottleneck == "argmax":
            self.bottleneck = nn.Sequential(
                nn.Linear(features, groups * categories),
                nn.Unflatten(1, (groups, categories)),
                ArgMax(dim=-1),
                nn.Flatten(),
            )
            features = groups * categories
        else:
            self.bottleneck = nn.Identity()
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bottleneck(self.features(x)))


def network_args(config: CNNConfig) -> dict:
    """The network's own keys of a CNN config (what ``HardCNN`` and ``PlainCNN`` take)."""
    return {
        "channels": config.channels,
        "activations": ["relu"] * len(config.activations)
        if config.float_twin
        else config.activations,
        "pooled_size": config.pooled_size,
        "bottleneck": config.bottleneck,
        "groups": config.groups,
        "categories": config.categories,
    }


@register_model("cnn", CNNConfig)
def build_cnn(config: CNNConfig, shape) -> HardCNN:
    return HardCNN(shape.input_shape, shape.num_classes, **network_args(config))

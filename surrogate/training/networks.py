"""The two twin CNNs the app trains, and ``build_net``, which picks one by the config's
``model.name``.

Both have the same shape, parameters and initialization:

    image -> [conv3x3 -> maxpool2 -> BN -> activation] x len(channels) -> flatten
          -> linear -> (groups x categories) logits -> one-hot by argmax per group
          -> linear -> classes

Each block halves the map (rounding up): 28x28 images leave a 7x7 map after two blocks, 8x8 digits
a 2x2 one, and the bottleneck sees the whole map (``pooled_size=None``, the default). An integer
``pooled_size`` average-pools the map to that size first, for inputs too large to flatten.

- ``cnn`` (:class:`HardCNN`): built from surrogate's modules (``Sign``, ``Step``, ``Round``,
  ``ArgMax``), each taking its estimator from the op config.
- ``plain_cnn`` (:class:`PlainCNN`): written in plain PyTorch as found in the wild
  (``torch.sign``, ``torch.heaviside``, ``torch.round``, ``F.one_hot(logits.argmax(-1))``), no
  surrogate code; left alone only its head learns, and ``surrogate.intercept`` gives its hard ops
  the estimators without touching it.

``activations`` sets the op after each conv block (``sign``, ``step``, ``round``, or ``relu`` for a
float reference); ``bottleneck`` is ``"argmax"`` or ``None``. Pooling before the batch norm and
the hard op follows the binarized networks of Hubara et al. 2016 (arXiv:1602.02830): the op sees
normalized pre-activations, and max-pooling a ±1 map is avoided.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from surrogate import ArgMax, Estimator, Round, Sign, Step

# Each activation as a plain torch function (PlainCNN) and, for the hard ones, surrogate's module
# (HardCNN).
PLAIN_ACTIVATIONS = {
    "sign": torch.sign,
    "step": lambda x: torch.heaviside(x, torch.zeros((), dtype=x.dtype, device=x.device)),
    "round": torch.round,
    "relu": torch.relu,
}
HARD_MODULES = {"sign": Sign, "step": Step, "round": Round}
BOTTLENECKS = ("argmax", None)
NETS = ("cnn", "plain_cnn")

Estimators = Mapping[str, tuple[Estimator, bool]]


def check_layout(channels: Sequence[int], activations: Sequence[str], bottleneck) -> None:
    """Refuse a model config whose blocks, activations or bottleneck the networks cannot build."""
    if len(channels) != len(activations):
        raise ValueError(
            f"model: channels {list(channels)} and activations {list(activations)} "
            "must have the same length (one activation per conv block)"
        )
    for act in activations:
        if act not in PLAIN_ACTIVATIONS:
            raise ValueError(
                f"model.activations: unknown {act!r}; choose from {tuple(PLAIN_ACTIVATIONS)}"
            )
    if bottleneck not in BOTTLENECKS:
        raise ValueError(f"model.bottleneck: unknown {bottleneck!r}; choose 'argmax' or null")


def feature_count(
    channels: Sequence[int], in_channels: int, image_size: int, pooled_size: int | None
) -> int:
    """How many features the conv blocks hand to the bottleneck: channels x map height x width."""
    size = image_size
    for _ in channels:
        size = math.ceil(size / 2)
    size = size if pooled_size is None else pooled_size
    return (channels[-1] if channels else in_channels) * size**2


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
        estimators: Estimators,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        channels: Sequence[int] = (16, 32),
        activations: Sequence[str] = ("sign", "step"),
        pooled_size: int | None = None,
        bottleneck: str | None = "argmax",
        groups: int = 32,
        categories: int = 8,
    ):
        super().__init__()
        check_layout(channels, activations, bottleneck)
        blocks = []
        for conv, norm, act in zip(*conv_blocks(in_channels, channels), activations, strict=True):
            blocks += [
                conv,
                nn.MaxPool2d(2, ceil_mode=True),
                norm,
                self.activation(act, estimators),
            ]
        pool = [] if pooled_size is None else [nn.AdaptiveAvgPool2d(pooled_size)]
        self.features = nn.Sequential(*blocks, *pool, nn.Flatten())
        features = feature_count(channels, in_channels, image_size, pooled_size)
        if bottleneck == "argmax":
            est, relaxed = estimators["argmax"]
            self.bottleneck = nn.Sequential(
                nn.Linear(features, groups * categories),
                nn.Unflatten(1, (groups, categories)),
                ArgMax(est, dim=-1, relaxed=relaxed),
                nn.Flatten(),
            )
            features = groups * categories
        else:
            self.bottleneck = nn.Identity()
        self.head = nn.Linear(features, num_classes)

    @staticmethod
    def activation(name: str, estimators: Estimators) -> nn.Module:
        if name == "relu":
            return nn.ReLU()
        est, relaxed = estimators[name]
        return HARD_MODULES[name](est, relaxed=relaxed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bottleneck(self.features(x)))


class PlainCNN(nn.Module):
    """The plain-PyTorch twin; arguments as ``HardCNN``'s, without the estimators."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
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
        convs, norms = conv_blocks(in_channels, channels)
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        features = feature_count(channels, in_channels, image_size, pooled_size)
        self.to_logits = None
        if bottleneck == "argmax":
            self.to_logits = nn.Linear(features, groups * categories)
            features = groups * categories
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm, act in zip(self.convs, self.norms, self.activations, strict=True):
            x = PLAIN_ACTIVATIONS[act](norm(F.max_pool2d(conv(x), 2, ceil_mode=True)))
        if self.pooled_size is not None:
            x = F.adaptive_avg_pool2d(x, self.pooled_size)
        x = x.flatten(1)
        if self.to_logits is not None:
            logits = self.to_logits(x).unflatten(1, (self.groups, self.categories))
            x = F.one_hot(logits.argmax(-1), self.categories).flatten(1).to(logits.dtype)
        return self.head(x)


def build_net(
    estimators: Estimators,
    in_channels: int = 1,
    num_classes: int = 10,
    image_size: int = 28,
    name: str = "cnn",
    **kwargs,
) -> nn.Module:
    """``HardCNN`` (``cnn``, its hard ops built with ``estimators``) or ``PlainCNN``
    (``plain_cnn``, plain torch ops that ``estimators`` reach through ``surrogate.intercept``)."""
    if name == "cnn":
        return HardCNN(estimators, in_channels, num_classes, image_size, **kwargs)
    if name == "plain_cnn":
        return PlainCNN(in_channels, num_classes, image_size, **kwargs)
    raise ValueError(f"model.name: unknown {name!r}; choose one of: {', '.join(NETS)}")

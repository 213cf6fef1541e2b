"""A small CNN whose forward path runs through hard ops: conv-pool-BN-sign, conv-pool-BN-step, then
a categorical bottleneck (logits per group, one-hot by argmax), then a linear head.

    image -> [conv3x3 -> maxpool2 -> BN -> hard op] x len(channels) -> adaptive avg pool
          -> linear -> (groups x categories) logits -> argmax one-hot per group -> linear -> classes

Which op sits after each conv block is ``activations`` (``sign``, ``step``, ``round`` or
``relu`` for a float reference); ``bottleneck="argmax"`` or ``None``. The estimator of each hard op
comes from ``estimators``, a mapping op name -> (estimator, relaxed) from ``surrogate.config``.
``build_net`` picks this network or its plain-PyTorch twin ``surrogate.plain_model.PlainCNN`` by
name (the config's ``model.name``).
Pooling before the batch norm and the hard op follows the binarized networks of Hubara et al. 2016
(arXiv:1602.02830): the op sees normalized pre-activations, and max-pooling a ±1 map is avoided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from surrogate.estimators import Estimator
from surrogate.modules import ArgMax, Round, Sign, Step
from surrogate.plain_model import PlainCNN, check_layout

ACTIVATIONS = ("sign", "step", "round", "relu")
_HARD_MODULES = {"sign": Sign, "step": Step, "round": Round}


def _activation(name: str, estimators: Mapping[str, tuple[Estimator, bool]]) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    est, relaxed = estimators[name]
    return _HARD_MODULES[name](est, relaxed=relaxed)


class HardCNN(nn.Module):
    """The default network; see the module docstring for its shape."""

    def __init__(
        self,
        estimators: Mapping[str, tuple[Estimator, bool]],
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        activations: Sequence[str] = ("sign", "step"),
        pooled_size: int = 2,
        bottleneck: str | None = "argmax",
        groups: int = 8,
        categories: int = 8,
    ):
        super().__init__()
        check_layout(channels, activations, ACTIVATIONS, bottleneck)
        blocks, width = [], in_channels
        for out, act in zip(channels, activations, strict=True):
            blocks += [
                nn.Conv2d(width, out, 3, padding=1, bias=False),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.BatchNorm2d(out),
                _activation(act, estimators),
            ]
            width = out
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(pooled_size), nn.Flatten())
        features = width * pooled_size**2
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bottleneck(self.features(x)))


NETS = ("cnn", "plain_cnn")


def build_net(
    estimators: Mapping[str, tuple[Estimator, bool]],
    in_channels: int = 1,
    num_classes: int = 10,
    name: str = "cnn",
    **kwargs,
) -> nn.Module:
    """``HardCNN`` (``cnn``, its hard ops built with ``estimators``) or ``PlainCNN``
    (``plain_cnn``, plain torch ops: ``estimators`` reach them through ``surrogate.intercept``)."""
    if name == "cnn":
        return HardCNN(estimators, in_channels, num_classes, **kwargs)
    if name == "plain_cnn":
        return PlainCNN(in_channels, num_classes, **kwargs)
    raise ValueError(f"model.name: unknown {name!r}; choose one of: {', '.join(NETS)}")

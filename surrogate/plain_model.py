"""A CNN written in plain PyTorch, as found in the wild: ``torch.sign`` activations and an argmax
bottleneck one-hot encoded with ``F.one_hot``, no surrogate ops anywhere.

    image -> [conv3x3 -> maxpool2 -> BN -> torch.sign] x len(channels) -> adaptive avg pool
          -> linear -> (groups x categories) logits -> F.one_hot(argmax) -> linear -> classes

Left alone, PyTorch gives its sign a zero gradient and cuts the graph at the argmax, so only the
head learns. ``surrogate.intercept`` (``python train.py model=plain_cnn``) gives both a surrogate
backward without touching this file. Same shape, parameters and initialization as
``surrogate.model.HardCNN``; ``activations`` also takes ``step`` (``torch.heaviside(x, 0)``),
``round`` (``torch.round``) and ``relu``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "sign": torch.sign,
    "step": lambda x: torch.heaviside(x, torch.zeros((), dtype=x.dtype, device=x.device)),
    "round": torch.round,
    "relu": torch.relu,
}


def check_layout(
    channels: Sequence[int], activations: Sequence[str], known: Sequence[str], bottleneck
) -> None:
    """Refuse a model config whose blocks, activations or bottleneck the networks cannot build."""
    if len(channels) != len(activations):
        raise ValueError(
            f"model: channels {list(channels)} and activations {list(activations)} "
            "must have the same length (one activation per conv block)"
        )
    for act in activations:
        if act not in known:
            raise ValueError(f"model.activations: unknown {act!r}; choose from {tuple(known)}")
    if bottleneck not in ("argmax", None):
        raise ValueError(f"model.bottleneck: unknown {bottleneck!r}; choose 'argmax' or null")


class PlainCNN(nn.Module):
    """See the module docstring; arguments as ``HardCNN``'s, without the estimators."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        activations: Sequence[str] = ("sign", "sign"),
        pooled_size: int = 2,
        bottleneck: str | None = "argmax",
        groups: int = 8,
        categories: int = 8,
    ):
        super().__init__()
        check_layout(channels, activations, tuple(ACTIVATIONS), bottleneck)
        self.activations = list(activations)
        self.pooled_size, self.groups, self.categories = pooled_size, groups, categories
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        width = in_channels
        for out in channels:
            self.convs.append(nn.Conv2d(width, out, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(out))
            width = out
        features = width * pooled_size**2
        self.to_logits = None
        if bottleneck == "argmax":
            self.to_logits = nn.Linear(features, groups * categories)
            features = groups * categories
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm, act in zip(self.convs, self.norms, self.activations, strict=True):
            x = ACTIVATIONS[act](norm(F.max_pool2d(conv(x), 2, ceil_mode=True)))
        x = F.adaptive_avg_pool2d(x, self.pooled_size).flatten(1)
        if self.to_logits is not None:
            logits = self.to_logits(x).unflatten(1, (self.groups, self.categories))
            x = F.one_hot(logits.argmax(-1), self.categories).flatten(1).to(logits.dtype)
        return self.head(x)

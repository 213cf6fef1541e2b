"""``model=csnn``: a convolutional spiking network (``SpikingCNN``) shown each image for
``time_steps`` steps.

    image -> encode over T steps -> [conv3x3 -> BN -> LIF -> maxpool2] x len(channels)
          -> flatten -> linear -> readout -> classes

``encoding``: ``direct`` shows the image itself at every step (the first convolution and batch
norm see the same input each step, so they run once and their output is repeated: the same values,
T times less work); ``rate`` draws each pixel as a spike with probability its intensity in [0, 1]
at every step (Bernoulli, the data read as intensities: ``data.scale`` becomes ``unit``).
Each ``surrogate.LIF`` (β = ``beta``, θ = ``threshold``, ``reset``) fires through the op config's
``step`` estimator and runs its time loop as one node.

``readout``, what the cross-entropy reads:
- ``membrane``: the mean over time of a leaky integrator's membrane, m_t = β·m_{t−1} + W·s_t + b
  (m_0 = 0), one per class; it never fires, so its gradient is exact;
- ``spikes``: a last LIF layer of one neuron per class, and its spike count over the T steps.

``float_twin`` (``op=float``): the same network with relu in place of every LIF and a linear
readout, run once (no time): the float reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from surrogate import LIF
from surrogate.training.models import ModelConfig, register_model
from surrogate.training.models.cnn import conv_blocks, feature_count, image_shape
from surrogate.training.ranges import Range

ENCODINGS = ("direct", "rate")
READOUTS = ("membrane", "spikes")
RESETS = ("subtract", "zero", "none")


def check_choice(key: str, value: str, choices: Sequence[str]) -> None:
    """Refuse ``model.<key>: value`` unless it is one of ``choices``, naming them."""
    if value not in choices:
        raise ValueError(f"model.{key}: unknown {value!r}; choose one of: {', '.join(choices)}")


@dataclass
class SpikingConfig(ModelConfig):
    """The neuron keys every spiking network shares."""

    beta: float = field(default=MISSING, metadata={"range": Range(0, 1, low_open=True)})
    threshold: float = field(default=MISSING, metadata={"range": Range(0, low_open=True)})
    reset: str = MISSING
    detach_reset: bool = MISSING
    readout: str = MISSING
    float_twin: bool = False


@dataclass
class CSNNConfig(SpikingConfig):
    """The keys of ``configs/model/csnn.yaml``."""

    channels: list[int] = field(default=MISSING, metadata={"range": Range(1, integer=True)})
    time_steps: int = field(default=MISSING, metadata={"range": Range(1, integer=True)})
    encoding: str = MISSING

    def input_scale(self) -> str | None:
        """Rate encoding reads pixel intensities in [0, 1]."""
        return "unit" if self.encoding == "rate" else None


def leaky_readout(currents: torch.Tensor, beta: float) -> torch.Tensor:
    """The mean over time of m_t = β·m_{t−1} + I_t (m_0 = 0), for currents (T, B, classes)."""
    m = torch.zeros_like(currents[0])
    total = torch.zeros_like(currents[0])
    for current in currents.unbind(0):
        m = beta * m + current
        total = total + m
    return total / currents.shape[0]


class Readout(nn.Module):
    """Spikes (T, B, features) to logits (B, classes): see the module docstring's ``readout``."""

    def __init__(self, features: int, num_classes: int, kind: str, beta: float, threshold: float):
        super().__init__()
        self.kind, self.beta = kind, beta
        self.linear = nn.Linear(features, num_classes)
        self.lif = LIF(beta, threshold) if kind == "spikes" else None

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        currents = self.linear(spikes)
        if self.lif is not None:
            return self.lif(currents).sum(0)
        return leaky_readout(currents, self.beta)


class SpikingCNN(nn.Module):
    """The convolutional spiking network; see the module docstring."""

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        time_steps: int = 4,
        encoding: str = "direct",
        readout: str = "membrane",
        beta: float = 0.5,
        threshold: float = 1.0,
        reset: str = "subtract",
        detach_reset: bool = False,
        float_twin: bool = False,
    ):
        super().__init__()
        check_choice("encoding", encoding, ENCODINGS)
        check_choice("readout", readout, READOUTS)
        check_choice("reset", reset, RESETS)
        self.time_steps, self.encoding, self.float_twin = time_steps, encoding, float_twin
        convs, norms = conv_blocks(image_shape(input_shape)[0], channels)
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.neurons = nn.ModuleList(
            nn.ReLU() if float_twin else LIF(beta, threshold, reset, detach_reset) for _ in channels
        )
        features = feature_count(channels, input_shape, None)
        if float_twin:
            self.head: nn.Module = nn.Linear(features, num_classes)
        else:
            self.head = Readout(features, num_classes, readout, beta, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.float_twin:
            for conv, norm, relu in zip(self.convs, self.norms, self.neurons, strict=True):
                x = nn.functional.max_pool2d(relu(norm(conv(x))), 2, ceil_mode=True)
            return self.head(x.flatten(1))
        steps, batch = self.time_steps, x.shape[0]
        direct = self.encoding == "direct"
        if not direct:  # rate: each pixel a spike with probability its intensity
            x = torch.bernoulli(x.clamp(0, 1).expand(steps, *x.shape))
        blocks = zip(self.convs, self.norms, self.neurons, strict=True)
        for i, (conv, norm, lif) in enumerate(blocks):
            if i == 0 and direct:  # the same image each step: computed once
                current = norm(conv(x)).unsqueeze(0).expand(steps, -1, -1, -1, -1)
            else:
                current = norm(conv(x.flatten(0, 1))).unflatten(0, (steps, batch))
            spikes = lif(current)
            x = nn.functional.max_pool2d(spikes.flatten(0, 1), 2, ceil_mode=True)
            x = x.unflatten(0, (steps, batch))
        return self.head(x.flatten(2))


@register_model("csnn", CSNNConfig)
def build_csnn(config: CSNNConfig, shape) -> SpikingCNN:
    return SpikingCNN(
        shape.input_shape, shape.num_classes, config.channels, config.time_steps,
        config.encoding, config.readout, config.beta, config.threshold, config.reset,
        config.detach_reset, config.float_twin,
    )  # fmt: skip

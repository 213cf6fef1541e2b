"""``model=rsnn``: a recurrent spiking network for sequences (``SpikingRNN``), such as spike
trains (``data=randman``, ``data=shd``).

    sequence (B, T, F) -> time first -> [linear -> neuron] x len(hidden) -> linear -> readout

``neuron``: ``lif`` (``surrogate.LIF``), ``recurrent`` (``surrogate.RecurrentLIF``: a learned
weight from each step's spikes into the next step's input) or ``alif`` (``surrogate.ALIF`` with
that recurrence and an adaptive threshold, Bellec et al. 2018: ``adaptation``, ``rho``). Every
neuron fires through the op config's ``step`` estimator. ``readout`` as the CSNN's
(``surrogate/training/models/csnn.py``): the mean membrane of a leaky integrator per class, or a
LIF layer's spike count. ``float_twin`` (``op=float``) has nothing to replace here: ``op=float``
runs every spike relaxed (σ(v − θ) in place of the step), which is this network's float twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from surrogate import ALIF, LIF, RecurrentLIF
from surrogate.training.models import register_model
from surrogate.training.models.csnn import READOUTS, RESETS, Readout, SpikingConfig, check_choice
from surrogate.training.ranges import Range

NEURONS = ("lif", "recurrent", "alif")


@dataclass
class RSNNConfig(SpikingConfig):
    """The keys of ``configs/model/rsnn.yaml``."""

    hidden: list[int] = field(default=MISSING, metadata={"range": Range(1, integer=True)})
    neuron: str = MISSING
    adaptation: float = field(default=MISSING, metadata={"range": Range(0)})
    rho: float = field(default=MISSING, metadata={"range": Range(0, 1, high_open=True)})


def sequence_shape(input_shape: Sequence[int]) -> tuple[int, int]:
    """``(steps, features)`` of the sequences, refusing inputs that are not sequences."""
    if len(input_shape) != 2:
        raise ValueError(
            f"model=rsnn takes sequences (steps x features), such as data=randman or data=shd; "
            f"this data's inputs are {'x'.join(map(str, input_shape))}"
        )
    return input_shape[0], input_shape[1]


class SpikingRNN(nn.Module):
    """The recurrent spiking network; see the module docstring."""

    def __init__(
        self,
        input_shape: Sequence[int] = (50, 100),
        num_classes: int = 10,
        hidden: Sequence[int] = (128,),
        neuron: str = "recurrent",
        readout: str = "membrane",
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "subtract",
        detach_reset: bool = False,
        adaptation: float = 1.8,
        rho: float = 0.99,
    ):
        super().__init__()
        check_choice("neuron", neuron, NEURONS)
        check_choice("readout", readout, READOUTS)
        check_choice("reset", reset, RESETS)
        width = sequence_shape(input_shape)[1]
        layers: list[nn.Module] = []
        for size in hidden:
            kwargs = {"reset": reset, "detach_reset": detach_reset}
            if neuron == "lif":
                cell: nn.Module = LIF(beta, threshold, **kwargs)
            elif neuron == "recurrent":
                cell = RecurrentLIF(size, beta, threshold, **kwargs)
            else:
                cell = ALIF(beta, threshold, adaptation, rho, features=size, **kwargs)
            layers += [nn.Linear(width, size), cell]
            width = size
        self.layers = nn.Sequential(*layers)
        self.head = Readout(width, num_classes, readout, beta, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x.transpose(0, 1)))


@register_model("rsnn", RSNNConfig)
def build_rsnn(config: RSNNConfig, shape) -> SpikingRNN:
    return SpikingRNN(
        shape.input_shape, shape.num_classes, config.hidden, config.neuron, config.readout,
        config.beta, config.threshold, config.reset, config.detach_reset, config.adaptation,
        config.rho,
    )  # fmt: skip

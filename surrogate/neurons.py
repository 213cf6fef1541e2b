"""Spiking neurons over a leading time axis.

    lif = surrogate.LIF(beta=0.9, threshold=1.0, estimator="atan")
    spikes = lif(x)                        # x: (T, B, ...) -> spikes (T, B, ...), x's dtype

``LIF`` is a multi-step leaky integrate-and-fire layer; its state starts at 0 at every call. With β
the decay and θ the threshold, for t = 1 … T:

    v_t = β·u_{t−1} + x_t                  (u_0 = 0)
    s_t = step(v_t − θ)                    (the layer's estimator's backward)
    u_t = v_t − s_t·θ      reset="subtract" (the default)
          v_t·(1 − s_t)    reset="zero"
          v_t              reset="none"

``detach_reset=True`` uses s_t.detach() in the reset, so no gradient flows through it. With the
same step estimator this is SpikingJelly's ``LIFNode(tau=1/(1 − β), decay_input=False,
v_reset=None or 0.0)``, but at v_t = θ exactly, where its step gives 1 and this one 0
(step(0) = 0). The step is a ``surrogate.Step`` child (``lif.spike``), so ``swap``, schedules,
per-layer estimators and diagnostics see it as any hard op. ``learn_beta`` makes β a parameter
kept in (0, 1) through a sigmoid, as PLIF (Fang et al. 2021, arXiv:2007.05785) learns its time
constant; ``learn_threshold`` makes θ a parameter. ``return_membrane=True`` also returns u,
(T, B, ...).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from surrogate.functional import EstimatorLike
from surrogate.modules import ChildEstimator, Step

RESETS = ("subtract", "zero", "none")


def check_beta(beta: Any, learn: bool) -> float:
    """β as a float in (0, 1] ((0, 1) when learned), else a ValueError naming it."""
    number = isinstance(beta, (int, float)) and not isinstance(beta, bool)
    valid = number and (0 < beta < 1 if learn else 0 < beta <= 1)
    if not valid:
        where = "(0, 1) (learn_beta: a sigmoid never reaches 1)" if learn else "(0, 1]"
        raise ValueError(f"LIF: beta must be in {where}, got {beta!r}")
    return float(beta)


class LIF(nn.Module):
    """A multi-step leaky integrate-and-fire layer; see the module docstring."""

    def __init__(
        self,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "subtract",
        detach_reset: bool = False,
        estimator: EstimatorLike = "atan",
        learn_beta: bool = False,
        learn_threshold: bool = False,
        return_membrane: bool = False,
        **estimator_params: Any,
    ):
        super().__init__()
        beta = check_beta(beta, learn_beta)
        number = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
        if not (number and threshold > 0 and math.isfinite(threshold)):
            raise ValueError(f"LIF: threshold must be a finite number > 0, got {threshold!r}")
        if reset not in RESETS:
            raise ValueError(f"LIF: reset must be one of {RESETS}, got {reset!r}")
        self.reset, self.detach_reset = reset, bool(detach_reset)
        self.learn_beta, self.return_membrane = bool(learn_beta), bool(return_membrane)
        self.spike = Step(estimator, **estimator_params)
        # Fixed β and θ stay Python floats, exact in every dtype; learned ones are parameters.
        self.beta_value, self.threshold_value = beta, float(threshold)
        if self.learn_beta:  # β = sigmoid(w)
            self.beta_logit = nn.Parameter(torch.tensor(math.log(beta / (1 - beta))))
        self.learn_threshold = bool(learn_threshold)
        if self.learn_threshold:
            self.learned_threshold = nn.Parameter(torch.tensor(float(threshold)))

    estimator = ChildEstimator("spike")  # the estimator of ``spike``; settable

    @property
    def beta(self) -> torch.Tensor | float:
        """The decay β: sigmoid of its parameter with ``learn_beta``, else the number given."""
        return torch.sigmoid(self.beta_logit) if self.learn_beta else self.beta_value

    @property
    def threshold(self) -> torch.Tensor | float:
        """The threshold θ: a parameter with ``learn_threshold``, else the number given."""
        return self.learned_threshold if self.learn_threshold else self.threshold_value

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if x.dim() < 2:
            raise ValueError(
                f"LIF: the input must be (T, B, ...), a time axis then a batch axis; got shape "
                f"{tuple(x.shape)}"
            )
        beta, threshold = self.beta, self.threshold
        if isinstance(beta, torch.Tensor):
            beta = beta.to(x.dtype)
        if isinstance(threshold, torch.Tensor):
            threshold = threshold.to(x.dtype)
        u = torch.zeros_like(x[0])
        spikes, membranes = [], []
        for x_t in x.unbind(0):
            v = beta * u + x_t
            s = self.spike(v - threshold)
            r = s.detach() if self.detach_reset else s
            if self.reset == "subtract":
                u = v - r * threshold
            elif self.reset == "zero":
                u = v * (1 - r)
            else:
                u = v
            spikes.append(s)
            if self.return_membrane:
                membranes.append(u)
        out = torch.stack(spikes)
        return (out, torch.stack(membranes)) if self.return_membrane else out

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta_value}, threshold={self.threshold_value}, reset={self.reset!r}, "
            f"detach_reset={self.detach_reset}, learn_beta={self.learn_beta}, "
            f"learn_threshold={self.learn_threshold}"
        )

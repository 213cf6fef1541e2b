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
v_reset=None or 0.0)`` and snnTorch's ``Leaky(beta, reset_mechanism="subtract" or "zero")`` run
over the sequence, but at v_t = θ exactly, where their step gives 1 and this one 0
(step(0) = 0). The step is a ``surrogate.Step`` child (``lif.spike``), so ``swap``, schedules,
per-layer estimators and diagnostics see it as any hard op. ``learn_beta`` makes β a parameter
kept in (0, 1) through a sigmoid, as PLIF (Fang et al. 2021, arXiv:2007.05785) learns its time
constant; ``learn_threshold`` makes θ a parameter. ``return_membrane=True`` also returns u,
(T, B, ...).

With β and θ fixed, a hard forward and an estimator that does not sample, the whole loop is one
autograd node (``surrogate.lif_scan``): the same spikes bit for bit, the same gradients to
rounding, several times faster, and only the estimator's saved input (z_t = v_t − θ for a bump)
kept per step. Otherwise, and while a hook is registered on ``spike`` (diagnostics see every
step's input) or ``torch.compile`` traces the layer, it runs step by step through ``spike``.

``RecurrentLIF(features)`` adds a recurrent weight W (``recurrent``, no bias) from the previous
step's spikes: v_t = β·u_{t−1} + x_t + W·s_{t−1}. ``ALIF`` adapts its threshold (Bellec et al.
2018, "Long short-term memory and learning-to-learn in networks of spiking neurons",
arXiv:1803.09574): θ_t = θ + adaptation·a_{t−1}, s_t = step(v_t − θ_t), a_t = ρ·a_{t−1} +
(1 − ρ)·s_t (a_0 = 0), and the subtract reset removes θ_t; with ``features`` it is recurrent as
well (the paper's LSNN layer).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from surrogate.dtypes import check_floating
from surrogate.functional import EstimatorLike
from surrogate.lif_scan import LIFScan, scan_applies
from surrogate.modules import ChildEstimator, Step

RESETS = ("subtract", "zero", "none")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_beta(beta: Any, learn: bool, owner: str = "LIF") -> float:
    """β as a float in (0, 1] ((0, 1) when learned), else a ValueError naming it."""
    valid = _number(beta) and (0 < beta < 1 if learn else 0 < beta <= 1)
    if not valid:
        where = "(0, 1) (learn_beta: a sigmoid never reaches 1)" if learn else "(0, 1]"
        raise ValueError(f"{owner}: beta must be in {where}, got {beta!r}")
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
        owner = type(self).__name__
        beta = check_beta(beta, learn_beta, owner)
        if not (_number(threshold) and threshold > 0 and math.isfinite(threshold)):
            raise ValueError(f"{owner}: threshold must be a finite number > 0, got {threshold!r}")
        if reset not in RESETS:
            raise ValueError(f"{owner}: reset must be one of {RESETS}, got {reset!r}")
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
        self.recurrent: nn.Linear | None = None
        self.adaptation, self.rho = 0.0, 0.0

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
        self._check_input(x)
        if self._scans():
            spikes, membranes = LIFScan.apply(
                x, self.spike.estimator, self.beta_value, self.threshold_value, self.reset,
                self.detach_reset, self.return_membrane,
            )  # fmt: skip
            return (spikes, membranes) if self.return_membrane else spikes
        return self._run(x)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(
                f"{type(self).__name__}: the input must be (T, B, ...), a time axis then a batch "
                f"axis; got shape {tuple(x.shape)}"
            )
        check_floating(type(self).__name__, x)
        if self.recurrent is not None:
            features = self.recurrent.in_features
            if x.dim() != 3 or x.shape[-1] != features:
                raise ValueError(
                    f"{type(self).__name__}: the input must be (T, B, features={features}); got "
                    f"shape {tuple(x.shape)}"
                )

    def _scans(self) -> bool:
        """Whether the loop runs as one ``LIFScan`` node (see the module docstring)."""
        spike = self.spike
        return (
            self.recurrent is None
            and not self.adaptation
            and not (self.learn_beta or self.learn_threshold)
            and scan_applies(spike.estimator, spike.relaxed)
            and not (spike._forward_hooks or spike._forward_pre_hooks)
            and not (_global_forward_hooks or _global_forward_pre_hooks)
            and not torch.compiler.is_compiling()
        )

    def _run(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The dynamics step by step, each through ``spike`` and recorded by autograd."""
        beta, threshold = self.beta, self.threshold
        if isinstance(beta, torch.Tensor):
            beta = beta.to(x.dtype)
        if isinstance(threshold, torch.Tensor):
            threshold = threshold.to(x.dtype)
        u = torch.zeros_like(x[0])
        a = torch.zeros_like(x[0]) if self.adaptation else None
        s: torch.Tensor | None = None
        spikes, membranes = [], []
        for x_t in x.unbind(0):
            # a fixed β: x + β·u in one op, rounded as the one-node loop rounds it
            v = torch.add(x_t, u, alpha=beta) if isinstance(beta, float) else beta * u + x_t
            if self.recurrent is not None and s is not None:
                v = v + self.recurrent(s)
            theta = threshold if a is None else threshold + self.adaptation * a
            s = self.spike(v - theta)
            r = s.detach() if self.detach_reset else s
            if self.reset == "subtract":
                u = v - r * theta
            elif self.reset == "zero":
                u = v * (1 - r)
            else:
                u = v
            if a is not None:
                a = self.rho * a + (1 - self.rho) * s
            spikes.append(s)
            if self.return_membrane:
                membranes.append(u)
        out = torch.stack(spikes)
        return (out, torch.stack(membranes)) if self.return_membrane else out

    def extra_repr(self) -> str:
        features = "" if self.recurrent is None else f"features={self.recurrent.in_features}, "
        adaptive = f", adaptation={self.adaptation}, rho={self.rho}" if self.adaptation else ""
        return (
            f"{features}beta={self.beta_value}, threshold={self.threshold_value}, "
            f"reset={self.reset!r}, detach_reset={self.detach_reset}, "
            f"learn_beta={self.learn_beta}, learn_threshold={self.learn_threshold}{adaptive}"
        )


def _recurrent_weight(owner: str, features: Any) -> nn.Linear:
    if not (isinstance(features, int) and not isinstance(features, bool) and features >= 1):
        raise ValueError(f"{owner}: features must be an integer >= 1, got {features!r}")
    return nn.Linear(features, features, bias=False)


class RecurrentLIF(LIF):
    """A LIF layer whose spikes feed back through a learned weight ``recurrent`` (features x
    features, no bias): v_t = β·u_{t−1} + x_t + W·s_{t−1}. Input (T, B, features)."""

    def __init__(self, features: int, beta: float = 0.9, threshold: float = 1.0, **kwargs: Any):
        super().__init__(beta, threshold, **kwargs)
        self.recurrent = _recurrent_weight(type(self).__name__, features)


class ALIF(LIF):
    """A LIF layer with an adaptive threshold θ_t = θ + adaptation·a_{t−1}, a_t = ρ·a_{t−1} +
    (1 − ρ)·s_t (Bellec et al. 2018; see the module docstring). ``features`` given: recurrent as
    ``RecurrentLIF``; None: feed-forward, any input (T, B, ...)."""

    def __init__(
        self,
        beta: float = 0.9,
        threshold: float = 1.0,
        adaptation: float = 1.8,
        rho: float = 0.99,
        features: int | None = None,
        **kwargs: Any,
    ):
        owner = type(self).__name__
        if not (_number(adaptation) and adaptation >= 0 and math.isfinite(adaptation)):
            raise ValueError(
                f"{owner}: adaptation must be a finite number >= 0, got {adaptation!r}"
            )
        if not (_number(rho) and 0 <= rho < 1):
            raise ValueError(f"{owner}: rho must be in [0, 1), got {rho!r}")
        super().__init__(beta, threshold, **kwargs)
        if features is not None:
            self.recurrent = _recurrent_weight(owner, features)
        self.adaptation, self.rho = float(adaptation), float(rho)

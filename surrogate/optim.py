"""``Bop``: the optimizer for binary weights of Helwegen et al. 2019 (arXiv:1906.02107), as larq's.

    optimizer = surrogate.Bop(surrogate.binary_weights(model), gamma=1e-4, threshold=1e-8)

Bop keeps no latent magnitude to descend on; it flips signs. For each binary weight w with
gradient g (the gradient reaching the latent weight, i.e. through the layer's estimator):

    m ← (1 − γ)·m + γ·g                      (an exponential moving average, m₀ = 0)
    w ← −w   where |m| > τ and sign(m) = sign(w),   else w

γ is the adaptivity rate and τ the threshold. γ is stored as each parameter group's ``lr``, so a
learning-rate schedule decays it, as Helwegen et al. decay γ during training. Only the sign of w
matters to a binary layer; Bop keeps the latent magnitudes as they are (a flipped latent 0, which
``surrogate.sign`` reads as +1, becomes −1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class Bop(torch.optim.Optimizer):
    """Sign flips driven by the gradient's moving average; see the module docstring."""

    def __init__(self, params: Iterable[Any], gamma: float = 1e-4, threshold: float = 1e-8):
        if not 0 < gamma <= 1:
            raise ValueError(f"Bop: gamma must be in (0, 1], got {gamma!r}")
        if not threshold >= 0:
            raise ValueError(f"Bop: threshold must be >= 0, got {threshold!r}")
        super().__init__(params, {"lr": gamma, "threshold": threshold})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            gamma, threshold = group["lr"], group["threshold"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                state = self.state[w]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(w)
                m = state["momentum"]
                m.lerp_(w.grad, gamma)
                signs = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)  # surrogate.sign's: +1 at 0
                flip = (m.abs() > threshold) & (torch.sign(m) == signs)
                w.copy_(torch.where(flip, torch.where(w == 0, -signs, -w), w))
        return loss

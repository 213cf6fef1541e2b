"""Binary-weight layers: real latent weights, a forward with their sign.

    layer = surrogate.BinaryConv2d(64, 128, 3, padding=1)            # clipped straight-through
    layer = surrogate.BinaryLinear(512, 10, estimator="triangle", scale=True)

The forward uses w_b = sign(w) (+1 at 0, as ``surrogate.sign``) of the real latent weight
``layer.weight``, times α = mean|w| per output channel with ``scale=True`` (XNOR-Net, Rastegari et
al. 2016, arXiv:1603.05279; α is differentiated as a function of w, as there). The sign runs
through a ``surrogate.Sign`` child, ``layer.binarize``, so ``swap``, schedules, per-layer
estimators, diagnostics and ``audit`` see it as they see any hard op: the weight's gradient is the
estimator's backward of sign at the latent weight (``clipped_ste``: 1[|w| <= 1], Hubara et al.
2016). The input is left to the model: a ``surrogate.Sign`` module binarizes activations.

BinaryConnect (Courbariaux et al. 2015, arXiv:1511.00363) keeps the latent weights in [−1, 1]:
``clip_latent_weights(model)`` after each optimizer step. ``binary_weights(model)`` lists the
latent weights (for ``surrogate.Bop``, which flips them).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from surrogate.functional import EstimatorLike
from surrogate.modules import ChildEstimator, Sign

LATENT_BOUND = 1.0  # BinaryConnect's clip of the latent weights, and where they count as saturated


class BinaryWeight(nn.Module):
    """What the binary layers share: the ``binarize`` child, the optional per-channel scale, the
    ``estimator`` property and the weight statistics the diagnostics record."""

    weight: torch.Tensor

    def _init_binary(self, estimator: EstimatorLike, scale: bool, params: dict[str, Any]) -> None:
        self.binarize = Sign(estimator, **params)
        self.scale = bool(scale)

    estimator = ChildEstimator("binarize")  # the estimator of ``binarize``; settable

    def binary_weight(self) -> torch.Tensor:
        """sign(w), times mean|w| over each output channel when ``scale``."""
        signs = self.binarize(self.weight)
        if not self.scale:
            return signs
        dims = tuple(range(1, self.weight.dim()))
        return signs * self.weight.abs().mean(dim=dims, keepdim=True)

    def statistics(self) -> dict[str, float]:
        """``saturated``: the share of latent weights with |w| >= 1 (at BinaryConnect's clip)."""
        with torch.no_grad():
            return {"saturated": float((self.weight.abs() >= LATENT_BOUND).double().mean())}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale}"


class BinaryLinear(BinaryWeight, nn.Linear):
    """``nn.Linear`` with binary weights: y = x·w_bᵀ + b (see the module docstring)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        estimator: EstimatorLike = "clipped_ste",
        scale: bool = False,
        *,
        device: Any = None,
        dtype: Any = None,
        **estimator_params: Any,
    ):
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_binary(estimator, scale, estimator_params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.binary_weight(), self.bias)


class BinaryConv2d(BinaryWeight, nn.Conv2d):
    """``nn.Conv2d`` with binary weights (see the module docstring)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        bias: bool = True,
        estimator: EstimatorLike = "clipped_ste",
        scale: bool = False,
        *,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        device: Any = None,
        dtype: Any = None,
        **estimator_params: Any,
    ):
        nn.Conv2d.__init__(
            self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            bias, device=device, dtype=dtype,
        )  # fmt: skip
        self._init_binary(estimator, scale, estimator_params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.binary_weight(), self.bias)


def binary_weights(model: nn.Module) -> list[torch.Tensor]:
    """The latent weights of every binary layer of ``model``, each once."""
    found = {id(m.weight): m.weight for m in model.modules() if isinstance(m, BinaryWeight)}
    return list(found.values())


@torch.no_grad()
def clip_latent_weights(model: nn.Module, bound: float = LATENT_BOUND) -> int:
    """Clamp every binary layer's latent weights to [−bound, bound] in place (BinaryConnect);
    returns how many weight tensors it clamped."""
    if not bound > 0:
        raise ValueError(f"clip_latent_weights: bound must be > 0, got {bound!r}")
    weights = binary_weights(model)
    for weight in weights:
        weight.clamp_(-bound, bound)
    return len(weights)

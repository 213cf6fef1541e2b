"""Uniform quantizers with a fixed or learned step, and the layers that use them.

    q = surrogate.Quantize(bits=4, signed=False, learn_step=True)   # LSQ on activations
    layer = surrogate.QuantConv2d(64, 128, 3, padding=1, bits=4, learn_step=True)

``Quantize`` computes q = round(clamp(x/s, Qn, Qp))·s with Qn = −2^(b−1), Qp = 2^(b−1) − 1
(``signed``) or Qn = 0, Qp = 2^b − 1, the round through a ``surrogate.Round`` child
(``quantizer.round``) and its estimator, so ``swap``, schedules, per-layer estimators, diagnostics
and ``audit`` see it as any hard op. The clamp passes x's gradient strictly inside (Qn, Qp) and
none at or beyond its ends (LSQ's eq. 5), whatever ``torch.clamp``'s gradient at its bounds.

The step s is a buffer, or with ``learn_step=True`` a parameter learned as in LSQ (Esser et al.
2020, arXiv:1902.08153): its gradient is scaled by g = 1/√(N·Qp), N the number of elements
quantized per sample (``kind="activations"``) or the weight's element count (``kind="weights"``);
with the ``ste`` round, ∂q/∂s = round(v) − v strictly inside the range (v = x/s) and Qn or Qp at
or beyond its ends, LSQ's formula. ``step=None`` initializes s at the first forward from the data
as LSQ does, s = 2·mean|x|/√Qp (a state dict saved after that carries s; one saved before it
leaves the initialization to the next forward); under ``torch.compile`` that first forward must
have run already.

``QuantLinear`` and ``QuantConv2d`` quantize their weight (signed, ``kind="weights"``) and their
input (``input_signed``, ``kind="activations"``; ``quantize_input=False`` leaves it float).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from surrogate.functional import EstimatorLike
from surrogate.modules import ChildEstimator, Round

MAX_BITS = 16
KINDS = ("activations", "weights")


def check_bits(bits: Any, where: str = "Quantize", name: str = "bits") -> int:
    """``bits`` as an int in [1, 16], else a ValueError naming it."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"{where}: {name} must be an integer in [1, {MAX_BITS}], got {bits!r}")
    return bits


def levels(bits: int, signed: bool) -> tuple[int, int]:
    """(Qn, Qp): the lowest and highest integer level of a ``bits``-bit quantizer."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x, exactly, in the forward; its gradient times ``scale`` in the backward (LSQ's
    grad_scale)."""
    scaled = x * scale
    return x.detach() + (scaled - scaled.detach())


def clamp_inside(v: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """clamp(v, low, high), its gradient 1 strictly inside (low, high) and 0 elsewhere."""
    inside = (v > low) & (v < high)
    return torch.where(inside, v, v.detach().clamp(low, high))


class Quantize(nn.Module):
    """round(clamp(x/s, Qn, Qp))·s; see the module docstring."""

    step: torch.Tensor  # a parameter with learn_step, else a buffer
    initialized: torch.Tensor

    def __init__(
        self,
        bits: int = 4,
        signed: bool = True,
        step: float | None = 1.0,
        learn_step: bool = False,
        estimator: EstimatorLike = "ste",
        *,
        kind: str = "activations",
        device: Any = None,
        dtype: Any = None,
        **estimator_params: Any,
    ):
        super().__init__()
        self.bits = check_bits(bits)
        if kind not in KINDS:
            raise ValueError(f"Quantize: kind must be one of {KINDS}, got {kind!r}")
        number = isinstance(step, (int, float)) and not isinstance(step, bool)
        if step is not None and not (number and step > 0):
            raise ValueError(f"Quantize: step must be > 0 (or None: from the data), got {step!r}")
        self.signed, self.learn_step, self.kind = bool(signed), bool(learn_step), kind
        self.qn, self.qp = levels(self.bits, self.signed)
        self.round = Round(estimator, **estimator_params)
        initial = torch.tensor(1.0 if step is None else float(step), device=device, dtype=dtype)
        if self.learn_step:
            self.step = nn.Parameter(initial)
        else:
            self.register_buffer("step", initial)
        # Whether s holds a value (given, or set from the data): a buffer, so that a state restored
        # from before the first forward (a checkpoint, audit's passes) still initializes there.
        self.register_buffer("initialized", torch.tensor(step is not None, device=device))
        self._read = (-1, step is None)  # (the buffer's version when read, whether s needs init)

    estimator = ChildEstimator("round")  # the estimator of ``round``; settable

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """s = 2·mean|x|/√Qp (LSQ's initialization), from ``x``."""
        mean = x.detach().abs().mean().to(self.step.dtype)
        self.step.copy_(torch.clamp(2 * mean / math.sqrt(max(self.qp, 1)), min=1e-8))
        self.initialized.fill_(True)
        self._read = (self.initialized._version, False)

    @property
    def needs_init(self) -> bool:
        """Whether the next forward sets s from the data (reads the buffer only after it changed,
        so a forward costs no device sync)."""
        version = self.initialized._version
        if self._read[0] != version:
            self._read = (version, not bool(self.initialized))
        return self._read[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            if self._read[1]:  # the data-dependent initialization runs eagerly, before compiling
                raise RuntimeError(
                    "Quantize(step=None) sets its step from the first batch it sees: run one "
                    "forward before torch.compile"
                )
        elif self.needs_init:
            self.initialize(x)
        step = self.step
        if self.learn_step:
            per_sample = x[0].numel() if self.kind == "activations" and x.dim() > 0 else x.numel()
            step = scale_gradient(step, 1.0 / math.sqrt(max(per_sample * self.qp, 1)))
        step = step.to(x.dtype)
        return self.round(clamp_inside(x / step, self.qn, self.qp)) * step

    def statistics(self) -> dict[str, float]:
        """``step``: the step size s."""
        return {"step": float(self.step.detach())}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        if prefix + "step" in state_dict and prefix + "initialized" not in state_dict:
            state_dict[prefix + "initialized"] = torch.tensor(True)  # a step given by hand
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"bits={self.bits}, signed={self.signed}, learn_step={self.learn_step}, "
            f"kind={self.kind!r}"
        )


class QuantWeight(nn.Module):
    """What the quantized layers share: a weight quantizer and an optional input quantizer."""

    weight: torch.Tensor

    def _init_quant(
        self,
        bits: int,
        input_bits: int | None,
        quantize_input: bool,
        input_signed: bool,
        learn_step: bool,
        estimator: EstimatorLike,
        params: dict[str, Any],
    ) -> None:
        name = type(self).__name__
        check_bits(bits, name)
        factory = {"device": self.weight.device, "dtype": self.weight.dtype}
        self.weight_quantizer = Quantize(
            bits, True, None, learn_step, estimator, kind="weights", **factory, **params
        )
        self.input_quantizer = None
        if quantize_input:
            in_bits = bits if input_bits is None else check_bits(input_bits, name, "input_bits")
            self.input_quantizer = Quantize(
                in_bits, input_signed, None, learn_step, estimator, kind="activations",
                **factory, **params,
            )  # fmt: skip

    def quantized(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the input, quantized unless ``quantize_input=False``; the quantized weight)."""
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        return x, self.weight_quantizer(self.weight)


class QuantLinear(QuantWeight, nn.Linear):
    """``nn.Linear`` on quantized inputs with quantized weights (see the module docstring)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bits: int = 4,
        input_bits: int | None = None,
        quantize_input: bool = True,
        input_signed: bool = False,
        learn_step: bool = False,
        estimator: EstimatorLike = "ste",
        *,
        device: Any = None,
        dtype: Any = None,
        **estimator_params: Any,
    ):
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_quant(
            bits, input_bits, quantize_input, input_signed, learn_step, estimator,
            estimator_params,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, weight = self.quantized(x)
        return F.linear(x, weight, self.bias)


class QuantConv2d(QuantWeight, nn.Conv2d):
    """``nn.Conv2d`` on quantized inputs with quantized weights (see the module docstring)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        bias: bool = True,
        bits: int = 4,
        input_bits: int | None = None,
        quantize_input: bool = True,
        input_signed: bool = False,
        learn_step: bool = False,
        estimator: EstimatorLike = "ste",
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
        self._init_quant(
            bits, input_bits, quantize_input, input_signed, learn_step, estimator,
            estimator_params,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, weight = self.quantized(x)
        return self._conv_forward(x, weight, self.bias)

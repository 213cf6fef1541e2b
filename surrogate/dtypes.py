"""The dtypes the ops accept and compute in.

Forwards are exact in the input's own dtype. Smooth formulas (bumps, their integrals, softmax) are
computed in float32 for float16 and bfloat16 inputs, and in the input's dtype for float32 and
float64, then returned in the input's dtype.
"""

from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp16 and bf16 are computed in fp32; fp32 and fp64 in themselves."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in its compute dtype (a no-op for fp32 and fp64)."""
    return x.to(compute_dtype(x.dtype))


def check_floating(op_name: str, x: torch.Tensor) -> None:
    """Refuse a tensor that is not floating point, naming the dtypes that are accepted."""
    if not x.is_floating_point():
        raise TypeError(
            f"surrogate {op_name}: needs a floating-point tensor (float16, bfloat16, float32 or "
            f"float64), got {x.dtype}; convert it first, e.g. x.float()"
        )

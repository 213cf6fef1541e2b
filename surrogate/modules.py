"""The hard ops as ``nn.Module``s with a settable ``.estimator``.

``Sign("atan", alpha=2.0)``; ``layer.estimator = surrogate.estimator("ste")`` swaps in place and is
validated like the constructor. Modules hold no tensors, pickle, and compare equal by value (their
hash stays by identity, as ``named_modules()`` needs).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from surrogate.estimators import Estimator, resolve
from surrogate.functional import EstimatorLike, apply
from surrogate.hardops import ROUND, SIGN, STEP, ArgmaxOp, check_dim_type, dim_error, dim_in_range


class HardOp(nn.Module):
    """Base of the op modules: an op name, an estimator, and the relaxed switch."""

    op_name: ClassVar[str]

    def __init__(self, estimator: EstimatorLike = "ste", *, relaxed: bool = False, **params: Any):
        super().__init__()
        self._relaxed = bool(relaxed)
        self._estimator = resolve(self.op_name, estimator, params, self._relaxed)

    @property
    def estimator(self) -> Estimator:
        return self._estimator

    @estimator.setter
    def estimator(self, value: EstimatorLike) -> None:
        self._estimator = resolve(self.op_name, value, {}, self._relaxed)

    @property
    def relaxed(self) -> bool:
        return self._relaxed

    @relaxed.setter
    def relaxed(self, value: bool) -> None:
        resolve(self.op_name, self._estimator, {}, bool(value))
        self._relaxed = bool(value)

    def _config(self) -> tuple:
        return (self._estimator, self._relaxed)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._config() == other._config()

    __hash__ = nn.Module.__hash__

    def extra_repr(self) -> str:
        return repr(self._estimator) + (", relaxed=True" if self._relaxed else "")


class ChildEstimator:
    """The ``estimator`` of a layer that runs its hard op through a child module (a binary
    layer's ``binarize``, a quantizer's ``round``, a neuron's ``spike``): reading it reads the
    child's, setting it sets the child's (validated as the child validates)."""

    def __init__(self, child: str):
        self.child = child

    def __get__(self, layer: nn.Module | None, owner: type | None = None) -> Any:
        if layer is None:
            return self
        return getattr(layer, self.child).estimator

    def __set__(self, layer: nn.Module, value: EstimatorLike) -> None:
        getattr(layer, self.child).estimator = value


class Step(HardOp):
    """``surrogate.step`` as a module."""

    op_name = "step"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply(STEP, x, self._estimator, self._relaxed)


class Sign(HardOp):
    """``surrogate.sign`` as a module."""

    op_name = "sign"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply(SIGN, x, self._estimator, self._relaxed)


class Round(HardOp):
    """``surrogate.round`` as a module."""

    op_name = "round"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply(ROUND, x, self._estimator, self._relaxed)


class ArgMax(HardOp):
    """``surrogate.argmax`` as a module; samples (``gumbel``, ``reinmax``) only in training mode."""

    op_name = "argmax"

    def __init__(
        self,
        estimator: EstimatorLike = "ste",
        dim: int = -1,
        *,
        relaxed: bool = False,
        **params: Any,
    ):
        super().__init__(estimator, relaxed=relaxed, **params)
        self.dim = check_dim_type(type(self).__name__, dim)  # its range is checked in forward

    def _config(self) -> tuple:
        return (*super()._config(), self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not dim_in_range(self.dim, x):
            raise dim_error(f"{type(self).__name__}({self.extra_repr()})", self.dim, x)
        return apply(ArgmaxOp(self.dim, self.training), x, self._estimator, self._relaxed)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}"

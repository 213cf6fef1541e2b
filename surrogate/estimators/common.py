"""Estimators that apply to every hard op: PyTorch's zero gradient and the straight-through one."""

from __future__ import annotations

import torch

from surrogate.estimators.base import ARGMAX_OPS, SCALAR_OPS, Estimator, register


@register
class Zero(Estimator):
    """``none``: gradient 0 everywhere, what PyTorch gives ``sign`` and ``round`` (the baseline)."""

    name = "none"
    ops = SCALAR_OPS | ARGMAX_OPS

    def save(self, op, x):
        return ()

    def grad(self, op, g):
        return torch.zeros_like(g)


@register
class StraightThrough(Estimator):
    """``ste``: the incoming gradient passes unchanged, for every op (not scaled by the jump).

    Straight-through estimator, Bengio, Léonard & Courville 2013, arXiv:1308.3432.
    """

    name = "ste"
    ops = SCALAR_OPS | ARGMAX_OPS

    def save(self, op, x):
        return ()

    def grad(self, op, g):
        return g

"""The library's own hard-op modules whose estimator is ``none`` (PyTorch's zero gradient).

A ``surrogate.Step``, ``Sign``, ``Round`` or ``ArgMax`` (also the ``binarize`` of a
``BinaryConv2d`` and the ``round`` of a ``Quantize``) runs its op in the library's own
``autograd.Function``, which the recorder does not look into: with the estimator ``none``, chosen
on purpose or by a config, what it cuts would read as an unrecognised op. So audit hooks these
modules' forwards (``recording``: each call's grad-carrying inputs, numbered as the recorder
numbers calls) and gives them ``ste`` in its healed pass (``healed``), as it heals torch's hard
ops; a dead parameter upstream of such a call that the healed pass revives is attributed to it
(``surrogate.audit.attribution``). Modules whose estimator passes a gradient are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from surrogate.audit.findings import ROOT
from surrogate.estimators import estimator
from surrogate.modules import ArgMax, HardOp, Round, Sign, Step

Tensor = torch.Tensor
ZERO_GRADIENT = "none"
CLASSES = {cls.op_name: cls.__name__ for cls in (Step, Sign, Round, ArgMax)}


@dataclass(eq=False)
class ModuleCall:
    """One call of a library module with a zero-gradient estimator: its dotted ``module`` path,
    ``op`` (``sign``), ``estimator`` name, grad-carrying ``inputs`` and the recorder's call count
    when it returned (``created``, the forward order it shares with ``Event``)."""

    module: str
    op: str
    estimator: str
    inputs: list[Tensor]
    created: int

    @property
    def cause(self) -> str:
        """``zero gradient by surrogate.Sign at features.4.binarize (estimator 'none')``."""
        module = f"surrogate.{CLASSES[self.op]} at {self.module or ROOT}"
        return f"zero gradient by {module} (estimator {self.estimator!r})"


class ZeroModules:
    """The ``HardOp`` modules of ``model`` whose estimator is ``none``; ``calls`` what they read
    in the forward ``recording`` watched."""

    def __init__(self, model: nn.Module):
        self.modules = [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(m, HardOp) and m.estimator.name == ZERO_GRADIENT
        ]
        self.calls: list[ModuleCall] = []

    @contextmanager
    def recording(self, count: Callable[[], int]) -> Iterator[None]:
        """Forward hooks that write down each call (``count()``: the recorder's call number)."""

        def hook(name: str, module: HardOp) -> Callable:
            def record(_, args, output) -> None:
                inputs = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
                self.calls.append(
                    ModuleCall(name, module.op_name, module.estimator.name, inputs, count())
                )

            return record

        handles = [m.register_forward_hook(hook(name, m)) for name, m in self.modules]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def healed(self) -> Iterator[None]:
        """These modules with the estimator ``ste`` (same forward), their own restored after."""
        saved = [(m, m.estimator) for _, m in self.modules]
        ste = estimator("ste")
        try:
            for m, _ in saved:
                m.estimator = ste
            yield
        finally:
            for m, est in saved:
                m.estimator = est

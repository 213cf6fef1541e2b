"""``ApplyEstimators``: a Lightning callback that gives any LightningModule's hard ops the
estimators of an op config.

    ops = {"sign": {"name": "atan"}, "argmax": {"name": "softmax", "tau": 0.5}}
    trainer = pl.Trainer(callbacks=[ApplyEstimators(ops, method="intercept")])

``ops`` has the shape of the config group ``op`` (``configs/op/*.yaml``): per op a node
``{name, relaxed, <params>}``; ops left out are left alone. ``method`` says how the estimators
reach the model (the config key ``model.apply_estimators``):

- ``swap``: at setup, ``surrogate.swap`` sets the estimator of every ``surrogate.Step``, ``Sign``,
  ``Round`` and ``ArgMax`` module in it (a model built from this library's modules).
- ``intercept``: every training, validation, test and predict batch runs under
  ``surrogate.intercept``, so plain ``torch.sign``, ``torch.heaviside``, ``torch.round`` and
  argmax + ``F.one_hot`` get the estimators' backward (a model written without this library).
  Training batches run with ``training=True``, so ``gumbel`` and ``reinmax`` sample there.
- ``both``: swap, then intercept (a model that mixes the two).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl

from surrogate import intercept, swap
from surrogate.intercept import Intercept
from surrogate.op_estimators import parse_ops
from surrogate.training.validate import check_method


class ApplyEstimators(pl.Callback):
    """Applies ``ops`` to the LightningModule by ``method``; see the module docstring."""

    def __init__(self, ops: Mapping[str, Mapping[str, Any]], method: str = "intercept"):
        check_method(method)
        self.estimators = parse_ops(ops, "op")
        self.method = method
        self._mode: Intercept | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.method in ("swap", "both"):
            check_method(self.method, pl_module)
            swap(pl_module, **self.estimators)

    def _enter(self, pl_module: pl.LightningModule) -> None:
        self._exit()
        if self.method != "swap":
            self._mode = intercept(**self.estimators, training=pl_module.training)
            self._mode.__enter__()

    def _exit(self) -> None:
        mode, self._mode = self._mode, None
        if mode is not None:
            mode.__exit__(None, None, None)

    # Batch hooks: (trainer, pl_module, [outputs,] batch, batch_idx[, dataloader_idx]).
    def on_train_batch_start(self, trainer, pl_module, *args, **kwargs) -> None:
        self._enter(pl_module)

    def on_train_batch_end(self, trainer, pl_module, *args, **kwargs) -> None:
        self._exit()

    on_validation_batch_start = on_test_batch_start = on_predict_batch_start = on_train_batch_start
    on_validation_batch_end = on_test_batch_end = on_predict_batch_end = on_train_batch_end

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._exit()

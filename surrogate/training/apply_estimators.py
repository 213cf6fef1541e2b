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

``schedule`` (the config group ``schedule``, see ``schedule_config``) makes the estimators change
during training: each training batch runs with the estimators in force at its (step, epoch);
validation, test and predict batches run the parameters in force with every op as hard (or
relaxed) as it ends the schedule, so a relaxed warm-up is measured on the network it trains for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl

from surrogate import Estimator, intercept, swap
from surrogate.intercept import Intercept
from surrogate.op_estimators import parse_ops
from surrogate.schedules import EstimatorSchedule
from surrogate.training.schedule_config import build_schedule
from surrogate.training.validate import check_method

Estimators = dict[str, tuple[Estimator, bool]]


class ApplyEstimators(pl.Callback):
    """Applies ``ops`` to the LightningModule by ``method``, as ``schedule`` has them over time;
    see the module docstring."""

    def __init__(
        self,
        ops: Mapping[str, Mapping[str, Any]],
        method: str = "intercept",
        schedule: Mapping[str, Any] | None = None,
    ):
        check_method(method)
        self.ops, self.method, self.schedule_config = ops, method, schedule
        self.estimators = parse_ops(ops, "op")
        build_schedule(ops, schedule)  # refuse a bad schedule now, not at fit
        self.schedule: EstimatorSchedule | None = None
        self._relaxed_at_end: dict[str, bool] = {}
        self._mode: Intercept | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        steps = trainer.estimated_stepping_batches if stage == "fit" else 1
        schedule = build_schedule(self.ops, self.schedule_config, trainer.max_epochs, steps)
        self.schedule = None if schedule.is_constant else schedule
        self._relaxed_at_end = {op: relaxed for op, (_, relaxed) in schedule.final().items()}
        if self.method in ("swap", "both"):
            check_method(self.method, pl_module)
            swap(pl_module, **self.estimators)

    def in_force(self, trainer: pl.Trainer, training: bool) -> Estimators:
        """The estimators of a batch now: as scheduled for training; for evaluation with each
        op as hard (or relaxed) as it ends the schedule."""
        if self.schedule is None:
            return self.estimators
        step, epoch = max(trainer.global_step, 0), max(trainer.current_epoch, 0)
        now = self.schedule.at(step, epoch)
        if training:
            return now
        return {op: (est, self._relaxed_at_end[op]) for op, (est, _) in now.items()}

    def _enter(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._exit()
        estimators = self.in_force(trainer, pl_module.training)
        if self.schedule is not None and self.method in ("swap", "both"):
            swap(pl_module, **estimators)
        if self.method != "swap":
            self._mode = intercept(**estimators, training=pl_module.training)
            self._mode.__enter__()

    def _exit(self) -> None:
        mode, self._mode = self._mode, None
        if mode is not None:
            mode.__exit__(None, None, None)

    # Batch hooks: (trainer, pl_module, [outputs,] batch, batch_idx[, dataloader_idx]).
    def on_train_batch_start(self, trainer, pl_module, *args, **kwargs) -> None:
        self._enter(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, *args, **kwargs) -> None:
        self._exit()

    on_validation_batch_start = on_test_batch_start = on_predict_batch_start = on_train_batch_start
    on_validation_batch_end = on_test_batch_end = on_predict_batch_end = on_train_batch_end

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._exit()

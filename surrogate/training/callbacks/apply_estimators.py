"""``ApplyEstimators``: a Lightning callback that gives any LightningModule's hard ops the
estimators of an op config: the one way estimators reach a network in this app.

    ops = {"sign": {"name": "atan"}, "argmax": {"name": "softmax", "tau": 0.5}}
    trainer = pl.Trainer(callbacks=[ApplyEstimators(ops, method="intercept")])

``ops`` has the shape of the config group ``op`` (``configs/op/*.yaml``; see
``surrogate.training.config.op``), or is that config already parsed (a ``HardOpConfig``); ops left
out are left alone. ``method`` says how the estimators reach the model (the config key
``model.apply_estimators``):

- ``swap``: at setup, every ``surrogate.Step``, ``Sign``, ``Round`` and ``ArgMax`` module of the
  network (the LightningModule's ``net``, else the module itself) takes its op's estimator, or
  that of the last ``op.layers`` entry matching its path (a model built from this library's
  modules).
- ``intercept``: every training, validation, test and predict batch runs under
  ``surrogate.intercept``, so plain ``torch.sign``, ``torch.heaviside``, ``torch.round`` and
  argmax + ``F.one_hot`` get the estimators' backward (a model written without this library).
  Training batches run with ``training=True``, so ``gumbel`` and ``reinmax`` sample there.
- ``both``: swap, then intercept (a model that mixes the two).

``schedule`` (the config group ``schedule``, see ``surrogate.training.config.schedule``) makes the
estimators change during training: each training batch runs with the estimators in force at its
(step, epoch), a layer's own estimator taking the scheduled parameters it has; validation, test
and predict batches run the parameters in force with every op as hard (or relaxed) as it ends the
schedule, so a relaxed warm-up is measured on the network it trains for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytorch_lightning as pl
from torch import nn

from surrogate import EstimatorSchedule, OpEstimator, intercept, swap
from surrogate.training.config.op import HardLayer, HardOpConfig, check_swap
from surrogate.training.config.schedule import build_schedule, layer_schedule
from surrogate.training.models import check_method


def network(pl_module: nn.Module) -> nn.Module:
    """The network a LightningModule runs: its ``net``, or the module itself."""
    return getattr(pl_module, "net", pl_module)


@dataclass
class _Layer:
    """A hard-op layer, its estimators over time (a schedule of its own for an ``op.layers``
    entry, else its op's) and whether it ends the schedule relaxed."""

    layer: HardLayer
    schedule: EstimatorSchedule
    relaxed_at_end: bool

    def choice(self, step: int, epoch: int, training: bool) -> OpEstimator:
        return _in_force(self.schedule, self.layer.op, step, epoch, training, self.relaxed_at_end)

    def final(self) -> OpEstimator:
        return self.schedule.final()[self.layer.op]


def _in_force(schedule, op: str, step: int, epoch: int, training: bool, relaxed_at_end: bool):
    """``op``'s estimator at (step, epoch): as scheduled for training; for evaluation as hard (or
    relaxed) as it ends the schedule."""
    choice = schedule.at(step, epoch)[op]
    return choice if training else choice._replace(relaxed=relaxed_at_end)


class ApplyEstimators(pl.Callback):
    """Applies ``ops`` to the LightningModule by ``method``, as ``schedule`` has them over time;
    see the module docstring."""

    def __init__(
        self,
        ops: HardOpConfig | Mapping[str, Any],
        method: str = "intercept",
        schedule: Mapping[str, Any] | None = None,
    ):
        check_method(method)
        self.config = ops if isinstance(ops, HardOpConfig) else HardOpConfig.parse(ops, None)
        self.method, self.schedule_config = method, schedule
        self._layer_params = self.config.layer_params()
        build_schedule(
            self.config.ops, schedule, layer_params=self._layer_params
        )  # now, not at fit
        self.schedule: EstimatorSchedule | None = None  # the ops' schedule, None if constant
        self.layers: list[_Layer] = []
        self._changing: list[_Layer] = []
        self._ops = EstimatorSchedule(self.config.ops)
        self._relaxed_at_end: dict[str, bool] = {}
        self._mode = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        epochs = trainer.max_epochs
        steps = trainer.estimated_stepping_batches if stage == "fit" else 1
        self._ops = build_schedule(
            self.config.ops, self.schedule_config, epochs, steps, self._layer_params
        )
        self.schedule = None if self._ops.is_constant else self._ops
        self._relaxed_at_end = {op: choice.relaxed for op, choice in self._ops.final().items()}
        self.layers = []
        if self.method == "intercept":
            return
        net = network(pl_module)
        for layer in self.config.hard_layers(net):
            schedule = self._ops
            if layer.rule is not None:
                schedule = layer_schedule(layer, self.schedule_config, epochs, steps)
            relaxed = schedule.final()[layer.op].relaxed
            self.layers.append(_Layer(layer, schedule, relaxed))
        check_swap(self.method, net, self.layers, self.config.reference)
        self._changing = [item for item in self.layers if not item.schedule.is_constant]
        self._set(self.layers, trainer, training=True)

    # Every stage starts with the config's estimators, whatever a restored checkpoint held.
    def on_fit_start(self, trainer, pl_module) -> None:
        self._set(self.layers, trainer, training=True)

    def on_test_start(self, trainer, pl_module) -> None:
        self._set(self.layers, trainer, training=False)

    on_predict_start = on_test_start

    def layer_estimators(self) -> dict[str, dict[str, Any]]:
        """Each hard-op layer's estimator as it ends the run: ``{path: {op, name, relaxed,
        <parameters>}}`` (for ``metrics.json``)."""
        return {
            item.layer.path: replace(item.layer, choice=item.final()).describe()
            for item in self.layers
        }

    def _set(self, layers: list[_Layer], trainer: pl.Trainer, training: bool) -> None:
        step, epoch = max(trainer.global_step, 0), max(trainer.current_epoch, 0)
        for item in layers:
            swap(item.layer.module, **{item.layer.op: item.choice(step, epoch, training)})

    def in_force(self, trainer: pl.Trainer, training: bool) -> dict[str, OpEstimator]:
        """Each op's estimator for a batch now: as scheduled for training; for evaluation with
        each op as hard (or relaxed) as it ends the schedule."""
        if self.schedule is None:  # every batch: nothing to compute when nothing changes
            return self.config.ops
        now = self.schedule.at(max(trainer.global_step, 0), max(trainer.current_epoch, 0))
        if training:
            return now
        return {op: c._replace(relaxed=self._relaxed_at_end[op]) for op, c in now.items()}

    def _enter(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._exit()
        self._set(self._changing, trainer, pl_module.training)
        if self.method != "swap":
            estimators = self.in_force(trainer, pl_module.training)
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

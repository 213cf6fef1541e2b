"""The LightningModule: a network trained on a task (``HardOpModule``).

The network is the one ``model`` names (``surrogate.training.models``), built once, here; the task
(``surrogate.training.tasks``) says what a batch is, the loss and the headline metric. The hard
ops take their estimators from the ``ApplyEstimators`` callback, whatever the network.

Every constructor argument is a plain value (dicts, numbers, strings), so ``save_hyperparameters``
stores no modules or partials and a checkpoint loads without this app's config layer.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from surrogate import OpEstimator, available, clip_latent_weights, swap
from surrogate.training.config.op import describe_layer, hard_op_modules
from surrogate.training.data import DataShape
from surrogate.training.data.datamodule import epoch_seed
from surrogate.training.models import build_model
from surrogate.training.optimization import build_optimizer, build_scheduler, check_optimization
from surrogate.training.tasks import task_class


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite: the run stops, reporting no result."""


class RunningMean:
    """A weighted running mean of a loss kept on the loss's device: adding a step costs no host
    sync. Sum of ``value * weight`` and of ``weight`` since the last ``reset``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.weight = 0

    def add(self, value: torch.Tensor, weight: int = 1) -> None:
        """Add a detached ``value`` with ``weight`` (e.g. a batch's mean loss and its size)."""
        value = value.detach()
        self.total = self.total + (value if weight == 1 else value * weight)
        self.weight += weight

    def mean(self) -> torch.Tensor | float:
        """The weighted mean, on the loss's device (0.0 when nothing was added)."""
        return self.total / max(1, self.weight)

    def item(self) -> float:
        """The weighted mean as a Python float, divided in double precision (a host sync)."""
        return float(self.total) / max(1, self.weight)


class HardOpModule(pl.LightningModule):
    """The network ``model`` names, for inputs of ``input_shape`` and ``num_classes`` classes,
    trained on ``task`` (the config node ``task``: ``{name: classification}``) with the optimizer
    and schedule of ``model``.

    ``seed`` seeds the global RNG at the start of every training epoch from (seed, epoch, rank),
    so stochastic estimators draw the same noise whether or not the run was resumed.
    """

    def __init__(
        self,
        model: dict[str, Any],
        task: dict[str, Any],
        input_shape: list[int],
        num_classes: int,
        seed: int = 0,
    ):
        super().__init__()
        check_optimization(model["optimizer"], model["scheduler"])
        self.save_hyperparameters()
        self.net = build_model(model, DataShape(tuple(input_shape), num_classes))
        self.task = task_class(task["name"])(num_classes)
        self.val_metric = self.task.make_metric()
        self.test_metric = self.task.make_metric()
        # The epoch's training loss per sample. Made here, not only at an epoch's start: a run
        # resumed mid-epoch skips that hook.
        self.epoch_loss = RunningMean()

    def forward(self, x: Any) -> Any:
        return self.net(x)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint carries each hard-op layer's estimator, as it carries the weights."""
        checkpoint["layer_estimators"] = {
            path: describe_layer(m.op_name, OpEstimator(m.estimator, m.relaxed))
            for path, m in hard_op_modules(self.net)
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Give each hard-op layer the estimator the checkpoint holds for it (a checkpoint from
        ``load_from_checkpoint`` evaluates as it was trained; a resumed run's ``ApplyEstimators``
        then sets the config's)."""
        saved = checkpoint.get("layer_estimators", {})
        for path, module in hard_op_modules(self.net):
            if saved.get(path, {}).get("name") in available():  # a user's own bump stays
                node = {k: v for k, v in saved[path].items() if k != "op"}
                swap(module, **{module.op_name: node})

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(epoch_seed(self.hparams.seed, self.current_epoch, self.global_rank))
        self.epoch_loss.reset()

    def training_step(self, batch, batch_idx):
        x, target = self.task.split(batch)
        loss = self.task.loss(self(x), target)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(
                f"the training loss is {loss.item()} at step {self.global_step + 1} (epoch "
                f"{self.current_epoch + 1})"
            )
        self.epoch_loss.add(loss, len(target))
        # self.log costs about a millisecond a call, a fifth of a step of the digits CNN on a CPU:
        # log the step loss only on the steps whose metrics the loggers write.
        every = self.trainer.log_every_n_steps
        if every > 0 and (self.global_step + 1) % every == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        """BinaryConnect: the latent binary weights back into [−c, c] after the step, where the
        model config sets ``latent_clip: c``."""
        bound = self.hparams.model.get("latent_clip")
        if bound is not None:
            clip_latent_weights(self.net, bound)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's mean training loss per sample (Lightning's on_epoch mean)."""
        if self.epoch_loss.weight:
            mean = self.epoch_loss.mean()
            self.log("train/loss_epoch", mean, on_epoch=True, prog_bar=True, sync_dist=True)
        self.epoch_loss.reset()

    def validation_step(self, batch, batch_idx):
        x, target = self.task.split(batch)
        output = self(x)
        self.task.update(self.val_metric, output, target)
        self.log("val/loss", self.task.loss(output, target), on_epoch=True, sync_dist=True)
        self.log(f"val/{self.task.metric}", self.val_metric, on_epoch=True, prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, target = self.task.split(batch)
        self.task.update(self.test_metric, self(x), target)
        self.log(f"test/{self.task.metric}", self.test_metric, on_epoch=True)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.net, self.hparams.model["optimizer"])
        schedule = build_scheduler(
            optimizer, self.hparams.model["scheduler"], self.trainer.max_epochs
        )
        if schedule is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }

"""The LightningModule: a classifier (``HardCNN`` or ``PlainCNN``) trained with cross-entropy.

Every constructor argument is a plain value (dicts, numbers, strings), so ``save_hyperparameters``
stores no modules or partials and a checkpoint loads without this app's config layer.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from surrogate.op_estimators import parse_ops, summary
from surrogate.training.networks import build_net
from surrogate.training.optimization import build_optimizer, build_scheduler, check_optimization
from surrogate.training.running_mean import RunningMean
from surrogate.training.seeding import epoch_seed


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite: the run stops, reporting no result."""


class HardNetClassifier(pl.LightningModule):
    """Classifier whose hard ops take their backward from ``ops``, the config group ``op``
    (``{op: {name, relaxed, <params>}}``, see ``surrogate.op_estimators``).

    ``net`` holds ``name`` (``cnn`` or ``plain_cnn``, see ``networks.build_net``) and the network's
    arguments. ``cnn`` builds its hard ops with ``ops``; ``plain_cnn`` has plain torch ops, which
    ``ops`` reaches through the ``ApplyEstimators`` callback.

    ``seed`` seeds the global RNG at the start of every training epoch from (seed, epoch, rank),
    so stochastic estimators draw the same noise whether or not the run was resumed.
    """

    def __init__(
        self,
        ops: dict[str, dict[str, Any]],
        net: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        seed: int = 0,
    ):
        super().__init__()
        check_optimization(optimizer, scheduler)
        self.save_hyperparameters()
        estimators = parse_ops(ops, "op", default="ste")
        self.net = build_net(estimators, in_channels, num_classes, image_size, **net)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        # The epoch's training loss per sample. Made here, not only at an epoch's start: a run
        # resumed mid-epoch skips that hook.
        self.epoch_loss = RunningMean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(epoch_seed(self.hparams.seed, self.current_epoch, self.global_rank))
        self.epoch_loss.reset()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        if not torch.isfinite(loss):
            self._stop(loss)
        self.epoch_loss.add(loss, len(y))
        # self.log costs about a millisecond a call, a fifth of a step of the digits CNN on a CPU:
        # log the step loss only on the steps whose metrics the loggers write.
        every = self.trainer.log_every_n_steps
        if every > 0 and (self.global_step + 1) % every == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _stop(self, loss: torch.Tensor) -> None:
        ops = summary(parse_ops(self.hparams.ops, "op", default="ste"))
        raise NonFiniteLoss(
            f"the training loss is {loss.item()} at step {self.global_step + 1} (epoch "
            f"{self.current_epoch + 1}) with op {ops}, model.optimizer.lr="
            f"{self.hparams.optimizer['lr']:g}; try a lower learning rate, a gentler estimator "
            "(a smaller beta or alpha, a larger width or sigma), or trainer.gradient_clip_val"
        )

    def on_train_epoch_end(self) -> None:
        """Log the epoch's mean training loss per sample (Lightning's on_epoch mean)."""
        if self.epoch_loss.weight:
            mean = self.epoch_loss.mean()
            self.log("train/loss_epoch", mean, on_epoch=True, prog_bar=True, sync_dist=True)
        self.epoch_loss.reset()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_acc(self(x), y)
        self.log("test/acc", self.test_acc, on_epoch=True)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.parameters(), self.hparams.optimizer)
        schedule = build_scheduler(optimizer, self.hparams.scheduler, self.trainer.max_epochs)
        if schedule is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }

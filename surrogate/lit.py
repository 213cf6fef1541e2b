"""The LightningModule: a classifier (``HardCNN`` or ``PlainCNN``) trained with cross-entropy.

Every constructor argument is a plain value (dicts, numbers, strings), so ``save_hyperparameters``
stores no modules or partials and a checkpoint loads without this project's config layer.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from surrogate.config import estimators_from_config
from surrogate.model import build_net

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("cosine", "none")


def check_optimization(optimizer: dict[str, Any], scheduler: dict[str, Any]) -> None:
    if optimizer["name"] not in OPTIMIZERS:
        raise ValueError(
            f"model.optimizer.name: unknown {optimizer['name']!r}; choose one of: "
            f"{', '.join(OPTIMIZERS)}"
        )
    if scheduler["name"] not in SCHEDULERS:
        raise ValueError(
            f"model.scheduler.name: unknown {scheduler['name']!r}; choose one of: "
            f"{', '.join(SCHEDULERS)}"
        )
    if not optimizer["lr"] > 0:
        raise ValueError(f"model.optimizer.lr must be > 0, got {optimizer['lr']!r}")


def build_optimizer(params, optimizer: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer that the config node ``model.optimizer`` names, over ``params``; ``momentum``
    goes to SGD only."""
    opt = dict(optimizer)
    cls = OPTIMIZERS[opt.pop("name")]
    if cls is not torch.optim.SGD:
        opt.pop("momentum", None)
    return cls(params, **opt)


class HardNetClassifier(pl.LightningModule):
    """Classifier whose hard ops take their backward from ``ops`` (see ``surrogate.config``).

    ``net`` holds ``name`` (``cnn`` or ``plain_cnn``, see ``surrogate.model.build_net``) and the
    network's arguments. ``cnn`` builds its hard ops with ``ops``; ``plain_cnn`` has plain torch
    ops, which ``ops`` reaches through ``surrogate.surrogate_callback.SurrogateCallback``.

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
        seed: int = 0,
    ):
        super().__init__()
        check_optimization(optimizer, scheduler)
        self.save_hyperparameters()
        self.net = build_net(estimators_from_config(ops), in_channels, num_classes, **net)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        # The epoch's training loss, summed over samples on the loss's device (no sync per step).
        # Set here, not only at an epoch's start: a run resumed mid-epoch skips that hook.
        self._loss_sum: torch.Tensor | float = 0.0
        self._loss_samples = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(
            (self.hparams.seed * 1_000_003 + self.current_epoch) * 64 + self.global_rank
        )
        self._loss_sum, self._loss_samples = 0.0, 0

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self._loss_sum = self._loss_sum + loss.detach() * len(y)
        self._loss_samples += len(y)
        # self.log costs about a millisecond a call, a fifth of a step of the digits CNN on a CPU:
        # log the step loss only on the steps whose metrics the loggers write.
        every = self.trainer.log_every_n_steps
        if every > 0 and (self.global_step + 1) % every == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        """Log the epoch's mean training loss per sample (Lightning's on_epoch mean)."""
        if self._loss_samples:
            mean = self._loss_sum / self._loss_samples
            self.log("train/loss_epoch", mean, on_epoch=True, prog_bar=True, sync_dist=True)
        self._loss_sum, self._loss_samples = 0.0, 0

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
        if self.hparams.scheduler["name"] == "none":
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, self.trainer.max_epochs)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }

"""``task=classification``: one class label per input; cross-entropy of the network's logits
(batch x classes), judged by accuracy (``test_acc``, higher is better)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from surrogate.training.tasks import Task, register_task


@register_task
class Classification(Task):
    name = "classification"
    metric = "acc"
    higher_is_better = True

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def make_metric(self):
        from torchmetrics.classification import MulticlassAccuracy

        return MulticlassAccuracy(self.num_classes, average="micro")

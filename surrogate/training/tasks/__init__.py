"""Tasks: what a batch is, the loss, and the metric a run is judged by.

The LightningModule takes all three from its task, so a network whose output is a sequence over
time, or a reconstruction with a likelihood, plugs in with a task of its own. A task is one module
of this package registering a ``Task`` subclass (``@register_task``); ``configs/task/<name>.yaml``
selects it. Every module of this package is imported when the package is.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:  # torchmetrics takes seconds to import; the config check needs none of it
    from torchmetrics import Metric


class Task:
    """Base of the tasks. ``metric`` names the headline metric (logged as ``val/<metric>`` and
    ``test/<metric>``, recorded as ``test_<metric>`` in ``metrics.json``) and
    ``higher_is_better`` its direction; the best checkpoint, the report and its significance
    marks follow them."""

    name: ClassVar[str]
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    # How the data reach the network: ``standard`` (each channel to mean 0, std 1 over the
    # training split) or ``unit`` (pixel intensities in [0, 1], for a likelihood of the pixels).
    scale: ClassVar[str] = "standard"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def split(self, batch: Any) -> tuple[Any, Any]:
        """``(inputs, target)`` of a batch."""
        inputs, target = batch
        return inputs, target

    def loss(self, output: Any, target: Any) -> torch.Tensor:
        """The training loss, a mean over the batch."""
        raise NotImplementedError

    def make_metric(self) -> Metric:
        """A fresh metric (a torchmetrics ``Metric``) that ``update`` feeds."""
        raise NotImplementedError

    def update(self, metric: Metric, output: Any, target: Any) -> None:
        metric.update(output, target)

    @property
    def mode(self) -> str:
        """``max`` or ``min``: how Lightning's checkpoint callbacks read the metric."""
        return "max" if self.higher_is_better else "min"

    def illustrate(self, net: torch.nn.Module, batch: Any, output_dir: Path) -> None:
        """Write pictures of the trained network on a test ``batch`` into ``output_dir`` (the
        run calls it once, after testing); nothing by default."""

    def headline(self) -> dict[str, Any]:
        """What ``metrics.json`` says of the headline metric."""
        return {"metric": f"test_{self.metric}", "higher_is_better": self.higher_is_better}


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` the task ``task.name=cls.name``."""
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"a task named {cls.name!r} is already registered")
    TASKS[cls.name] = cls
    return cls


def task_class(name: str) -> type[Task]:
    """The task registered as ``name``; ValueError naming the registered ones otherwise."""
    if name not in TASKS:
        raise ValueError(f"task.name: unknown {name!r}; choose one of: {', '.join(sorted(TASKS))}")
    return TASKS[name]


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

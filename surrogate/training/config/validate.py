"""The config checked before a run loads data or writes a file: every number's range, the
estimators, the model, the task, the optimizer, how the estimators reach the network, the per-layer
estimators, every key against the schema (``config.keys``) and, if asked, the data files and the
checkpoint (``config.checkpoint``: that it opens, fits the network, the data and the op).

Imports no Lightning, so that a command line with a bad value fails within the time it takes to
import torch and Hydra. The network is looked at as a shape-only copy on PyTorch's meta device
(no memory, no random numbers drawn): its hard-op layers are what ``op.layers`` must match.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
from torch import nn

from surrogate.training.config.checkpoint import check_checkpoint
from surrogate.training.config.keys import check_keys
from surrogate.training.config.op import HardOpConfig, check_swap
from surrogate.training.config.schedule import build_schedule, layer_schedule
from surrogate.training.data import check_files, dataset
from surrogate.training.data.base import check_scale
from surrogate.training.models import build_model, check_method, data_scale, model
from surrogate.training.optimization import check_fits, check_optimization
from surrogate.training.ranges import check_estimators_in_float32, check_ranges
from surrogate.training.tasks import task_class


def check_loggers(logger: dict[str, Any]) -> None:
    """Refuse ``logger.tensorboard`` where TensorBoard is not installed."""
    found = any(importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX"))
    if logger.get("tensorboard") and not found:
        raise ValueError(
            "logger.tensorboard: TensorBoard is not installed; install it with "
            'pip install -e ".[tensorboard]", or choose logger=csv'
        )


def check_optimized_metric(name: str | None, task) -> None:
    """Refuse an ``optimized_metric`` the run will not record: it names the task's metric."""
    valid = (f"best_val_{task.metric}", f"test_{task.metric}")
    if name is not None and name not in valid:
        raise ValueError(
            f"optimized_metric: {name!r} is not recorded by task={task.name}; choose one of: "
            f"{', '.join(valid)}, or null (best_val_{task.metric})"
        )


def shape_only(config: dict[str, Any], shape) -> nn.Module:
    """The network of ``config`` built on the meta device (on the CPU where its constructor
    needs real tensors), without drawing from the global random state."""
    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                return build_model(config, shape)
        except (NotImplementedError, RuntimeError):
            return build_model(config, shape)


def check_network(ops: HardOpConfig, method: str, net: nn.Module, schedule, epochs: int) -> None:
    """Refuse ``swap`` on a network without surrogate's modules, and an ``op.layers`` entry that
    matches none of its hard-op layers, whose estimator does not fit the layer's op or cannot
    follow the schedule."""
    if ops.layers and method == "intercept":
        raise ValueError(
            "op.layers: per-layer estimators set surrogate's modules, which "
            "model.apply_estimators=intercept leaves alone; choose swap or both"
        )
    layers = ops.hard_layers(net)
    for layer in layers:
        if layer.rule is not None:
            layer_schedule(layer, schedule, epochs, 1)
    check_swap(method, net, layers, ops.reference)


def validate(config: dict[str, Any], files: bool = True) -> HardOpConfig:
    """Refuse a bad config before any data is loaded: every number's range, the estimators, the
    model, the task, the optimizer and, if ``files``, the data and checkpoint files. Returns the
    op config parsed."""
    check_keys(config)
    entry = model(config["model"]["name"])
    check_ranges(config, entry.config)
    ops = HardOpConfig.parse(config["op"])
    check_estimators_in_float32(ops.ops)
    entry.typed(config["model"])
    check_optimization(config["model"]["optimizer"], config["model"]["scheduler"])
    task = task_class(config["task"]["name"])
    check_optimized_metric(config.get("optimized_metric"), task)
    mode = config["callbacks"]["mode"]
    if mode not in (None, "max", "min"):
        raise ValueError(f"callbacks.mode: unknown {mode!r}; choose max, min or null (the task's)")
    data = config["data"]
    source = dataset(data["name"])
    check_scale(source, data_scale(config["model"], task.scale))
    check_method(config["model"]["apply_estimators"])
    epochs, schedule = config["trainer"]["max_epochs"], config.get("schedule")
    if files or not source.shape_reads_files:
        shape = source.shape(**data)
        net = shape_only(config["model"], shape)
        check_network(ops, config["model"]["apply_estimators"], net, schedule, epochs)
        check_fits(net, config["model"]["optimizer"])
    check_loggers(config.get("logger", {}))
    build_schedule(ops.ops, schedule, epochs, 1, ops.layer_params())
    if not files:
        return ops
    check_files(**data)
    if config.get("ckpt_path") is not None:
        check_checkpoint(config, ops, net, shape)
    elif config.get("finetune"):
        raise ValueError("finetune: true fine-tunes a checkpoint; set ckpt_path to it")
    return ops

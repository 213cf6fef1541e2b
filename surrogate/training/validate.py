"""The config checked before a run loads data or writes a file: every number's range, the
estimators, the network's shape, the optimizer, how the estimators reach the network and, if asked,
the data and checkpoint files.

Imports no Lightning, so that a command line with a bad value fails within the time it takes to
import torch and Hydra.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from torch import nn

from surrogate import HardOp
from surrogate.op_estimators import parse_ops
from surrogate.training.config_ranges import check_estimators_in_float32, check_ranges
from surrogate.training.datasets import check_files, check_name
from surrogate.training.networks import build_net
from surrogate.training.optimization import check_optimization, split_model_config
from surrogate.training.schedule_config import build_schedule

METHODS = ("swap", "intercept", "both")


def check_method(method: str, model: nn.Module | None = None) -> None:
    """Refuse an unknown method, and ``swap`` on a model without surrogate modules."""
    if method not in METHODS:
        raise ValueError(
            f"model.apply_estimators: unknown {method!r}; choose one of: {', '.join(METHODS)}"
        )
    if (
        method == "swap"
        and model is not None
        and not any(isinstance(m, HardOp) for m in model.modules())
    ):
        raise ValueError(
            f"model.apply_estimators 'swap' finds no surrogate.Step/Sign/Round/ArgMax module in "
            f"{type(model).__name__}; for plain torch ops use 'intercept'"
        )


def check_loggers(logger: dict[str, Any]) -> None:
    """Refuse ``logger.tensorboard`` where TensorBoard is not installed."""
    found = any(importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX"))
    if logger.get("tensorboard") and not found:
        raise ValueError(
            "logger.tensorboard: TensorBoard is not installed; install it with "
            'pip install -e ".[tensorboard]", or choose logger=csv'
        )


def validate(config: dict[str, Any], files: bool = True) -> None:
    """Refuse a bad config before any data is loaded: every number's range, the estimators, the
    model's shape, the optimizer and, if ``files``, the data and checkpoint files."""
    check_ranges(config)
    estimators = parse_ops(config["op"], "op", default="ste")
    check_estimators_in_float32(estimators)
    net, optimizer, scheduler, method = split_model_config(config["model"])
    check_optimization(optimizer, scheduler)
    shape = check_name(config["data"]["name"])
    check_method(method, build_net(estimators, shape.in_channels, shape.num_classes,
                                   shape.image_size, **net))  # fmt: skip
    check_loggers(config.get("logger", {}))
    build_schedule(config["op"], config.get("schedule"), config["trainer"]["max_epochs"], 1)
    if not files:
        return
    data = config["data"]
    check_files(data["name"], data["root"], data["download"])
    ckpt = config.get("ckpt_path")
    if ckpt is not None and not Path(ckpt).is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint at {ckpt}")

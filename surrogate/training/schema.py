"""The typed schema of ``configs/``: every key and its type, so a typo in a key or a wrong type
fails when Hydra composes the config, before anything runs.

The values live in the YAML files alone (here every key is ``MISSING``), with two exceptions that
the YAML never states: an op node's ``relaxed`` (false) and estimator parameters (null: the
library's default). The parameter keys of an op node are not written here but read from the
library's registry of estimators, so a new estimator's parameter is a config key at once; whether
a value fits the chosen estimator is checked by the library (``surrogate.op_estimators``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from surrogate.estimators.base import REGISTRY


def _parameter_types() -> dict[str, type]:
    """Every estimator parameter's name and type (int or float), over the whole registry."""
    types: dict[str, type] = {}
    for cls in REGISTRY.values():
        for f in dataclasses.fields(cls):
            types[f.name] = int if f.metadata.get("integer") else float
    return types


EstimatorNode = dataclasses.make_dataclass(
    "EstimatorNode",
    [("name", str, MISSING), ("relaxed", bool, False)]
    + [(name, kind | None, None) for name, kind in _parameter_types().items()],
)
EstimatorNode.__doc__ = (
    "One hard op's estimator: its name, relaxed mode, and the estimators' parameters "
    "(null = the estimator's default)."
)


@dataclass
class OpConfig:
    step: EstimatorNode = field(default_factory=EstimatorNode)
    sign: EstimatorNode = field(default_factory=EstimatorNode)
    round: EstimatorNode = field(default_factory=EstimatorNode)
    argmax: EstimatorNode = field(default_factory=EstimatorNode)


@dataclass
class ScheduleConfig:
    """``relaxed_until_epoch``: k, or null; ``params``: ``{op or all: {parameter: schedule}}``, each
    schedule the fields of ``surrogate.Schedule`` (checked with the rest of the config by
    ``schedule_config.build_schedule``; here untyped, so that a command line can add one with
    ``+schedule.params.step.beta={kind: linear, start: 1, end: 8}``)."""

    relaxed_until_epoch: int | None = MISSING
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    momentum: float = MISSING


@dataclass
class SchedulerConfig:
    name: str = MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    apply_estimators: str = MISSING
    channels: list[int] = MISSING
    activations: list[str] = MISSING
    pooled_size: int | None = MISSING
    bottleneck: str | None = MISSING
    groups: int = MISSING
    categories: int = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    surrogate: str | None = None  # the old name of apply_estimators, still read (deprecated)


@dataclass
class DataConfig:
    name: str = MISSING
    root: str = MISSING
    download: bool = MISSING
    batch_size: int = MISSING
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    split_seed: int = MISSING
    num_workers: int = MISSING
    train_subset: int | None = MISSING


@dataclass
class TrainerConfig:
    max_epochs: int = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING
    strategy: str = MISSING
    precision: Any = MISSING
    deterministic: bool = MISSING
    log_every_n_steps: int = MISSING
    num_sanity_val_steps: int = MISSING
    val_check_interval: Any = MISSING
    enable_model_summary: bool = MISSING
    limit_train_batches: Any = MISSING
    limit_val_batches: Any = MISSING
    limit_test_batches: Any = MISSING
    gradient_clip_val: float | None = MISSING


@dataclass
class LoggerConfig:
    csv: bool = MISSING
    tensorboard: bool = MISSING


@dataclass
class CallbacksConfig:
    monitor: str = MISSING
    mode: str = MISSING
    progress_refresh_rate: int = MISSING
    diagnostics: bool = MISSING
    diagnostics_every: int = MISSING
    probe_size: int = MISSING


@dataclass
class PathsConfig:
    data_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class TrainConfig:
    op: OpConfig = field(default_factory=OpConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = MISSING
    threads: int = MISSING
    ckpt_path: str | None = MISSING
    optimized_metric: str = MISSING


def register() -> None:
    """Store the schema as ``train_schema``; ``configs/train.yaml`` lists it first."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


def upgrade(plain: dict[str, Any]) -> dict[str, Any]:
    """Move a deprecated key's value to its new name, with a warning (in place; returns it)."""
    model = plain.get("model")
    if isinstance(model, dict) and model.get("surrogate") is not None:
        warnings.warn(
            "model.surrogate is deprecated and will be removed: it is now called "
            f"model.apply_estimators (using model.apply_estimators={model['surrogate']})",
            FutureWarning,
            stacklevel=2,
        )
        model["apply_estimators"] = model["surrogate"]
    if isinstance(model, dict):
        model.pop("surrogate", None)
    return plain


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain, resolved values (no ``hydra`` node, deprecated keys moved)."""
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    plain.pop("hydra", None)
    return upgrade(plain)

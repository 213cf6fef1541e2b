"""Structured config schemas behind ``configs/``: every key typed, so a typo in a key or a wrong
type fails when Hydra composes the config, before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


@dataclass
class EstimatorNode:
    """One hard op's estimator: its name, relaxed mode, and its parameter (null = the default)."""

    name: str = "ste"
    relaxed: bool = False
    beta: float | None = None
    alpha: float | None = None
    width: float | None = None
    sigma: float | None = None
    tau: float | None = None
    samples: int | None = None


@dataclass
class OpConfig:
    step: EstimatorNode = field(default_factory=EstimatorNode)
    sign: EstimatorNode = field(default_factory=EstimatorNode)
    round: EstimatorNode = field(default_factory=EstimatorNode)
    argmax: EstimatorNode = field(default_factory=EstimatorNode)


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0
    momentum: float = 0.9


@dataclass
class SchedulerConfig:
    name: str = "cosine"


@dataclass
class ModelConfig:
    name: str = "cnn"
    surrogate: str = "swap"
    channels: list[int] = field(default_factory=lambda: [16, 32])
    activations: list[str] = field(default_factory=lambda: ["sign", "step"])
    pooled_size: int = 2
    bottleneck: str | None = "argmax"
    groups: int = 8
    categories: int = 8
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)


@dataclass
class DataConfig:
    name: str = "digits"
    root: str = "data"
    download: bool = False
    batch_size: int = 64
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    num_workers: int = 0


@dataclass
class TrainerConfig:
    max_epochs: int = 20
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    precision: Any = "32-true"
    deterministic: bool = False
    log_every_n_steps: int = 10
    num_sanity_val_steps: int = 0
    val_check_interval: Any = 1.0
    enable_model_summary: bool = True
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    gradient_clip_val: float | None = None


@dataclass
class LoggerConfig:
    csv: bool = True


@dataclass
class CallbacksConfig:
    monitor: str = "val/acc"
    mode: str = "max"
    progress_refresh_rate: int = 1


@dataclass
class PathsConfig:
    data_dir: str = "data"
    output_dir: str = "${hydra:runtime.output_dir}"


@dataclass
class TrainConfig:
    op: OpConfig = field(default_factory=OpConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    threads: int = 1
    ckpt_path: str | None = None
    optimized_metric: str = "best_val_acc"


def register() -> None:
    """Store the schema as ``train_schema``; ``configs/train.yaml`` lists it first."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain, resolved values (no ``hydra`` node)."""
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    plain.pop("hydra", None)
    return plain

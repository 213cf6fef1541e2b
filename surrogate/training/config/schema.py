"""The typed schema of ``configs/``: every key and its type, so a typo in a key or a wrong type
fails when Hydra composes the config, before anything runs.

The values live in the YAML files alone (here every key is ``MISSING``), with two exceptions that
the YAML never states: an op node's ``relaxed`` (false) and estimator parameters (null: the
library's default). The ``model`` node is typed by the chosen network's own dataclass
(``surrogate.training.models``), stored as ``schema/model/<name>``. The parameter keys of an op node
are not written here but read from the library's registry of estimators, so a new estimator's
parameter is a config key at once; whether a value fits the chosen estimator is checked by the
library (``surrogate.parse_ops``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

import surrogate
from surrogate.training.models import MODELS


def _parameter_types() -> dict[str, type]:
    """Every estimator parameter's name and type (int or float), over the whole catalogue."""
    types: dict[str, type] = {}
    for name in surrogate.available():
        for param, default in surrogate.parameters(name).items():
            types[param] = int if isinstance(default, int) else float
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


LayerNode = dataclasses.make_dataclass(
    "LayerNode",
    [("match", str, MISSING)]
    + [(f.name, f.type, f.default) for f in dataclasses.fields(EstimatorNode)],
)
LayerNode.__doc__ = "One entry of ``op.layers``: a glob over module paths and an estimator."


@dataclass
class OpConfig:
    step: EstimatorNode = field(default_factory=EstimatorNode)
    sign: EstimatorNode = field(default_factory=EstimatorNode)
    round: EstimatorNode = field(default_factory=EstimatorNode)
    argmax: EstimatorNode = field(default_factory=EstimatorNode)
    layers: list[LayerNode] = field(default_factory=list)
    reference: bool = False  # shown as a reference (not a contender) in a sweep's report
    peak: float | None = None  # every smooth estimator's bump rescaled to p(0) = peak


@dataclass
class ScheduleConfig:
    """``relaxed_until_epoch``: k, or null; ``params``: ``{op or all: {parameter: schedule}}``, each
    schedule the fields of ``surrogate.Schedule`` (checked with the rest of the config by
    ``schedule_config.build_schedule``; here untyped, so that a command line can add one with
    ``+schedule.params.step.beta={kind: linear, start: 1, end: 8}``)."""

    relaxed_until_epoch: int | None = MISSING
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskConfig:
    name: str = MISSING


@dataclass
class CNNSize:
    """The CNN's width that suits a data set's images: ``configs/model/cnn.yaml`` reads its
    ``channels`` and ``groups`` (the command line may still set ``model.channels``)."""

    channels: list[int] = MISSING
    groups: int = MISSING


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
    image_size: int | None = MISSING  # image_folder: resize to image_size x image_size
    cnn_size: CNNSize = field(default_factory=CNNSize)
    # The spike data sets' own keys, null in the other data sets' YAML (unused there).
    # data=randman: each class a random manifold of manifold_dim dimensions, smoothness its
    # Fourier amplitudes' decay 1/k^smoothness; samples_per_class points of each; each of the
    # units spikes once in steps time steps; generated from generator_seed.
    units: int | None = MISSING
    classes: int | None = MISSING
    steps: int | None = MISSING
    manifold_dim: int | None = MISSING
    smoothness: float | None = MISSING
    samples_per_class: int | None = MISSING
    generator_seed: int | None = MISSING
    # data=shd: the spikes of the first duration seconds binned into time_steps steps.
    time_steps: int | None = MISSING
    duration: float | None = MISSING


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
    monitor: str | None = MISSING  # null: the task's validation metric (val/acc)
    mode: str | None = MISSING  # null: the task's direction (max for accuracy)
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
    model: Any = MISSING  # typed by the chosen model's own schema (schema/model/<name>)
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = MISSING
    threads: int = MISSING
    ckpt_path: str | None = MISSING
    # Resume ckpt_path with another op than the checkpoint trained with (refused otherwise);
    # metrics.json records the change as finetune: the estimators before and after, the epoch.
    finetune: bool = MISSING
    # What train.py returns to a sweeper: a metrics.json key; null: best_val_<the task's metric>.
    optimized_metric: str | None = MISSING


def store_schema() -> None:
    """Store the schema as ``train_schema`` (``configs/train.yaml`` lists it first) and each
    registered model's as ``schema/model/<name>`` (its YAML lists it first)."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for name, entry in MODELS.items():
        store.store(group="schema/model", name=name, node=entry.config)


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

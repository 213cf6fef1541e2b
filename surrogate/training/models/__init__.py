"""The networks the app trains: one module per network, each registering its builder together
with its typed config.

    @dataclass
    class MLPConfig(ModelConfig):
        width: int = field(default=MISSING, metadata={"range": Range(1, integer=True)})

    @register_model("mlp", MLPConfig)
    def build_mlp(config: MLPConfig, shape: DataShape) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape.input_shape), config.width),
                             surrogate.Sign("atan"), nn.Linear(config.width, shape.num_classes))

and ``configs/model/mlp.yaml`` (``defaults: [/schema/model/mlp@_here_, _self_]`` and the values)
selects it: ``python train.py model=mlp``. Every module of this package is imported when the
package is, so a new file is all a new network needs. A config's keys and types are checked by
Hydra against its dataclass, its numbers against the ``range`` in each field's metadata; the
network is built with surrogate's defaults and takes its estimators from the op config afterwards,
by ``model.apply_estimators`` (see ``surrogate.training.callbacks.apply_estimators``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from surrogate.training.ranges import Range

METHODS = ("swap", "intercept", "both")


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = field(default=MISSING, metadata={"range": Range(0, low_open=True)})
    weight_decay: float = field(default=MISSING, metadata={"range": Range(0)})
    momentum: float = field(default=MISSING, metadata={"range": Range(0, 1, high_open=True)})
    gamma: float = field(default=1e-4, metadata={"range": Range(0, 1, low_open=True)})  # bop
    threshold: float = field(default=1e-8, metadata={"range": Range(0)})  # bop


@dataclass
class SchedulerConfig:
    name: str = MISSING


@dataclass
class ModelConfig:
    """The keys every model has: its name, how the op config reaches its hard ops
    (``swap``: surrogate's modules; ``intercept``: plain torch ops; ``both``), its optimizer and
    learning-rate schedule. A network's config subclasses it with the network's own keys."""

    name: str = MISSING
    apply_estimators: str = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    surrogate: str | None = None  # the old name of apply_estimators, still read (deprecated)

    def input_scale(self) -> str | None:
        """How the network reads its inputs, if it must (``unit``: intensities in [0, 1]);
        None: as the task scales them."""
        return None


Builder = Callable[[Any, Any], nn.Module]


@dataclass(frozen=True)
class Model:
    """A registered network: its name, its config's dataclass and its builder."""

    name: str
    config: type[ModelConfig]
    build: Builder

    def typed(self, model: dict[str, Any]) -> Any:
        """``model`` (the config node, plain values) as an instance of this network's config,
        with Hydra's messages for a key it does not have or a value of the wrong type."""
        try:
            node = OmegaConf.merge(OmegaConf.structured(self.config), model)
            return OmegaConf.to_object(node)
        except OmegaConfBaseException as err:
            key = f"model.{err.full_key}" if getattr(err, "full_key", None) else "model"
            raise ValueError(f"{key} ({self.name}): {str(err.msg).splitlines()[0]}") from None


MODELS: dict[str, Model] = {}


def register_model(name: str, config: type[ModelConfig]) -> Callable[[Builder], Builder]:
    """Register ``build(config, shape) -> nn.Module`` as the network ``model.name=name``."""
    if not (isinstance(config, type) and issubclass(config, ModelConfig)):
        raise TypeError(f"register_model({name!r}): config must subclass ModelConfig")

    def decorate(build: Builder) -> Builder:
        if name in MODELS and MODELS[name].build is not build:
            raise ValueError(f"a model named {name!r} is already registered")
        MODELS[name] = Model(name, config, build)
        return build

    return decorate


def model(name: str) -> Model:
    """The network registered as ``name``; ValueError naming the registered ones otherwise."""
    if name not in MODELS:
        raise ValueError(
            f"model.name: unknown {name!r}; choose one of: {', '.join(sorted(MODELS))}"
        )
    return MODELS[name]


def data_scale(config: dict[str, Any], task_scale: str) -> str:
    """How the data reach the network ``config`` (the ``model`` node) names: as the network must
    read them, else as the task scales them (``task_scale``)."""
    entry = model(config["name"])
    return entry.typed(config).input_scale() or task_scale


def check_method(method: str) -> None:
    """Refuse an unknown ``model.apply_estimators``."""
    if method not in METHODS:
        raise ValueError(
            f"model.apply_estimators: unknown {method!r}; choose one of: {', '.join(METHODS)}"
        )


def build_model(config: dict[str, Any], shape) -> nn.Module:
    """The network the config node ``model`` names, for data of ``shape`` (a ``DataShape``)."""
    entry = model(config["name"])
    return entry.build(entry.typed(config), shape)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

"""Hydra callbacks."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from surrogate.training import validate


class ValidateConfig(Callback):
    """Check the composed config before Hydra creates the run's output folder, so a bad value
    stops the run with its message and leaves nothing written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _validate(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _validate(config)


def _validate(config: DictConfig) -> None:
    plain = OmegaConf.to_container(config, resolve=False)
    plain.pop("hydra", None)
    plain.pop("paths", None)
    data_root = OmegaConf.select(config, "data.root")
    plain["data"]["root"] = data_root
    validate(plain)

"""Hydra callbacks."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from surrogate.training import validate


class ValidateConfig(Callback):
    """Check the composed config before Hydra creates the run's output folder, so a bad value
    stops the run with its message, a non-zero exit and nothing written.

    Hydra turns a callback's exception into a warning, so this exits the process instead.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _validate_or_exit(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _validate_or_exit(config)


def _validate_or_exit(config: DictConfig) -> None:
    plain = OmegaConf.to_container(config, resolve=False)
    plain.pop("hydra", None)
    plain["data"]["root"] = OmegaConf.select(config, "data.root")
    try:
        validate(plain)
    except (ValueError, FileNotFoundError) as err:
        print(f"Error in the config: {err}", file=sys.stderr)
        sys.exit(1)

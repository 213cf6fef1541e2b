"""The plain config that ``train.py`` would run with some overrides, without running it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from surrogate.training.config.schema import store_schema, to_plain


def compose_config(
    overrides: list[str], config_dir: str | Path, output_dir: str | Path
) -> dict[str, Any]:
    """``configs/train.yaml`` under ``config_dir`` composed with ``overrides`` (Hydra's compose
    API), as plain values, with ``paths.output_dir`` set to ``output_dir``."""
    store_schema()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(config_dir).resolve())):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={output_dir}"])
    return to_plain(cfg)

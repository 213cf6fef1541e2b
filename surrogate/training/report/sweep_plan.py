"""The jobs a sweep set out to run, read back from the ``multirun.yaml`` Hydra saves in its folder,
so a report can list the jobs that never started (a sweep killed, or still running).

Hydra's basic sweeper runs the cartesian product of its swept overrides (``hydra.sweeper.params``
and the command line's); each job's own overrides are one element of that product. Another
sweeper's plan (Optuna's trials) is not known in advance.
"""

from __future__ import annotations

from pathlib import Path

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def planned_jobs(sweep_dir: str | Path) -> list[list[str]] | None:
    """Each planned job's overrides, in launch order, or None when the plan cannot be told."""
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    try:
        hydra = OmegaConf.load(path).hydra
        sweeper = hydra.sweeper
        if sweeper.get("_target_") != BASIC_SWEEPER:
            return None
        params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides([*params, *hydra.overrides.task])
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
        return jobs
    except Exception:  # a plan this reader does not understand: report what ran, as before
        return None

"""Hydra callbacks: the config (every key, every value, the data files and the checkpoint)
checked before anything is written, an output folder of its own for every run, and a sweep's
report kept up to date after every job."""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from surrogate.training.atomic import write_json_atomic
from surrogate.training.config.keys import check_keys
from surrogate.training.config.schema import upgrade
from surrogate.training.config.validate import validate
from surrogate.training.report.sweep import write_report


class ValidateConfig(Callback):
    """Check the composed config before Hydra creates the run's output folder, so a bad value
    stops the run with its message, a non-zero exit and nothing written.

    Hydra turns a callback's exception into a warning, so this exits the process instead.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _validate_or_exit(config, files=True)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Before the sweep's own values are applied: a swept data.root or ckpt_path is checked by
        # each job, whose failure the sweep report lists.
        _validate_or_exit(config, files=False)


# What `validate` reads; the rest (paths) may interpolate values that Hydra sets later.
CHECKED_KEYS = ("op", "schedule", "model", "task", "data", "trainer", "logger", "callbacks", "seed",
                "threads", "ckpt_path", "finetune")  # fmt: skip


def _validate_or_exit(config: DictConfig, files: bool) -> None:
    try:
        plain = {
            key: OmegaConf.to_container(config[key], resolve=True)
            if OmegaConf.is_config(config[key])
            else config[key]
            for key in CHECKED_KEYS
            if key in config
        }
        check_keys({**dict.fromkeys(config), **plain})  # a top-level key added with + too
        with warnings.catch_warnings():  # a deprecated key is reported once, by train.py
            warnings.simplefilter("ignore", FutureWarning)
            plain = upgrade(plain)
        validate(plain, files)
    except (ValueError, FileNotFoundError) as err:
        print(f"Error in the config: {err}", file=sys.stderr)
        sys.exit(1)


class ClaimOutputDir(Callback):
    """Give the run (or the sweep) a folder no other run has: the configured one if it is new,
    else the same name with ``_2``, ``_3``, ... appended. Two runs started in the same second
    would otherwise share ``outputs/<date>/<time>_<op>`` and overwrite each other's files.

    Creating the folder is the claim (``mkdir`` fails if it exists), so two processes cannot both
    take it. A folder set on the command line (``hydra.run.dir=...``) is used as it is: resuming
    or rerunning into a chosen folder stays possible.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _claim(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _claim(config, "sweep")


def _claim(config: DictConfig, node: str) -> None:
    chosen = any(o.startswith(f"hydra.{node}.dir=") for o in config.hydra.overrides.hydra)
    if chosen:
        return
    wanted = Path(config.hydra[node].dir)
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10**6):
        folder = wanted if n == 1 else wanted.with_name(f"{wanted.name}_{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        # Also as an override: a sweep's jobs recompose their config from the overrides.
        quoted = str(folder).replace("\\", "\\\\").replace("'", "\\'")
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra[node].dir = str(folder)
            config.hydra.overrides.hydra.append(f"hydra.{node}.dir='{quoted}'")
        return


class SweepReport(Callback):
    """Keep a sweep's comparison (``surrogate.training.report.sweep``) up to date in
    ``hydra.sweep.dir``.

    After every job (a failed one first records its error in ``error.json``) and at the end of the
    sweep. Hydra's basic sweeper re-raises a failed job's exception before ``on_multirun_end``, so
    the report written after the last job is the one that survives such a sweep. ``thresholds``:
    the validation accuracies for which the report gives the epochs and seconds taken to reach
    them.
    """

    def __init__(self, thresholds: Sequence[float]):
        self.thresholds = tuple(float(t) for t in thresholds)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        if job_return.status == JobStatus.FAILED:
            error = job_return._return_value
            write_json_atomic(
                Path(hydra_cfg.runtime.output_dir) / "error.json",
                {
                    "error": f"{type(error).__name__}: {error}",
                    "overrides": list(hydra_cfg.overrides.task),
                    "traceback": "".join(traceback.format_exception(error)),
                },
            )
        write_report(hydra_cfg.sweep.dir, self.thresholds)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        runs = write_report(config.hydra.sweep.dir, self.thresholds)
        print(
            f"Sweep report: {len(runs)} runs, see {Path(config.hydra.sweep.dir) / 'comparison.md'}"
        )

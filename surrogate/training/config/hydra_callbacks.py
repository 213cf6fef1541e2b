"""Hydra callbacks: the config (every key, every value, the data files and the checkpoint)
checked before anything is written, an output folder of its own for every run, and a sweep's
report kept up to date after every job. ``settle_failed_run``: a single run that fails leaves no
husk folder (see there)."""

from __future__ import annotations

import shutil
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
                "threads", "ckpt_path", "finetune", "optimized_metric")  # fmt: skip


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
        _CREATED["run"] = _claim(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _claim(config, "sweep")


# The outermost folder that this process created for its single run ("run": None when the run's
# folder was there before, as when a run resumes into its own folder): what a run that fails
# before its first validation removes (``settle_failed_run``).
_CREATED: dict[str, Path | None] = {}


def _outermost_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist (None: it exists)."""
    missing = None
    for path in [folder.absolute(), *folder.absolute().parents]:
        if path.exists():
            return missing
        missing = path
    return missing


def _claim(config: DictConfig, node: str) -> Path | None:
    """Claim the folder; the outermost folder created for it (for a folder set on the command
    line, that Hydra will create: None if it is there already)."""
    chosen = any(o.startswith(f"hydra.{node}.dir=") for o in config.hydra.overrides.hydra)
    if chosen:
        return _outermost_missing(Path(config.hydra[node].dir))
    wanted = Path(config.hydra[node].dir)
    created = _outermost_missing(wanted.parent)
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
        return created or folder.absolute()
    return None


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
            write_error(hydra_cfg.runtime.output_dir, error, hydra_cfg.overrides.task)
        write_report(hydra_cfg.sweep.dir, self.thresholds)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        runs = write_report(config.hydra.sweep.dir, self.thresholds)
        print(
            f"Sweep report: {len(runs)} runs, see {Path(config.hydra.sweep.dir) / 'comparison.md'}"
        )


def write_error(folder: str | Path, error: BaseException, overrides: Sequence[str]) -> None:
    """Mark a run's folder failed: ``error.json`` (the error, the command line's overrides, the
    traceback), which the sweep report lists as a failed run."""
    write_json_atomic(
        Path(folder) / "error.json",
        {
            "error": f"{type(error).__name__}: {error}",
            "overrides": list(overrides),
            "traceback": "".join(traceback.format_exception(error)),
        },
    )


def settle_failed_run(folder: str | Path, error: BaseException, overrides: Sequence[str]) -> None:
    """After a single run failed: remove its folder if this process created it and the run never
    validated (no curves, no state of its own to resume: a husk; a resumed run's checkpoints
    brought along are copies), else mark it failed (``error.json``) if this process created it;
    a folder that was there before is left alone."""
    folder = Path(folder).absolute()
    created = _CREATED.get("run")
    if created is None or not (created == folder or created in folder.parents):
        return
    if (folder / "curves.json").is_file():  # written at every validation
        write_error(folder, error, overrides)
        return
    shutil.rmtree(folder, ignore_errors=True)
    for path in folder.parents:  # the empty folders this process made to hold it
        if path == created.parent:
            break
        try:
            path.rmdir()
        except OSError:
            break

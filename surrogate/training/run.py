"""One training run from a plain config dict: fit, test the best checkpoint, write metrics.json.

The op config is parsed once, when the config is checked (``config.validate``); ``model.name``
picks the network (``surrogate.training.models``), built once by the LightningModule, ``task`` its
loss and headline metric, ``data.name`` the data set (``surrogate.training.data``), and
``model.apply_estimators`` how the op config reaches the hard ops (``swap``, ``intercept`` or
``both``), by the ``ApplyEstimators`` callback alone.

The dict has the shape of ``configs/train.yaml`` once resolved (``seed``, ``threads``, ``op``,
``model``, ``task``, ``data``, ``trainer``, ``logger``, ``callbacks``, ``ckpt_path``). No Hydra
here: ``train.py`` turns the Hydra config into this dict.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from surrogate.training.atomic import write_json_atomic
from surrogate.training.callbacks.apply_estimators import ApplyEstimators
from surrogate.training.callbacks.checkpoint import BestCheckpoint, LastCheckpoint
from surrogate.training.callbacks.curves import CurveRecorder
from surrogate.training.callbacks.diagnostics_recorder import DiagnosticsRecorder
from surrogate.training.callbacks.schedule_recorder import ScheduleRecorder
from surrogate.training.config.checkpoint import epochs_done, read_checkpoint
from surrogate.training.config.op import HardOpConfig
from surrogate.training.config.validate import validate
from surrogate.training.data import DataError
from surrogate.training.data.datamodule import DataModule
from surrogate.training.models import data_scale
from surrogate.training.module import HardOpModule, NonFiniteLoss
from surrogate.training.quiet import quiet_lightning
from surrogate.training.tasks import task_class

# What the validation recorders write, merged into metrics.json under these keys.
RECORDED = {"diagnostics": "diagnostics.json", "schedule": "schedule.json"}

# A run that stops with one of these has a message for the user, not a bug to trace.
RUN_ERRORS = (DataError, NonFiniteLoss, MisconfigurationException)


def build(config: dict[str, Any], output_dir: Path, ops: HardOpConfig | None = None):
    """The data module, the LightningModule, the Trainer and the callbacks that ``config``
    describes, its op config parsed as ``ops`` (parsed here if None): ``(data, module, trainer,
    callbacks)``."""
    ops = HardOpConfig.parse(config["op"]) if ops is None else ops
    scale = data_scale(config["model"], task_class(config["task"]["name"]).scale)
    data = DataModule(**config["data"], shuffle_seed=config["seed"], scale=scale)
    data.prepare_data()
    data.setup()  # read and checked once, before the trainer exists
    module = HardOpModule(
        model=config["model"],
        task=config["task"],
        input_shape=list(data.shape.input_shape),
        num_classes=data.shape.num_classes,
        seed=config["seed"],
    )
    task, callbacks = module.task, config["callbacks"]
    folder = output_dir / "checkpoints"
    monitor = callbacks["monitor"] or f"val/{task.metric}"
    best = BestCheckpoint(folder, monitor=monitor, mode=callbacks["mode"] or task.mode)
    curves = CurveRecorder(output_dir / "curves.json", task.metric)
    method = config["model"]["apply_estimators"]
    estimators = ApplyEstimators(ops, method=method, schedule=config.get("schedule"))
    refresh = callbacks["progress_refresh_rate"]
    extra = [TQDMProgressBar(refresh_rate=refresh)] if refresh > 0 else []
    extra.append(ScheduleRecorder(output_dir / RECORDED["schedule"], estimators))
    if callbacks["diagnostics"]:
        path, size = output_dir / RECORDED["diagnostics"], callbacks["probe_size"]
        extra.append(DiagnosticsRecorder(path, size, callbacks["diagnostics_every"]))
    trainer = pl.Trainer(
        **config["trainer"],
        default_root_dir=output_dir,
        logger=_loggers(config["logger"], output_dir) or False,
        callbacks=[estimators, curves, *extra, best, LastCheckpoint(folder)],
        enable_progress_bar=refresh > 0,
    )
    return data, module, trainer, Callbacks(estimators, curves, best)


@dataclass(frozen=True)
class Callbacks:
    """The callbacks whose state ``metrics.json`` reads."""

    estimators: ApplyEstimators
    curves: CurveRecorder
    best: BestCheckpoint


def _loggers(config: dict[str, bool], output_dir: Path) -> list:
    """The CSV logger (``csv/metrics.csv``) and TensorBoard's (``tensorboard/``) that ``config``
    asks for."""
    loggers = []
    if config["csv"]:
        loggers.append(CSVLogger(output_dir, name="csv", version=_fresh_log(output_dir / "csv")))
    if config["tensorboard"]:
        from pytorch_lightning.loggers import TensorBoardLogger

        version = _fresh_log(output_dir / "tensorboard", "events.out.tfevents.*")
        loggers.append(TensorBoardLogger(output_dir, name="tensorboard", version=version))
    return loggers


def _fresh_log(folder: Path, pattern: str = "metrics.csv") -> str:
    """A log's version: "" (the folder itself) for a new run; a resumed run that logs into the
    same folder writes ``resumed_N/`` beside the earlier log, which Lightning would delete."""
    if not any(folder.glob(pattern)):
        return ""
    return next(f"resumed_{n}" for n in range(1, 10**6) if not (folder / f"resumed_{n}").exists())


def _stopped(last: Path, overrides: list[str] | None) -> str:
    """What to tell a user who stopped a run: where its state is and how to resume it."""
    if not last.is_file():
        return "Stopped before the first validation: no checkpoint to resume from."
    kept = [o for o in overrides or [] if not o.startswith("ckpt_path=")]
    command = shlex.join(["python", "train.py", *kept, f"ckpt_path={last}"])
    return f"Stopped. The state after the latest validation is in {last}; resume with:\n  {command}"


def _recorded(output_dir: Path) -> dict:
    """The validation recorders' curves, from the files they wrote: ``diagnostics`` (each
    ``<layer>/<metric>``), ``diagnostic_layers`` (each layer's module path) and ``schedule``
    (each scheduled ``<op>.<parameter>``)."""
    found = {}
    for key, name in RECORDED.items():
        if (output_dir / name).is_file():
            recorded = json.loads((output_dir / name).read_text())
            found[key] = recorded["curves"]
            if "layers" in recorded:
                found["diagnostic_layers"] = recorded["layers"]
    return found


def _finetune(config: dict[str, Any]) -> dict[str, Any] | None:
    """With ``finetune=true``: the checkpoint's side of the change, read before the run rewrites
    it (``after`` is added as the run ends): the checkpoint, the epochs it trained (the new op
    trains from the next) and each hard-op layer's estimator in it."""
    if not config.get("finetune") or config.get("ckpt_path") is None:
        return None
    checkpoint = read_checkpoint(config["ckpt_path"])
    return {
        "checkpoint": str(config["ckpt_path"]),
        "epoch": epochs_done(checkpoint),
        "before": checkpoint["layer_estimators"],
    }


def run(
    config: dict[str, Any],
    output_dir: str | Path,
    preset: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Fit, test the best checkpoint, and write ``metrics.json`` to ``output_dir``; return it.

    ``preset`` (the ``op`` preset's name) and ``overrides`` (the command line's) are recorded as
    they are, so a sweep's report can tell runs apart from ``metrics.json`` alone. A fine-tune
    (``finetune=true``) records ``finetune``: the checkpoint, ``epoch`` (the epochs trained before
    the change), and each hard-op layer's estimator ``before`` and ``after``.
    """
    start = time.perf_counter()
    ops = validate(config)
    finetune = _finetune(config)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    quiet_lightning()
    if config["threads"] > 0:
        torch.set_num_threads(config["threads"])
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    data, module, trainer, callbacks = build(config, output_dir, ops)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=config.get("ckpt_path"))
    except SystemExit:  # how Lightning ends a run stopped by Ctrl-C
        if trainer.interrupted:
            print(_stopped(output_dir / "checkpoints" / "last.ckpt", overrides), file=sys.stderr)
        raise
    except NonFiniteLoss as err:
        raise NonFiniteLoss(
            f"{err} with op {ops.summary()}, model.optimizer.lr="
            f"{config['model']['optimizer']['lr']:g}; try a lower learning rate, a gentler "
            "estimator (a smaller beta or alpha, a larger width or sigma), or "
            "trainer.gradient_clip_val"
        ) from None
    best = callbacks.best
    tested = trainer.test(
        module, datamodule=data, ckpt_path=best.best_model_path or None, verbose=False
    )
    curves = json.loads((output_dir / "curves.json").read_text())
    task, recorder = module.task, callbacks.curves
    with torch.no_grad():
        task.illustrate(module.net.eval(), next(iter(data.test_dataloader())), output_dir)
    val = f"val_{task.metric}"
    best_val = max(curves[val]) if task.higher_is_better else min(curves[val])
    metrics = {
        "op": preset,
        "overrides": list(overrides or []),
        "estimators": ops.describe(),
        "seed": config["seed"],
        "data": config["data"]["name"],
        f"test_{task.metric}": tested[0][f"test/{task.metric}"],
        f"best_val_{task.metric}": best_val,
        "epochs": curves["epochs"],
        "steps": curves["steps"],
        "wall_seconds": round(time.perf_counter() - start, 3),
        "train_seconds": round(curves["wall_seconds"], 3),
        **{name: curves[name] for name in recorder.names},
        **_recorded(output_dir),
        "best_checkpoint": str(best.best_model_path),
        "layer_estimators": callbacks.estimators.layer_estimators(),
        "reference": ops.reference,
        "headline": task.headline(),
    }
    if finetune is not None:
        metrics["finetune"] = {**finetune, "after": metrics["layer_estimators"]}
    write_json_atomic(output_dir / "metrics.json", metrics)
    return metrics

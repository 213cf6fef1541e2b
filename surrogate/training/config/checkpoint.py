"""The checkpoint of ``ckpt_path`` checked like the config, before any folder is made.

It is opened with ``torch.load(weights_only=True)`` (a checkpoint of this app holds only tensors
and plain values; nothing pickled is run), and refused, in one line naming the file, when it is
not a checkpoint of this app, is truncated or corrupt. Then it is compared with the config:

- the network (``hyper_parameters["model"]``, but the optimizer's settings, its schedule and how
  the estimators are applied, and the weights' names and shapes), the optimizer (whose state a
  resume restores) and the data's shape
  (``hyper_parameters["input_shape"]``, ``["num_classes"]``): a mismatch names both values;
- the op: each hard-op layer's estimator (``checkpoint["layer_estimators"]``: its name, relaxed
  mode and the parameters no schedule changes) against the config's, refused unless
  ``finetune=true`` (then ``metrics.json`` records the change, see ``run.py``);
- ``trainer.max_epochs`` must be above the epochs the checkpoint has trained.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from surrogate.training.config.op import HardOpConfig

# The model keys that a resumed run may change: they do not change the network.
NOT_THE_NETWORK = ("optimizer", "scheduler", "apply_estimators", "surrogate")
REQUIRED = ("epoch", "state_dict", "hyper_parameters", "layer_estimators")
HPARAMS = ("model", "input_shape", "num_classes")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded with ``weights_only=True`` on the CPU; ValueError (one
    line naming the file and what is wrong) for a file that is not a checkpoint of this app."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint at {path}")
    where = f"ckpt_path: {path}"
    if path.stat().st_size == 0:
        raise ValueError(f"{where} is empty, not a checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found:
            raise ValueError(
                f"{where} is not a checkpoint of this app: it holds a pickled Python object "
                f"({found.group(1)}) where a checkpoint holds only tensors and plain values; "
                "it is not loaded"
            ) from None
        raise ValueError(f"{where} is corrupt or not a PyTorch checkpoint") from None
    except Exception:  # torch's errors for a broken file: KeyError, OSError, RuntimeError, ...
        with path.open("rb") as file:
            archive = file.read(4) == b"PK\x03\x04"  # how a checkpoint's zip archive starts
        if archive:
            raise ValueError(f"{where} is truncated or corrupt (a broken zip archive)") from None
        raise ValueError(f"{where} is corrupt or not a PyTorch checkpoint") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{where} is not a checkpoint of this app: it holds a {type(checkpoint).__name__}, "
            "not a checkpoint's dict"
        )
    missing = [key for key in REQUIRED if key not in checkpoint]
    hparams = checkpoint.get("hyper_parameters")
    if isinstance(hparams, dict):
        missing += [f"hyper_parameters.{key}" for key in HPARAMS if key not in hparams]
    if missing:
        raise ValueError(
            f"{where} is not a checkpoint of this app's train.py: it has no {', '.join(missing)}"
        )
    return checkpoint


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """The epochs a checkpoint has finished, as Lightning counts them when it resumes (its fit
    loop's processed epochs; a checkpoint of a validation within an epoch, or at its last batch
    before the epoch's end, has not finished that epoch); else its epoch index."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
    processed = loop.get("total", {}).get("processed")
    return int(checkpoint["epoch"] if processed is None else processed)


def check_checkpoint(
    config: dict[str, Any], ops: HardOpConfig, net: nn.Module, shape
) -> dict[str, Any]:
    """Refuse a checkpoint that does not fit ``config`` (its op config parsed as ``ops``, its
    network shape-only as ``net``, its data's ``shape``); returns the checkpoint."""
    path = config["ckpt_path"]
    checkpoint = read_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    _compare_data(path, hparams, shape, config["data"]["name"])
    _compare_model(path, hparams["model"], config["model"])
    _compare_weights(path, checkpoint["state_dict"], net)
    if not config.get("finetune"):
        _compare_op(config, checkpoint, ops, net)
    epochs, wanted = epochs_done(checkpoint), config["trainer"]["max_epochs"]
    if wanted <= epochs:
        raise ValueError(
            f"trainer.max_epochs: {wanted} is not above the {epochs} epoch(s) that the checkpoint "
            f"{path} has trained; set trainer.max_epochs above {epochs} to train on from it"
        )
    return checkpoint


def _compare_data(path: str, hparams: dict[str, Any], shape, data: str) -> None:
    theirs, ours = list(hparams["input_shape"]), list(shape.input_shape)
    if theirs != ours:
        raise ValueError(
            f"ckpt_path: the checkpoint {path} was trained on inputs of shape {theirs}; the "
            f"config's data ({data}) has inputs of shape {ours}"
        )
    if hparams["num_classes"] != shape.num_classes:
        raise ValueError(
            f"ckpt_path: the checkpoint {path} was trained on {hparams['num_classes']} classes; "
            f"the config's data ({data}) has {shape.num_classes}"
        )


def _compare_model(path: str, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    keys = [k for k in dict.fromkeys([*ours, *theirs]) if k not in NOT_THE_NETWORK]
    for key in sorted(keys, key=lambda k: k != "name"):  # the network's name first
        if theirs.get(key) != ours.get(key):
            raise ValueError(
                f"ckpt_path: the checkpoint {path} holds a network with model.{key}="
                f"{theirs.get(key)!r}; the config has model.{key}={ours.get(key)!r}"
            )
    optimizer = (theirs.get("optimizer") or {}).get("name"), ours["optimizer"]["name"]
    if optimizer[0] != optimizer[1]:
        raise ValueError(
            f"ckpt_path: the checkpoint {path} trained with model.optimizer.name={optimizer[0]!r}, "
            f"whose state a resumed run restores; the config has model.optimizer.name="
            f"{optimizer[1]!r}"
        )


def _compare_weights(path: str, state: dict[str, Any], net: nn.Module) -> None:
    """The weights' names and shapes (``net.`` in the LightningModule), which a network whose
    config is unchanged may still change (a custom network's code)."""
    theirs = {k.removeprefix("net."): tuple(v.shape) for k, v in state.items()}
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for key in dict.fromkeys([*ours, *theirs]):
        if theirs.get(key) != ours.get(key):
            raise ValueError(
                f"ckpt_path: the checkpoint {path} does not fit the config's network: weight "
                f"{key} is {_shape(theirs.get(key))} in the checkpoint, {_shape(ours.get(key))} "
                "in the config's network"
            )


def _shape(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else f"of shape {list(shape)}"


def _compare_op(config: dict[str, Any], checkpoint: dict[str, Any], ops: HardOpConfig, net):
    """Each hard-op layer's estimator in the checkpoint against the config's: the name, relaxed
    mode and the parameters no schedule changes. A network whose estimators are applied by
    ``intercept`` alone keeps no estimator in its modules, so has nothing to compare."""
    trained = checkpoint["hyper_parameters"]["model"].get("apply_estimators")
    if "intercept" in (trained, config["model"]["apply_estimators"]):
        return
    scheduled = _scheduled(config.get("schedule"))
    saved = checkpoint["layer_estimators"]
    for layer in ops.hard_layers(net):
        theirs, ours = saved.get(layer.path), layer.describe()
        if theirs is None:
            continue
        if _identity(theirs, scheduled) != _identity(ours, scheduled):
            raise ValueError(
                f"op: the checkpoint {config['ckpt_path']} trained layer {layer.path} "
                f"({layer.op}) with {_text(theirs)}; the config gives it {_text(ours)}; resume "
                "with the checkpoint's op, or set finetune=true to train on with the config's "
                "(metrics.json records the change)"
            )


def _scheduled(schedule: dict[str, Any] | None) -> set[str]:
    """The estimator parameters a schedule changes (the checkpoint holds their value then)."""
    params = (schedule or {}).get("params") or {}
    return {name for node in params.values() if isinstance(node, dict) for name in node}


def _identity(estimator: dict[str, Any], scheduled: set[str]) -> dict[str, Any]:
    return {k: v for k, v in estimator.items() if k not in scheduled and k != "op"}


def _text(estimator: dict[str, Any]) -> str:
    params = ", ".join(
        f"{k}={v}" for k, v in estimator.items() if k not in ("op", "name", "relaxed")
    )
    relaxed = "relaxed " if estimator.get("relaxed") else ""
    return f"{relaxed}{estimator.get('name')}({params})"

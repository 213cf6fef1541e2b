"""A checkpoint is checked like the config, before any folder is made: a file that is not a
checkpoint of this app, truncated or corrupt, one of another network, data shape or op, or a
``trainer.max_epochs`` not above its epochs, is refused through ``train.py`` with exit status 1,
one line naming the problem, no traceback, no new folder and nothing already written changed. A
fine-tune to another op is accepted with ``finetune=true`` and recorded in ``metrics.json``."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.app.helpers import FAST, train_cli, write_tiny_mnist

TRAINED = ["op=atan", "model.channels=[8,16]", *FAST]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One run of one epoch (op=atan): its folder, with checkpoints/last.ckpt."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = train_cli(*TRAINED, f"hydra.run.dir={out}", cwd=out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(*args: str, cwd: Path, line: str) -> str:
    """Run ``train.py ARGS`` in ``cwd`` (without a folder of its own: the default outputs/...),
    check that it is refused in one line starting with ``line``, without a traceback, leaving
    ``cwd`` as it was; the line."""
    before = _files(cwd)
    result = train_cli(*args, cwd=cwd)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "weights_only=False" not in result.stderr
    assert not (cwd / "outputs").exists() and _files(cwd) == before
    return lines[0]


def resumed(checkpoint: Path, *overrides: str, cwd: Path, line: str) -> str:
    """``refused`` for a run of TRAINED resumed from ``checkpoint`` to 2 epochs."""
    return refused(
        *TRAINED, "trainer.max_epochs=2", f"ckpt_path={checkpoint}", *overrides, cwd=cwd, line=line
    )


def _rewritten(trained: Path, to: Path, change) -> Path:
    """A copy of the trained run's last.ckpt at ``to``, changed in place by ``change``."""
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, to)
    return to


def _broken(kind: str, trained: Path, to: Path) -> Path:
    last = (trained / "checkpoints" / "last.ckpt").read_bytes()
    if kind == "truncated":
        to.write_bytes(last[: len(last) // 2])
    elif kind == "empty":
        to.write_bytes(b"")
    elif kind == "text":
        to.write_text("not a checkpoint\n")
    elif kind == "pickled object":
        torch.save({"epoch": 1, "config": argparse.Namespace(lr=0.1)}, to)
    elif kind == "not this app's":
        torch.save({"weights": torch.zeros(3)}, to)
    return to


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("truncated", "is truncated or corrupt"),
        ("empty", "is empty"),
        ("text", "is corrupt or not a PyTorch checkpoint"),
        ("pickled object", "holds a pickled Python object (argparse.Namespace)"),
        ("not this app's", "is not a checkpoint of this app's train.py: it has no epoch"),
    ],
)
def test_a_file_that_is_not_a_whole_checkpoint_of_this_app_is_refused(
    trained, tmp_path, kind, says
):
    bad = _broken(kind, trained, tmp_path / "bad.ckpt")
    line = resumed(
        bad,
        cwd=tmp_path,
        line=f"Error in the config: ckpt_path: {bad} ",
    )
    assert says in line


NETWORK, OP = "ckpt_path: the checkpoint {last} holds a network with", "op: the checkpoint {last}"


@pytest.mark.parametrize(
    ("overrides", "start", "says"),
    [
        (["model.channels=[16,16]"], NETWORK, "model.channels=[8, 16]; the config has "
         "model.channels=[16, 16]"),
        (["model.activations=[step,sign]"], NETWORK, "model.activations=['sign', 'step']; the "
         "config has model.activations=['step', 'sign']"),
        (["model=plain_cnn"], NETWORK, "model.name='cnn'; the config has model.name='plain_cnn'"),
        (["model.optimizer.name=sgd"], "ckpt_path: the checkpoint {last} trained with",
         "model.optimizer.name='adam', whose state a resumed run restores; the config has "
         "model.optimizer.name='sgd'"),
        (["op=sigmoid"], OP, "trained layer features.3 (sign) with atan(alpha=2.0); the config "
         "gives it sigmoid(beta=4.0); resume with the checkpoint's op, or set finetune=true"),
        (["op.step.alpha=3"], OP, "trained layer features.7 (step) with atan(alpha=2.0); the "
         "config gives it atan(alpha=3.0)"),
    ],
)  # fmt: skip
def test_a_checkpoint_of_another_network_or_op_is_refused_naming_both(
    trained, tmp_path, overrides, start, says
):
    last = trained / "checkpoints" / "last.ckpt"
    prefix = "Error in the config: " + start.format(last=last)
    assert says in resumed(last, *overrides, cwd=tmp_path, line=prefix)


def test_a_checkpoint_of_other_data_is_refused_naming_both_shapes(trained, tmp_path):
    write_tiny_mnist(tmp_path / "mnist", gz=False)
    last = trained / "checkpoints" / "last.ckpt"
    line = resumed(
        last,
        "data=mnist",
        f"data.root={tmp_path / 'mnist'}",
        "model.channels=[8,16]",
        cwd=tmp_path,
        line="Error in the config: ckpt_path: the checkpoint",
    )
    assert (
        "inputs of shape [1, 8, 8]; the config's data (mnist) has inputs of shape [1, 28, 28]"
        in line
    )


def test_a_checkpoint_with_other_classes_or_weights_is_refused(trained, tmp_path):
    classes = _rewritten(
        trained, tmp_path / "classes.ckpt", lambda c: c["hyper_parameters"].update(num_classes=5)
    )
    line = resumed(classes, cwd=tmp_path, line="Error in the config: ckpt_path:")
    assert "trained on 5 classes; the config's data (digits) has 10" in line

    def widen(checkpoint):
        checkpoint["state_dict"]["net.head.weight"] = torch.zeros(10, 3)

    weights = _rewritten(trained, tmp_path / "weights.ckpt", widen)
    line = resumed(weights, cwd=tmp_path, line="Error in the config: ckpt_path:")
    assert "weight head.weight is of shape [10, 3] in the checkpoint, of shape [10, " in line


def test_finetune_without_a_checkpoint_is_refused(tmp_path):
    refused(
        *TRAINED,
        "finetune=true",
        cwd=tmp_path,
        line="Error in the config: finetune: true fine-tunes a checkpoint; set ckpt_path",
    )


@pytest.mark.parametrize(
    ("broken", "overrides", "line"),
    [
        (False, [], "trainer.max_epochs: 1 is not above the 1 epoch(s) that the checkpoint {last} "
         "has trained; set trainer.max_epochs above 1"),
        (True, ["trainer.max_epochs=3"], "ckpt_path: {last} is truncated or corrupt"),
    ],
)  # fmt: skip
def test_a_refused_resume_in_its_own_folder_leaves_it_as_it_was(
    trained, tmp_path, broken, overrides, line
):
    own = tmp_path / "own"
    shutil.copytree(trained, own)
    last = own / "checkpoints" / "last.ckpt"
    if broken:
        last.write_bytes(last.read_bytes()[:1000])
    before = _files(own)
    refused(*TRAINED, *overrides, f"ckpt_path={last}", f"hydra.run.dir={own}", cwd=tmp_path,
            line="Error in the config: " + line.format(last=last))  # fmt: skip
    assert _files(own) == before


@pytest.mark.parametrize("finetune", [False, True])
def test_a_fitting_checkpoint_resumes_and_a_finetune_is_recorded(trained, tmp_path, finetune):
    last = trained / "checkpoints" / "last.ckpt"
    tuned = ["op=sigmoid", "finetune=true"] if finetune else []
    result = train_cli(*TRAINED, *tuned, "trainer.max_epochs=2", f"ckpt_path={last}",
                       f"hydra.run.dir={tmp_path / 'resumed'}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and ("finetune" in metrics) == finetune
    if finetune:
        change = metrics["finetune"]
        assert change["checkpoint"] == str(last) and change["epoch"] == 1
        assert {layer["name"] for layer in change["before"].values()} == {"atan", "softmax"}
        assert change["after"]["features.3"]["name"] == "sigmoid"
        assert change["after"] == metrics["layer_estimators"]

"""Failures fail: a training loss that turns NaN stops the run with a non-zero exit and a message
naming the step, the op and what to try; nothing is reported as a result; a sweep lists the run as
failed; every JSON file the app writes is strict JSON; a key added with ``+`` that the schema lacks
is refused before any write; a run that fails leaves no husk folder."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from surrogate.training.atomic import write_json_atomic
from surrogate.training.config import hydra_callbacks
from surrogate.training.config.hydra_callbacks import settle_failed_run
from surrogate.training.config.keys import check_keys
from surrogate.training.module import NonFiniteLoss
from tests.app.helpers import FAST, ROOT, compose_config, train_cli, write_tiny_mnist
from tests.app.test_report import read_csv

DIVERGES = ["op=ste", "model.optimizer.name=sgd", "model.optimizer.lr=1e30"]


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_a_diverging_run_exits_non_zero_naming_the_step_the_op_and_the_remedy(tmp_path):
    result = train_cli(*DIVERGES, *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: the training loss is nan at step "), message
    assert "step=estimator('ste')" in message and "model.optimizer.lr=1e+30" in message
    assert "try a lower learning rate" in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert "test acc" not in result.stdout


def test_a_sweep_records_a_diverging_run_as_failed_and_reports_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "-m", "op=ste", "model.optimizer.name=sgd", "model.optimizer.lr=1e30,0.01", *FAST,
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    rows = {r["model.optimizer.lr"]: r for r in read_csv(sweep / "comparison.csv")}
    assert (rows["1e+30"]["seeds"], rows["1e+30"]["failed"]) == ("0", "1")
    assert (rows["0.01"]["seeds"], rows["0.01"]["failed"]) == ("1", "0")
    error = _strict((sweep / "0" / "error.json").read_text())
    assert error["error"].startswith("NonFiniteLoss: the training loss is nan")
    assert not (sweep / "0" / "metrics.json").exists()
    _strict((sweep / "1" / "metrics.json").read_text())


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_files_hold_no_nan_or_infinity_tokens(tmp_path, value):
    write_json_atomic(tmp_path / "m.json", {"a": value, "b": [1.0, value], "c": {"d": value}})
    assert _strict((tmp_path / "m.json").read_text()) == {
        "a": None,
        "b": [1.0, None],
        "c": {"d": None},
    }


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "op=ste", "trainer.max_epochs=500",
         "callbacks.progress_refresh_rate=0", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-2000:]
    assert "resume with:\n  python train.py op=ste trainer.max_epochs=500" in stderr
    assert f"ckpt_path={last}" in stderr and "Traceback" not in stderr
    assert last.is_file() and not (run_dir / "metrics.json").exists()


@pytest.mark.parametrize(
    ("added", "nearest"),
    [
        ("+trainer.max_epoch=3", "did you mean trainer.max_epochs?"),
        ("+op.step.betta=8", "did you mean op.step.beta?"),
        ("+data.batchsize=8", "did you mean data.batch_size?"),
        ("+seeds=1", "did you mean seed?"),
    ],
)
def test_a_key_added_with_plus_that_the_schema_lacks_is_refused_before_any_write(
    tmp_path, added, nearest
):
    result = train_cli(*FAST, added, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    key = added[1:].split("=")[0]
    assert lines == [lines[0]] and lines[0].startswith(f"Error in the config: {key}: no such key")
    assert nearest in lines[0] and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=custom", "model.net._target_=mynets.Net", "+model.net.width=64"],
        ["op=atan", "op.layers=[{match: 'features.3', name: sigmoid, beta: 8}]"],
        ["op=sigmoid", "+schedule.params.step.beta={kind: cosine, start: 1, end: 8}"],
    ],
)
def test_free_form_keys_are_not_refused(tmp_path, overrides):
    check_keys(compose_config(overrides, tmp_path))


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path):
    write_tiny_mnist(tmp_path / "mnist", gz=False)
    images = tmp_path / "mnist" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    before = sorted(tmp_path.rglob("*"))
    for where in ([], [f"hydra.run.dir={tmp_path / 'new' / 'run'}"]):
        result = train_cli(*FAST, "data=mnist", f"data.root={tmp_path / 'mnist'}", *where,
                           cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert lines == [f"Error: {images}: truncated: expected 156816 bytes (a 16-byte header "
                         "and shape 200x28x28), found 1000"], result.stderr[-2000:]  # fmt: skip
        assert sorted(tmp_path.rglob("*")) == before  # no outputs/<date>/..., no new/run


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU to refuse one")
def test_a_trainer_setting_lightning_refuses_is_one_line_and_no_folder(tmp_path):
    result = train_cli(*FAST, "trainer.accelerator=gpu", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == ["Error: No supported gpu backend found!"]
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_is_removed_or_marked_failed_only_where_it_made_the_folder(tmp_path):
    error = NonFiniteLoss("the training loss is nan at step 30 (epoch 2)")
    husk = tmp_path / "outputs" / "day" / "run"  # a resume's copies, but no validation
    (husk / "checkpoints").mkdir(parents=True)
    (husk / "checkpoints" / "last.ckpt").write_bytes(b"copied")
    hydra_callbacks._CREATED["run"] = tmp_path / "outputs"
    settle_failed_run(husk, error, ["op=ste"])
    assert not (tmp_path / "outputs").exists()  # the folders made for it go too

    begun = tmp_path / "begun"  # validated once: its curves, its last.ckpt to resume
    (begun / "checkpoints").mkdir(parents=True)
    (begun / "curves.json").write_text("{}")
    hydra_callbacks._CREATED["run"] = begun
    settle_failed_run(begun, error, ["op=ste"])
    recorded = _strict((begun / "error.json").read_text())
    assert recorded["error"] == f"NonFiniteLoss: {error}" and recorded["overrides"] == ["op=ste"]

    there = tmp_path / "there"
    (there / "checkpoints").mkdir(parents=True)
    hydra_callbacks._CREATED["run"] = None  # the folder was there before the run
    settle_failed_run(there, error, ["op=ste"])
    assert there.is_dir() and list(there.rglob("*")) == [there / "checkpoints"]


def test_the_config_check_imports_neither_lightning_nor_torchmetrics():
    """A bad value on the command line is refused within the time of importing torch and Hydra:
    the check, the schema and the registries it reads leave the slow imports to the run."""
    script = (
        "import json, sys\n"
        "import surrogate.training.config.validate, surrogate.training.config.schema\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    tops = {name.split(".")[0] for name in json.loads(result.stdout)}
    assert not tops & {"pytorch_lightning", "lightning", "torchmetrics"}

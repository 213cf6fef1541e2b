"""The training loop: every op preset composes and trains, bad input fails early, runs are
reproducible and resumable, and the IDX loaders read both folder layouts."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

import surrogate
from surrogate.training.data.datamodule import load_splits
from surrogate.training.data.readers import read_idx
from surrogate.training.run import run
from tests.app.helpers import (
    FAST,
    ROOT,
    compose_config,
    start_cli,
    train_cli,
    write_idx,
    write_tiny_mnist,
)

PRESETS = sorted(p.stem for p in (ROOT / "configs" / "op").glob("*.yaml"))
VOLATILE = {"wall_seconds", "train_seconds", "val_seconds", "best_checkpoint", "overrides"}


def test_every_op_preset_exists():
    assert set(PRESETS) >= {
        "none", "ste", "clipped_ste", "sigmoid", "fast_sigmoid", "atan", "tanh", "triangle",
        "gaussian", "exponential", "swish", "relaxed", "gumbel", "reinmax", "sparsemax",
        "perturbed", "float",
    }  # fmt: skip


def test_the_float_twin_replaces_sign_and_step_by_relu(tmp_path):
    config = compose_config(["op=float"], tmp_path)
    assert config["model"]["float_twin"] is True
    assert all(config["op"][op]["relaxed"] for op in ("step", "sign", "round", "argmax"))
    assert config["op"]["reference"]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_op_preset_trains_a_few_steps(preset, tmp_path):
    config = compose_config([f"op={preset}", *FAST], tmp_path)
    metrics = run(config, tmp_path, preset=preset)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert saved["op"] == preset and saved["epochs"] == 1 and saved["steps"] == 3
    assert (
        0.0 <= saved["test_acc"] <= 1.0 and len(saved["val_acc"]) == len(saved["train_loss"]) == 1
    )
    for op in ("step", "sign", "round", "argmax"):
        assert saved["estimators"][op]["name"] == config["op"][op]["name"]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "csv" / "metrics.csv").is_file()


def test_loss_logged_on_the_logging_steps_and_as_an_epoch_mean(tmp_path):
    """The step loss reaches the logger every log_every_n_steps steps; the epoch mean once per
    epoch, equal to the mean the curve recorder keeps on its own."""
    overrides = [*FAST, "trainer.max_epochs=2", "trainer.limit_train_batches=5",
                 "trainer.log_every_n_steps=2"]  # fmt: skip
    metrics = run(compose_config(["op=ste", *overrides], tmp_path), tmp_path, "ste")
    lines = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    step_rows = [int(r["step"]) for r in rows if r["train/loss_step"]]
    assert step_rows == [1, 3, 5, 7, 9]  # global steps 2, 4, ... counted from 1
    epoch_means = [float(r["train/loss_epoch"]) for r in rows if r["train/loss_epoch"]]
    assert epoch_means == pytest.approx(metrics["train_loss"], rel=1e-6)
    assert len(epoch_means) == 2


def test_resume_from_a_mid_epoch_checkpoint(tmp_path):
    """A run resumed from a checkpoint written by a mid-epoch validation (Lightning then skips the
    epoch's start hook) trains to its end."""
    overrides = [*FAST, "trainer.max_epochs=2", "trainer.limit_train_batches=4",
                 "trainer.val_check_interval=0.5"]  # fmt: skip
    first = tmp_path / "first"
    run(compose_config(["op=ste", "trainer.max_epochs=1", *overrides[1:]], first), first, "ste")
    last = first / "checkpoints" / "last.ckpt"
    config = compose_config(["op=ste", *overrides], tmp_path / "resumed")
    config["ckpt_path"] = str(last)
    metrics = run(config, tmp_path / "resumed", "ste")
    assert metrics["epochs"] == 2 and metrics["steps"] == 8


def test_one_override_changes_one_thing(tmp_path):
    config = compose_config(["op=atan", "op.argmax.name=gumbel", "op.step.alpha=4"], tmp_path)
    assert config["op"]["argmax"]["name"] == "gumbel"
    assert config["op"]["step"] == {**config["op"]["sign"], "alpha": 4.0}
    metrics = run(compose_config(["op=sigmoid", "op.step.beta=8", *FAST], tmp_path), tmp_path, "x")
    assert metrics["estimators"]["step"] == {"name": "sigmoid", "beta": 8.0, "relaxed": False}
    assert metrics["estimators"]["sign"] == {"name": "sigmoid", "beta": 4.0, "relaxed": False}


def test_checkpoints_hold_plain_values_and_each_layer_s_estimator(tmp_path):
    run(compose_config(["op=gumbel", *FAST], tmp_path), tmp_path, "gumbel")
    for name in ("last.ckpt", "best.ckpt"):  # weights_only refuses anything but plain values
        ckpt = torch.load(tmp_path / "checkpoints" / name, weights_only=True)
        assert ckpt["hyper_parameters"]["model"]["name"] == "cnn"
        assert ckpt["layer_estimators"]["bottleneck.2"] == {
            "op": "argmax", "name": "gumbel", "tau": 1.0, "relaxed": False
        }  # fmt: skip


def test_a_module_loaded_from_a_checkpoint_has_the_estimators_it_trained_with(tmp_path):
    from surrogate.training.module import HardOpModule

    layers = 'op.layers=[{match: "features.3", name: sigmoid, relaxed: true, beta: 3}]'
    run(compose_config(["op=atan", layers, *FAST], tmp_path), tmp_path, "atan")
    module = HardOpModule.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    sign, step = module.net.features[3], module.net.features[7]
    assert (sign.estimator, sign.relaxed) == (surrogate.estimator("sigmoid", beta=3.0), True)
    assert (step.estimator, step.relaxed) == (surrogate.estimator("atan"), False)


def _same_numbers(a: dict, b: dict) -> None:
    assert {k: v for k, v in a.items() if k not in VOLATILE} == {
        k: v for k, v in b.items() if k not in VOLATILE
    }


def test_same_seed_same_metrics_and_seed_zero_is_honoured(tmp_path):
    overrides = ["op=gumbel", "seed=0", "trainer.max_epochs=2", "trainer.limit_train_batches=4"]
    overrides += ["callbacks.progress_refresh_rate=0"]
    first = run(compose_config(overrides, tmp_path / "a"), tmp_path / "a", "gumbel")
    second = run(compose_config(overrides, tmp_path / "b"), tmp_path / "b", "gumbel")
    _same_numbers(first, second)
    assert first["seed"] == 0
    other = run(compose_config([*overrides, "seed=1"], tmp_path / "c"), tmp_path / "c", "gumbel")
    assert other["train_loss"] != first["train_loss"]


def test_idx_reader_round_trips_gzipped_and_plain(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        assert np.array_equal(read_idx(tmp_path / name), array)


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_family_reads_both_folder_layouts(tmp_path, layout, gz):
    folder = tmp_path if layout == "flat" else tmp_path / "FashionMNIST" / "raw"
    write_tiny_mnist(folder, gz=gz)
    splits = load_splits("fashion_mnist", tmp_path, val_fraction=0.1, test_fraction=0.0, seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [180, 20, 50]
    assert splits["train"].tensors[0].shape[1:] == (1, 28, 28)
    assert splits["train"].tensors[0].mean().abs() < 1e-4  # normalized with train statistics


def test_mnist_from_flat_idx_folder_trains(tmp_path):
    write_tiny_mnist(tmp_path / "idx", gz=True)
    overrides = ["data=mnist", f"data.root={tmp_path / 'idx'}", "data.download=false", *FAST]
    metrics = run(compose_config(overrides, tmp_path / "out"), tmp_path / "out", "ste")
    assert metrics["data"] == "mnist" and metrics["steps"] == 2  # 180 images, batches of 128


# --- the command line: exit codes, messages, nothing written ------------------------------------


BAD_INPUTS = [
    ("op=foo", ["foo", "ste", "atan", "gumbel"]),  # unknown preset: lists the available ones
    ("op.step.betta=8", ["betta"]),  # typo in a key
    ("op.step.beta=abc", ["abc", "beta"]),  # wrong type
    ("op=sigmoid op.step.beta=-1", ["beta", "-1", "> 0"]),  # out of range (library check)
    ("op=atan op.step.beta=8", ["beta", "alpha"]),  # a parameter the estimator does not take
    ("op.sign.name=gumbel", ["gumbel", "sign"]),  # an estimator that does not apply
    ("data=mnist data.root=/nonexistent", ["/nonexistent", "train-images-idx3-ubyte"]),
    ("model.optimizer.name=adamm", ["adamm", "adam"]),
    ("seed=-1", ["seed", "-1", "[0, 4294967295]"]),
    ("schedule=relaxed_then_hard", ["schedule.relaxed_until_epoch", "'ste'", "sigmoid"]),
    ("schedule=anneal", ["anneal", "anneal_beta", "relaxed_then_hard"]),
    ("callbacks.probe_size=0", ["callbacks.probe_size", "got 0"]),
]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory) -> dict:
    """Every bad command line of BAD_INPUTS, all started at once (each one is mostly an interpreter
    start): override -> (exit status, output, its folder, seconds)."""
    base = tmp_path_factory.mktemp("bad_inputs")
    started = {}
    for number, (override, _) in enumerate(BAD_INPUTS):
        cwd = base / str(number)
        cwd.mkdir()
        args = (*override.split(), f"hydra.run.dir={cwd / 'run'}")
        started[override] = (start_cli(*args, cwd=cwd), cwd, time.perf_counter())
    runs = {}
    for override, (proc, cwd, start) in started.items():
        stdout, stderr = proc.communicate(timeout=300)
        runs[override] = (proc.returncode, stdout + stderr, cwd, time.perf_counter() - start)
    return runs


@pytest.mark.parametrize(("override", "expected"), BAD_INPUTS)
def test_bad_input_fails_early_names_the_value_and_writes_nothing(
    bad_input_runs, override, expected
):
    returncode, message, cwd, seconds = bad_input_runs[override]
    assert returncode != 0, message
    for word in expected:
        assert word in message, (word, message)
    assert not (cwd / "run").exists() and not (cwd / "outputs").exists()
    assert seconds < 120  # refused at the start, not after training (all 8 share the cores)


@pytest.mark.slow
def test_train_ste_on_digits_reaches_0_9_from_the_command_line(tmp_path):
    start = time.perf_counter()
    result = train_cli("op=ste", cwd=tmp_path)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    (metrics_file,) = (tmp_path / "outputs").glob("*/*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["test_acc"] >= 0.90, metrics
    assert "test acc" in result.stdout and str(metrics_file.parent) in result.stdout
    print(f"python train.py op=ste: {elapsed:.1f} s, test acc {metrics['test_acc']:.4f}")


@pytest.mark.slow
def test_ddp_sim_trains_with_two_processes(tmp_path):
    result = train_cli(
        "trainer=ddp_sim", *FAST[1:], "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and len(metrics["val_acc"]) == 2


# --- every run its own folder --------------------------------------------------------------------


def _fixed_dirs_experiment(config_dir, run_dir, sweep_dir) -> list[str]:
    """Arguments that set hydra.run.dir and hydra.sweep.dir from a config file, as a config's
    ``${now:...}`` pattern does (a folder set on the command line is used as it is)."""
    (config_dir / "experiment").mkdir(parents=True)
    (config_dir / "experiment" / "fixed_dirs.yaml").write_text(
        f"# @package _global_\nhydra:\n  run:\n    dir: {run_dir}\n  sweep:\n    dir: {sweep_dir}\n"
    )
    return ["--config-dir", str(config_dir), "experiment=fixed_dirs"]


def test_runs_started_together_get_folders_of_their_own(tmp_path):
    """Three runs whose configured folder is the same (as two runs started in the same second):
    each gets its own, and nothing is overwritten."""
    run_dir = tmp_path / "out" / "same"
    args = [*_fixed_dirs_experiment(tmp_path / "conf", run_dir, tmp_path / "m"), *FAST]
    procs = [start_cli(*args, f"seed={seed}", cwd=tmp_path) for seed in range(3)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert folders == ["same", "same_2", "same_3"]
    seeds = {
        json.loads((tmp_path / "out" / f / "metrics.json").read_text())["seed"] for f in folders
    }
    assert seeds == {0, 1, 2}


def test_a_sweep_whose_folder_exists_gets_a_new_one_with_all_its_jobs(tmp_path):
    sweep_dir = tmp_path / "m" / "sweep"
    (sweep_dir / "0").mkdir(parents=True)
    (sweep_dir / "0" / "metrics.json").write_text("{}")  # an earlier sweep's file
    args = _fixed_dirs_experiment(tmp_path / "conf", tmp_path / "r", sweep_dir)
    result = train_cli("-m", *args, "op=ste,none", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (sweep_dir / "0" / "metrics.json").read_text() == "{}"
    new = tmp_path / "m" / "sweep_2"
    assert {json.loads((new / j / "metrics.json").read_text())["op"] for j in "01"} == {
        "ste",
        "none",
    }
    assert (new / "comparison.md").is_file()


def test_a_run_prints_no_dependency_noise(tmp_path):
    result = train_cli("op=ste", *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "litlogger" not in output and "was configured so" not in output
    assert "test acc" in result.stdout

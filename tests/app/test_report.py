"""Sweeps: the report's numbers against the runs' own metrics.json, failures listed, the CLI on a
folder of metrics alone, and the parallel and Optuna sweepers."""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from surrogate.training.report import write_report
from tests.app.helpers import FAST, train_cli, write_tiny_mnist

THRESHOLDS = (0.5, 0.8, 0.9)


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def metrics_by_config(sweep: Path, key: str) -> dict[str, list[dict]]:
    """Each finished job's metrics.json, grouped by the value of ``key`` in its overrides."""
    groups: dict[str, list[dict]] = {}
    for path in sweep.glob("*/metrics.json"):
        metrics = json.loads(path.read_text())
        value = next(o.split("=", 1)[1] for o in metrics["overrides"] if o.startswith(key + "="))
        groups.setdefault(value, []).append(metrics)
    return groups


def close(cell: str, expected: float) -> bool:
    if math.isnan(expected):
        return cell == ""
    return math.isclose(float(cell), expected, rel_tol=1e-3, abs_tol=1e-3)


def check_rows_against_metrics(sweep: Path, key: str) -> list[dict]:
    """Every number of comparison.csv, recomputed here from the runs' metrics.json."""
    rows = read_csv(sweep / "comparison.csv")
    groups = metrics_by_config(sweep, key)
    assert {r[key] for r in rows} >= set(groups)
    for row in rows:
        runs = groups.get(row[key], [])
        assert int(row["seeds"]) == len(runs)
        for name in ("test_acc", "best_val_acc"):
            values = [m[name] for m in runs]
            mean = statistics.fmean(values) if values else math.nan
            std = statistics.stdev(values) if len(values) > 1 else math.nan
            assert close(row[f"{name}_mean"], mean) and close(row[f"{name}_std"], std), row
        for t in THRESHOLDS:
            firsts = []
            for m in runs:
                hits = [i for i, acc in enumerate(m["val_acc"]) if acc >= t]
                firsts.append(
                    (m["val_epochs"][hits[0]], m["val_seconds"][hits[0]]) if hits else None
                )
            complete = bool(firsts) and None not in firsts
            epochs = statistics.fmean(f[0] for f in firsts) if complete else math.nan
            seconds = statistics.fmean(f[1] for f in firsts) if complete else math.nan
            assert close(row[f"epochs_to_val_acc_{t:g}"], epochs), (row, t)
            assert close(row[f"seconds_to_val_acc_{t:g}"], seconds), (row, t)
        wall = statistics.fmean(m["wall_seconds"] for m in runs) if runs else math.nan
        assert close(row["wall_seconds_mean"], wall)
        for column in (c for c in row if c.startswith("diag/")):
            name = column.removeprefix("diag/")
            finals = [[v for v in m["diagnostics"][name] if v is not None][-1] for m in runs]
            assert close(row[column], statistics.fmean(finals) if finals else math.nan), column
    means = [float(r["test_acc_mean"]) for r in rows if r["test_acc_mean"]]
    assert means == sorted(means, reverse=True)  # ranked
    check_significance(rows, {k: [m["test_acc"] for m in v] for k, v in groups.items()}, key)
    return rows


def welch_reference(a: list[float], b: list[float]) -> float:
    """Welch's two-sided p, from its textbook formulas in float64."""
    from scipy.stats import t as student_t

    na, nb = len(a), len(b)
    va = sum((x - sum(a) / na) ** 2 for x in a) / (na - 1) / na
    vb = sum((x - sum(b) / nb) ** 2 for x in b) / (nb - 1) / nb
    t = (sum(a) / na - sum(b) / nb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return 2 * (1 - student_t.cdf(abs(t), df))


def check_significance(rows: list[dict], accuracies: dict[str, list[float]], key: str) -> None:
    """Each row's mark against the best row, recomputed from the per-seed test accuracies."""
    best = accuracies.get(rows[0][key], [])
    assert rows[0]["vs_best"] == ("best" if best else "?") and rows[0]["p_vs_best"] == ""
    for row in rows[1:]:
        mine = accuracies.get(row[key], [])
        if len(best) < 2 or len(mine) < 2:
            assert (row["vs_best"], row["p_vs_best"]) == ("?", ""), row
            continue
        p = welch_reference(best, mine)
        assert math.isclose(float(row["p_vs_best"]), p, rel_tol=1e-6, abs_tol=1e-12), (row, p)
        assert row["vs_best"] == ("lower" if p < 0.05 else "tied"), row


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory) -> Path:
    """2 presets x 2 seeds, a few steps each, validating twice per epoch."""
    sweep = tmp_path_factory.mktemp("sweep")
    result = train_cli(
        "-m", "op=ste,none", "seed=0,1", *FAST, "trainer.max_epochs=2",
        "trainer.limit_train_batches=6", "trainer.val_check_interval=0.5",
        "model.optimizer.lr=0.05", f"hydra.sweep.dir={sweep}", cwd=sweep,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return sweep


def test_sweep_report_matches_the_runs_metrics(tiny_sweep):
    rows = check_rows_against_metrics(tiny_sweep, "op")
    assert [r["op"] for r in sorted(rows, key=lambda r: r["op"])] == ["none", "ste"]
    assert all(r["seeds"] == "2" and r["failed"] == "0" for r in rows)
    md = (tiny_sweep / "comparison.md").read_text()
    assert "| 1 | `" in md and "| 2 | `" in md and "None." in md
    png = (tiny_sweep / "convergence.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    layers = ("features.3", "features.7", "bottleneck.2")
    metrics = ("dead_fraction", "flip_ratio", "grad_norm", "grad_cosine")
    expected = [f"diag/{layer}/{metric}" for layer in layers for metric in metrics]
    assert [c for c in rows[0] if c.startswith("diag/")] == [*expected, "diag/network/grad_cosine"]
    png = (tiny_sweep / "diagnostics.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_runs_without_diagnostics_give_no_diagnostics_figure_or_columns(tiny_sweep, tmp_path):
    for path in tiny_sweep.glob("*/metrics.json"):
        metrics = json.loads(path.read_text())
        del metrics["diagnostics"], metrics["diagnostic_layers"]
        (tmp_path / path.parent.name).mkdir()
        (tmp_path / path.parent.name / "metrics.json").write_text(json.dumps(metrics))
    write_report(tmp_path)
    assert not any(c.startswith("diag/") for c in read_csv(tmp_path / "comparison.csv")[0])
    assert (tmp_path / "convergence.png").is_file()
    assert not (tmp_path / "diagnostics.png").exists()


def test_report_cli_rebuilds_from_metrics_json_alone(tiny_sweep, tmp_path):
    for path in tiny_sweep.glob("*/metrics.json"):
        (tmp_path / path.parent.name).mkdir()
        shutil.copy(path, tmp_path / path.parent.name / "metrics.json")
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.training.report", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert read_csv(tmp_path / "comparison.csv") == read_csv(tiny_sweep / "comparison.csv")
    check_rows_against_metrics(tmp_path, "op")
    assert (tmp_path / "convergence.png").is_file() and "comparison.md" in result.stdout


def test_report_cli_refuses_a_missing_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.training.report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "nope" in result.stderr


def test_a_failed_job_is_listed_and_the_others_reported(tmp_path):
    write_tiny_mnist(tmp_path / "idx", gz=False)
    sweep = tmp_path / "sweep"
    result = train_cli(
        "-m", "data=mnist", f"data.root={tmp_path / 'idx'},{tmp_path / 'missing'}", *FAST,
        "hydra.callbacks.sweep_report.thresholds=[0.25]", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0  # Hydra re-raises the failed job's error after the sweep
    rows = {Path(r["data.root"]).name: r for r in read_csv(sweep / "comparison.csv")}
    assert rows["idx"]["seeds"] == "1" and rows["idx"]["failed"] == "0"
    assert rows["missing"]["seeds"] == "0" and rows["missing"]["failed"] == "1"
    thresholds = [c for c in rows["idx"] if c.startswith("epochs_to_val_acc_")]
    assert thresholds == ["epochs_to_val_acc_0.25"]  # the sweep's own thresholds
    md = (sweep / "comparison.md").read_text()
    failures = md.split("## Failed or missing runs")[1]
    assert "missing" in failures and "FileNotFoundError" in failures and "not found" in failures
    error = json.loads((sweep / "1" / "error.json").read_text())
    assert "missing" in error["error"] and (sweep / "convergence.png").is_file()


def test_a_killed_job_is_listed_as_missing(tiny_sweep, tmp_path):
    shutil.copytree(tiny_sweep, tmp_path / "copy")
    (tmp_path / "copy" / "0" / "metrics.json").unlink()  # as if killed before the end
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.training.report", str(tmp_path / "copy")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "copy" / "comparison.md").read_text()
    assert "`0`" in md.split("## Failed or missing runs")[1] and "killed" in md
    assert sum(int(r["failed"]) for r in read_csv(tmp_path / "copy" / "comparison.csv")) == 1


def test_a_job_that_never_started_is_listed_as_missing(tiny_sweep, tmp_path):
    """A sweep killed after 3 of its 4 jobs: the fourth has no folder, only a place in the plan
    Hydra saved in multirun.yaml."""
    shutil.copytree(tiny_sweep, tmp_path / "copy")
    overrides = (tmp_path / "copy" / "3" / ".hydra" / "overrides.yaml").read_text()
    shutil.rmtree(tmp_path / "copy" / "3")
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.training.report", str(tmp_path / "copy")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    failures = (tmp_path / "copy" / "comparison.md").read_text().split("## Failed or missing")[1]
    (line,) = [line for line in failures.splitlines() if line.startswith("- ")]
    assert "never started" in line
    assert "op=none" in line and "seed=1" in line and "seed=1" in overrides
    rows = {r["op"]: r for r in read_csv(tmp_path / "copy" / "comparison.csv")}
    assert (rows["none"]["seeds"], rows["none"]["failed"]) == ("1", "1")


@pytest.mark.slow
def test_joblib_launcher_gives_the_same_report(tiny_sweep, tmp_path):
    result = train_cli(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "op=ste,none", "seed=0,1",
        *FAST, "trainer.max_epochs=2", "trainer.limit_train_batches=6",
        "trainer.val_check_interval=0.5", "model.optimizer.lr=0.05",
        f"hydra.sweep.dir={tmp_path}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_rows_against_metrics(tmp_path, "op")
    parallel = read_csv(tmp_path / "comparison.csv")
    serial = read_csv(tiny_sweep / "comparison.csv")
    assert strip_timings(parallel) == strip_timings(serial)  # same numbers, in parallel


def strip_timings(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]


@pytest.mark.slow
def test_optuna_search_tunes_the_estimator_parameter(tmp_path):
    result = train_cli(
        "-m", "hparams_search=optuna", *FAST, "hydra.sweeper.n_trials=3",
        f"hydra.sweep.dir={tmp_path}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = [json.loads(p.read_text()) for p in tmp_path.glob("*/metrics.json")]
    assert len(runs) == 3
    betas = {m["estimators"]["step"]["beta"] for m in runs}
    assert len(betas) == 3  # every trial its own beta, shared by step, sign and round
    assert all(m["estimators"]["sign"]["beta"] == m["estimators"]["step"]["beta"] for m in runs)
    assert "op.step.beta" in (tmp_path / "optimization_results.yaml").read_text()
    output = result.stdout + result.stderr
    assert "setup plugin" not in output and "Tip:" not in output  # no dependency noise

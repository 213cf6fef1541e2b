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
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from surrogate.training.report.sweep import write_report
from tests.app.helpers import FAST, train_cli, write_tiny_mnist
from tests.app.test_significance import holm_reference, paired_reference, welch_reference

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


def check_rows_against_metrics(
    sweep: Path, key: str, metric: str = "test_acc", thresholds: Sequence[float] = THRESHOLDS
) -> list[dict]:
    """Every number of comparison.csv, recomputed here from the runs' metrics.json; ``metric``:
    the headline, higher is better for accuracy and lower for anything else these tests use."""
    rows = read_csv(sweep / "comparison.csv")
    groups = metrics_by_config(sweep, key)
    higher = metric == "test_acc"
    name = metric.removeprefix("test_")
    assert {r[key] for r in rows} >= set(groups)
    for row in rows:
        runs = groups.get(row[key], [])
        assert int(row["seeds"]) == len(runs)
        for column in (metric, f"best_val_{name}"):
            values = [m[column] for m in runs]
            mean = statistics.fmean(values) if values else math.nan
            std = statistics.stdev(values) if len(values) > 1 else math.nan
            assert close(row[f"{column}_mean"], mean) and close(row[f"{column}_std"], std), row
        for t in thresholds:
            firsts = []
            for m in runs:
                curve = m[f"val_{name}"]
                hits = [i for i, v in enumerate(curve) if (v >= t if higher else v <= t)]
                firsts.append(
                    (m["val_epochs"][hits[0]], m["val_seconds"][hits[0]]) if hits else None
                )
            complete = bool(firsts) and None not in firsts
            epochs = statistics.fmean(f[0] for f in firsts) if complete else math.nan
            seconds = statistics.fmean(f[1] for f in firsts) if complete else math.nan
            assert close(row[f"epochs_to_val_{name}_{t:g}"], epochs), (row, t)
            assert close(row[f"seconds_to_val_{name}_{t:g}"], seconds), (row, t)
        wall = statistics.fmean(m["wall_seconds"] for m in runs) if runs else math.nan
        assert close(row["wall_seconds_mean"], wall)
        for column in (c for c in row if c.startswith("diag/")):
            diag = column.removeprefix("diag/")
            finals = [[v for v in m["diagnostics"][diag] if v is not None][-1] for m in runs]
            assert close(row[column], statistics.fmean(finals) if finals else math.nan), column
    means = [float(r[f"{metric}_mean"]) for r in rows if r[f"{metric}_mean"]]
    assert means == sorted(means, reverse=higher)  # ranked, the best first
    check_significance(rows, groups, lambda r: r[key], metric, higher)
    return rows


def check_significance(
    rows: list[dict],
    runs: dict[str, list[dict]],
    name: Callable[[dict], str],
    metric: str = "test_acc",
    higher_is_better: bool = True,
) -> None:
    """Each row's marks against the best estimator and against each reference, recomputed from
    the runs' metrics.json (``runs``: by configuration, as ``name(row)`` names it): the paired
    t-test over the seeds two configurations share when they share two or more, Welch's test
    otherwise, Holm's correction over the estimator rows of each column."""
    references = [r for r in rows if r["reference"] == "true"]
    estimators = [r for r in rows if r["reference"] == "false"]
    assert len(references) + len(estimators) == len(rows)
    best = next((r for r in estimators if r["seeds"] != "0"), None)
    versus = [c.removeprefix("vs_") for c in rows[0] if c.startswith("vs_")]
    assert versus[0] == "best_estimator" and sorted(versus[1:]) == sorted(map(name, references))
    targets = [("best_estimator", best)] + [(v, r) for v in versus[1:] for r in references
                                            if name(r) == v]  # fmt: skip
    for key, target in targets:
        tested = [r for r in estimators if r is not target]
        ps, tests, diffs = [], [], []
        other = {m["seed"]: m[metric] for m in runs.get(name(target), [])} if target else {}
        for row in tested:
            mine = {m["seed"]: m[metric] for m in runs.get(name(row), [])}
            common = sorted(mine.keys() & other.keys())
            if len(common) >= 2:
                a, b = [mine[s] for s in common], [other[s] for s in common]
                ps.append(paired_reference(a, b)), tests.append("paired")
            elif len(mine) >= 2 and len(other) >= 2:
                a, b = list(mine.values()), list(other.values())
                ps.append(welch_reference(a, b)), tests.append("Welch")
            else:
                a, b = [], []
                ps.append(math.nan), tests.append("")
            diffs.append(statistics.fmean(a) - statistics.fmean(b) if a else math.nan)
        for row, p, test, diff in zip(tested, holm_reference(ps), tests, diffs, strict=True):
            assert row[f"test_vs_{key}"] == test, (key, row)
            if math.isnan(p):
                assert (row[f"vs_{key}"], row[f"p_vs_{key}"]) == ("?", ""), (key, row)
                continue
            assert math.isclose(float(row[f"p_vs_{key}"]), p, rel_tol=1e-6, abs_tol=1e-9), row
            better = (diff > 0) == higher_is_better
            expected = "tied" if p >= 0.05 else ("better" if better else "worse")
            assert row[f"vs_{key}"] == expected, (key, row, p)
        for row in rows:
            if all(row is not r for r in tested):
                blank = "best" if key == "best_estimator" and row is best else ""
                assert row[f"vs_{key}"] == blank and row[f"p_vs_{key}"] == "", (key, row)


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
        [sys.executable, "-m", "surrogate.training.report.sweep", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert read_csv(tmp_path / "comparison.csv") == read_csv(tiny_sweep / "comparison.csv")
    check_rows_against_metrics(tmp_path, "op")
    assert (tmp_path / "convergence.png").is_file() and "comparison.md" in result.stdout


def test_report_cli_refuses_a_missing_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.training.report.sweep", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "nope" in result.stderr


def write_run(
    sweep: Path,
    folder: str,
    op: str,
    seed: int,
    value: float,
    metric: str = "test_acc",
    **extra,
) -> None:
    """A finished run's metrics.json, as train.py writes it: ``value`` of the headline ``metric``,
    a validation curve of three epochs that ends there, ``extra`` keys (headline, reference)."""
    name = metric.removeprefix("test_")
    higher = metric == "test_acc"
    curve = [value - 0.3, value - 0.1, value] if higher else [value + 30, value + 10, value]
    metrics = {
        "op": op, "seed": seed, "overrides": [f"op={op}", f"seed={seed}"], metric: value,
        f"best_val_{name}": max(curve) if higher else min(curve), f"val_{name}": curve,
        "val_epochs": [1, 2, 3], "val_seconds": [10.0 + i for i in range(0, 30, 10)],
        "train_loss": [1.0, 0.5, 0.3], "wall_seconds": 33.0 + len(folder), **extra,
    }  # fmt: skip
    (sweep / folder).mkdir(parents=True)
    (sweep / folder / "metrics.json").write_text(json.dumps(metrics))


def write_sweep(sweep: Path, values: dict[str, list[float]], **extra) -> Path:
    """One run per op and seed, ``values[op][seed]`` its headline value."""
    jobs = [(op, seed, v) for op, vs in values.items() for seed, v in enumerate(vs)]
    for i, (op, seed, value) in enumerate(jobs):
        write_run(sweep, str(i), op, seed, value, **extra)
    return sweep


# A sweep like compare's: the references on top, one estimator clearly behind the rest.
COMPARE = {
    "relaxed": [0.941, 0.946, 0.950],
    "float": [0.952, 0.961, 0.955],
    "triangle": [0.902, 0.913, 0.905],
    "ste": [0.899, 0.904, 0.897],
    "none": [0.50, 0.53, 0.51],
}


def table_rows(md: str) -> dict[str, list[str]]:
    """comparison.md's table: the header and each row's cells, by the row's first swept value."""
    lines = [line for line in md.split("\n\n")[1].splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {"header": cells[0], **{row[1].strip("`"): row for row in cells[1:]}}


def test_references_are_compared_with_and_never_the_best(tmp_path, figure_labels):
    sweep = write_sweep(tmp_path, COMPARE)
    write_report(sweep)
    title = f"Sweep {tmp_path.name}: mean ± std over seeds, legend ranked by test accuracy"
    assert figure_labels == [("validation accuracy", title)]
    rows = check_rows_against_metrics(sweep, "op")
    assert [r["op"] for r in rows] == ["float", "relaxed", "triangle", "ste", "none"]
    assert [r["reference"] for r in rows] == ["true", "true", "false", "false", "false"]
    assert [r["vs_best_estimator"] for r in rows[:3]] == ["", "", "best"]
    assert [r["vs_relaxed"] for r in rows[:2]] == ["", ""]  # references are not tested
    assert rows[4]["vs_best_estimator"] == "worse" and rows[4]["test_vs_float"] == "paired"
    md = (sweep / "comparison.md").read_text()
    table = table_rows(md)
    assert table["header"][:7] == [
        "rank", "op", "seeds", "test acc", "vs best estimator", "vs relaxed", "vs float"
    ]  # fmt: skip
    assert [table[op][0] for op in COMPARE] == ["ref", "ref", "1", "2", "3"]
    none = rows[4]
    assert table["none"][4:7] == [
        f"{none[f'vs_{key}']} (paired p {float(none[f'p_vs_{key}']):.2g})"
        for key in ("best_estimator", "relaxed", "float")
    ]
    assert "- Best estimator: `triangle` (test acc 0.9067 ± 0.0057, higher is better)." in md
    assert "- Against the best estimator, `triangle`: worse `none`; tied `ste`." in md
    assert "Holm" in md and "paired t-test" in md and "Welch" in md


def test_a_reference_is_what_metrics_json_says_else_relaxed_or_float(tmp_path):
    write_sweep(tmp_path, {"teacher": [0.95, 0.96]}, reference=True)
    write_sweep(tmp_path / "more", {"float": [0.97, 0.975]}, reference=False)
    for path in (tmp_path / "more").iterdir():
        path.rename(tmp_path / f"f{path.name}")
    write_sweep(tmp_path / "most", {"sigmoid": [0.90, 0.92], "ste": [0.89, 0.90]})
    for path in (tmp_path / "most").iterdir():
        path.rename(tmp_path / f"s{path.name}")
    (tmp_path / "x").mkdir()  # a failed job of op=relaxed: a reference without runs
    (tmp_path / "x" / "error.json").write_text(
        json.dumps({"error": "RuntimeError: boom", "overrides": ["op=relaxed", "seed=0"]})
    )
    shutil.rmtree(tmp_path / "more"), shutil.rmtree(tmp_path / "most")
    write_report(tmp_path)
    rows = {r["op"]: r for r in read_csv(tmp_path / "comparison.csv")}
    assert {op: r["reference"] for op, r in rows.items()} == {
        "float": "false", "teacher": "true", "sigmoid": "false", "ste": "false", "relaxed": "true"
    }  # fmt: skip
    assert rows["float"]["vs_best_estimator"] == "best"  # told it is no reference
    assert [c for c in rows["float"] if c.startswith("vs_")] == [
        "vs_best_estimator", "vs_teacher", "vs_relaxed"
    ]  # fmt: skip
    assert rows["relaxed"]["seeds"] == "0" and rows["relaxed"]["failed"] == "1"
    assert {r["vs_relaxed"] for op, r in rows.items() if op not in ("teacher", "relaxed")} == {"?"}
    groups = metrics_by_config(tmp_path, "op")
    check_significance(list(rows.values()), groups, lambda r: r["op"])


def test_a_configuration_both_reference_and_not_is_refused(tmp_path):
    write_run(tmp_path, "0", "teacher", 0, 0.9, reference=True)
    write_run(tmp_path, "1", "teacher", 1, 0.9, reference=False)
    write_run(tmp_path, "2", "ste", 0, 0.9)
    with pytest.raises(ValueError, match=r"teacher.*0/metrics.json.*1/metrics.json"):
        write_report(tmp_path)
    write_run(tmp_path, "3", "ste", 1, 0.9, reference="yes")
    shutil.rmtree(tmp_path / "1")
    with pytest.raises(ValueError, match=r"3/metrics.json: reference must be .*'yes'"):
        write_report(tmp_path)


def test_runs_of_the_same_seeds_are_paired_others_not(tmp_path):
    write_sweep(tmp_path, {"a": [0.90, 0.91, 0.92], "b": [0.88, 0.90, 0.905]})
    for i, value in enumerate([0.87, 0.89, 0.86]):
        write_run(tmp_path, f"c{i}", "c", 5 + i, value)  # seeds 5, 6, 7: none shared
    write_run(tmp_path, "d0", "d", 0, 0.86), write_run(tmp_path, "d1", "d", 1, 0.88)
    write_run(tmp_path, "d9", "d", 9, 0.80)  # seeds 0 and 1 shared with a: paired over those
    write_report(tmp_path)
    rows = check_rows_against_metrics(tmp_path, "op")
    tests = {r["op"]: r["test_vs_best_estimator"] for r in rows}
    assert tests == {"a": "", "b": "paired", "c": "Welch", "d": "paired"}
    md = (tmp_path / "comparison.md").read_text()
    assert "| `c` | 3 |" in md and "(Welch p " in table_rows(md)["c"][4]


NELBO = {"big": [92.0, 95.5, 93.0], "small": [81.0, 82.0, 81.7], "mid": [85.0, 86.5, 85.1]}


@pytest.fixture
def figure_labels(monkeypatch) -> list[tuple[str, str]]:
    """Each figure the report saves: (its first panel's y label, its title)."""
    from matplotlib.figure import Figure

    labels, savefig = [], Figure.savefig

    def record(fig, *args, **kwargs):
        labels.append((fig.axes[0].get_ylabel(), fig._suptitle.get_text()))
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return labels


def test_a_lower_is_better_headline_ranks_tests_and_thresholds_its_way(tmp_path, figure_labels):
    headline = {"metric": "test_nelbo", "higher_is_better": False}
    write_sweep(tmp_path, NELBO, metric="test_nelbo", headline=headline)
    write_report(tmp_path, thresholds=(110, 100, 90))
    rows = check_rows_against_metrics(tmp_path, "op", "test_nelbo", thresholds=(110, 100, 90))
    assert [r["op"] for r in rows] == ["small", "mid", "big"]  # the lowest first
    assert rows[0]["vs_best_estimator"] == "best" and rows[2]["vs_best_estimator"] == "worse"
    assert "test_acc_mean" not in rows[0] and "epochs_to_val_nelbo_100" in rows[0]
    assert float(rows[0]["epochs_to_val_nelbo_110"]) == 2  # 81 + 30 > 110 >= 81 + 10
    md = (tmp_path / "comparison.md").read_text()
    header = table_rows(md)["header"]
    assert header[3:6] == ["test nelbo", "vs best estimator", "best val nelbo"]
    assert header[6:8] == ["epochs to val nelbo 110", "s to val nelbo 110"]
    assert "lower is better" in md and "at or below" in md and "worse `mid`, `big`." in md
    title = f"Sweep {tmp_path.name}: mean ± std over seeds, legend ranked by test nelbo"
    assert figure_labels == [("validation nelbo", title)]


def test_runs_that_disagree_on_the_headline_are_refused_by_name(tmp_path):
    write_run(tmp_path, "0", "a", 0, 0.9)
    write_run(tmp_path, "1", "a", 1, 0.9)
    nelbo = {"metric": "test_nelbo", "higher_is_better": False}
    write_run(tmp_path, "2", "b", 0, 80.0, metric="test_nelbo", headline=nelbo)
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.training.report", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    error = result.stderr
    assert "disagree on the headline" in error and "test_acc (higher is better)" in error
    assert f"{tmp_path / '0' / 'metrics.json'}, {tmp_path / '1' / 'metrics.json'}" in error
    assert f"test_nelbo (lower is better): {tmp_path / '2' / 'metrics.json'}" in error
    assert not (tmp_path / "comparison.md").exists()


@pytest.mark.parametrize(
    "headline, message",
    [
        ({"metric": "nelbo", "higher_is_better": False}, "metric must be 'test_<name>'.*'nelbo'"),
        ({"metric": "test_", "higher_is_better": False}, "'test_'"),
        ({"metric": "test_nelbo", "higher_is_better": "no"}, "higher_is_better.*'no'"),
        ("test_nelbo", "'test_nelbo'"),
        (
            {"metric": "test_loss", "higher_is_better": False},
            "no test_loss, best_val_loss, val_loss",
        ),
    ],
)
def test_a_bad_headline_is_refused_naming_it(tmp_path, headline, message):
    write_run(tmp_path, "0", "a", 0, 80.0, metric="test_nelbo", headline=headline)
    with pytest.raises(ValueError, match=f"0/metrics.json: .*{message}"):
        write_report(tmp_path)


def test_a_seed_that_is_no_integer_is_refused(tmp_path):
    write_sweep(tmp_path, {"a": [0.9, 0.91]})
    write_run(tmp_path, "9", "b", "one", 0.9)
    with pytest.raises(ValueError, match="9/metrics.json: seed must be an integer, got 'one'"):
        write_report(tmp_path)


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
        [sys.executable, "-m", "surrogate.training.report.sweep", str(tmp_path / "copy")],
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
        [sys.executable, "-m", "surrogate.training.report.sweep", str(tmp_path / "copy")],
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


def write_config(folder: Path, seed: int, **values) -> None:
    """The ``.hydra/config.yaml`` Hydra saves in a run's folder (JSON is YAML): a few of the
    defaults, ``values`` (dotted keys) set."""
    config = {
        "op": {"step": {"name": "sigmoid", "beta": None}}, "model": {"optimizer": {"lr": 0.01}},
        "data": {"name": "digits", "root": "${paths.data_dir}"}, "seed": seed,
        "paths": {"output_dir": "${hydra:runtime.output_dir}"}, "ckpt_path": None,
    }  # fmt: skip
    for key, value in values.items():
        *parents, last = key.split("__")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(json.dumps(config))


def test_separate_runs_are_separate_configurations_by_their_whole_config(tmp_path):
    """outputs/<date> of single runs, each seed 0, whose overrides agree: the YAML differed."""
    for i, lr in enumerate((0.01, 0.1, 0.3)):
        write_run(tmp_path, f"16-0{i}-00", "sigmoid", 0, 0.8 + i / 100)
        write_config(tmp_path / f"16-0{i}-00", 0, model__optimizer__lr=lr)
    write_run(tmp_path, "16-09-00", "sigmoid", 0, 0.7)
    write_config(tmp_path / "16-09-00", 0, model__optimizer__lr=0.01, data__name="mnist")
    write_report(tmp_path)
    rows = read_csv(tmp_path / "comparison.csv")
    assert [r["seeds"] for r in rows] == ["1"] * 4  # not one configuration with 4 "seeds"
    named = {(r["data.name"], r["model.optimizer.lr"]) for r in rows}
    assert named == {("digits", "0.01"), ("digits", "0.1"), ("digits", "0.3"), ("mnist", "0.01")}


def test_runs_of_one_whole_config_are_its_seeds_whatever_their_overrides(tmp_path):
    """The same config, one run naming the default learning rate, the other not."""
    write_run(tmp_path, "0", "sigmoid", 0, 0.8)
    write_run(tmp_path, "1", "sigmoid", 1, 0.9)
    metrics = json.loads((tmp_path / "1" / "metrics.json").read_text())
    metrics["overrides"] = ["op=sigmoid", "model.optimizer.lr=0.01", "seed=1"]
    (tmp_path / "1" / "metrics.json").write_text(json.dumps(metrics))
    for seed in (0, 1):
        write_config(tmp_path / str(seed), seed)
    write_report(tmp_path)
    (row,) = read_csv(tmp_path / "comparison.csv")
    assert row["seeds"] == "2" and math.isclose(float(row["test_acc_mean"]), 0.85)


def test_runs_without_a_saved_config_differ_by_what_metrics_json_records(tmp_path):
    for i, beta in enumerate((1.0, 4.0)):
        estimators = {"step": {"name": "sigmoid", "relaxed": False, "beta": beta}}
        write_run(tmp_path, str(i), "sigmoid", 0, 0.8 + i / 10, estimators=estimators)
    write_report(tmp_path)
    rows = read_csv(tmp_path / "comparison.csv")
    assert sorted(r["estimators.step.beta"] for r in rows) == ["1.0", "4.0"]
    assert [r["seeds"] for r in rows] == ["1", "1"]


def test_a_key_a_configuration_does_not_set_is_a_dash(tmp_path, figure_labels):
    write_run(tmp_path, "0", "sigmoid", 0, 0.8)
    write_run(tmp_path, "1", "sigmoid", 0, 0.9)
    metrics = json.loads((tmp_path / "1" / "metrics.json").read_text())
    metrics["overrides"] = ["op=sigmoid", "model.optimizer.lr=0.1", "seed=0"]
    (tmp_path / "1" / "metrics.json").write_text(json.dumps(metrics))
    write_report(tmp_path)
    md = (tmp_path / "comparison.md").read_text()
    rows = table_rows(md)
    assert rows["header"][1] == "model.optimizer.lr"
    assert rows["0.1"][1] == "`0.1`" and rows["-"][1] == "-" and "``" not in md
    assert [r["model.optimizer.lr"] for r in read_csv(tmp_path / "comparison.csv")] == ["0.1", ""]


def test_the_report_of_one_run_folder_has_its_curves(tmp_path):
    write_run(tmp_path, "16-04-07", "sigmoid", 0, 0.8)
    folder = tmp_path / "16-04-07"
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.training.report", str(folder)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    png = (folder / "convergence.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert [r["seeds"] for r in read_csv(folder / "comparison.csv")] == ["1"]
    assert (folder / "comparison.md").read_text().startswith("# Run 16-04-07\n")


@pytest.fixture
def panels(monkeypatch) -> dict[str, tuple[str, tuple[float, float]]]:
    """The panels of the figures the report saves: {title: (y label, y range)}."""
    from matplotlib.figure import Figure

    found, savefig = {}, Figure.savefig

    def record(fig, *args, **kwargs):
        found.update({ax.get_title(): (ax.get_ylabel(), ax.get_ylim()) for ax in fig.axes})
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return found


def test_diagnostic_panels_name_layer_and_op_with_labelled_full_range_axes(tmp_path, panels):
    """One flip-ratio dot still gets the whole [0, 1] of a fraction; a cosine gets [-1, 1]."""
    diagnostics = {
        "features.3/dead_fraction": [0.5, 0.4], "features.3/flip_ratio": [None, 0.2],
        "bottleneck.2/grad_cosine": [0.7, 0.71], "bottleneck.2/grad_norm": [0.0, 0.0],
        "network/grad_cosine": [0.9, 0.9],
    }  # fmt: skip
    layers = {"features.3": {"op": "sign", "name": "atan"}}
    write_run(tmp_path, "0", "atan", 0, 0.8, diagnostics=diagnostics, layer_estimators=layers,
              diagnostic_layers={"bottleneck.2": "argmax"})  # fmt: skip
    write_report(tmp_path)
    cosine = "cosine (hard vs relaxed)"
    expected = {
        "features.3 (sign): dead fraction": ("share of inputs with ~0 derivative", (0, 1)),
        "features.3 (sign): flip ratio": ("share of decisions flipped", (0, 1)),
        "bottleneck.2 (argmax): gradient norm at the input": ("‖∂loss/∂input‖₂", (0, 0)),
        "bottleneck.2 (argmax): cosine to the relaxed gradient": (cosine, (-1, 1)),
        "whole network: cosine to the relaxed gradient": (cosine, (-1, 1)),
    }  # fmt: skip
    for title, (label, (low, high)) in expected.items():
        ylabel, (bottom, top) = panels[title]
        assert ylabel == label, title
        assert low - 0.1 < bottom <= low and high <= top < high + 0.1 + (high == low), title


def test_a_seed_run_twice_with_the_same_config_is_called_a_repeat(tmp_path):
    for folder in ("16-00-00", "16-01-00"):
        write_run(tmp_path, folder, "sigmoid", 0, 0.8)
        write_config(tmp_path / folder, 0)
    write_run(tmp_path, "16-02-00", "ste", 0, 0.7)
    write_report(tmp_path)
    md = (tmp_path / "comparison.md").read_text()
    assert "- `sigmoid` ran seed 0 more than once with the same config: repeats" in md
    assert "`ste` ran" not in md

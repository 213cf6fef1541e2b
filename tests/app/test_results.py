"""The committed results: each report under benchmarks/results/ is what its runs' metrics.json give,
and the result tables of the README and the documentation are generated from those reports."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from surrogate.training.report.sweep import write_report
from tests.app.helpers import ROOT
from tests.app.test_report import check_significance, read_csv, table_rows, write_run

RESULTS = ROOT / "benchmarks" / "results"
DOC_TABLES = ROOT / "benchmarks" / "doc_tables.py"
SWEEPS = sorted(p.name for p in RESULTS.iterdir() if (p / "comparison.csv").is_file())
THRESHOLDS = {
    "compare_fashion": (0.8, 0.85, 0.9),
    "schedules_fashion": (0.8, 0.85, 0.9),
    "compare_vae": (300, 270, 250),  # nats per image, lower is better
    "compare_vae_digits": (27, 25, 24.5),
    "compare_bnn": (0.8, 0.85),
    "compare_bits": (0.8, 0.85),
    "bnn_default": (0.85, 0.89),
    "compare_csnn": (0.8, 0.85),
    "csnn_default": (0.85, 0.89),
}
# Sweeps where a configuration's training diverged (a NaN loss: the run stopped with error.json),
# which its report lists among the failed runs.
DIVERGED = {"snn_shapes"}


def test_the_headline_sweeps_are_committed():
    assert {"compare_fashion", "compare", "compare_argmax", "schedules", "schedules_gumbel"} <= set(
        SWEEPS
    )
    for name in ("compare", "compare_argmax", "schedules", "schedules_gumbel", "schedules_fashion"):
        assert (RESULTS / name / "diagnostics.png").is_file(), name


@pytest.mark.parametrize("name", SWEEPS)
def test_each_report_is_recomputed_from_its_runs(name, tmp_path):
    copy = tmp_path / name
    shutil.copytree(RESULTS / name, copy, ignore=shutil.ignore_patterns("comparison.*", "*.png"))
    runs = write_report(copy, THRESHOLDS.get(name, (0.5, 0.8, 0.9)))
    allowed = {"finished", "failed"} if name in DIVERGED else {"finished"}
    assert runs and all(r.status in allowed for r in runs)
    assert all("loss is nan" in r.error for r in runs if r.status == "failed")
    reports = ["comparison.csv", "comparison.md"]
    reports += ["factors.md"] if (RESULTS / name / "factors.md").is_file() else []
    for report in reports:
        assert (copy / report).read_text() == (RESULTS / name / report).read_text(), report


def test_the_result_tables_are_generated_from_the_reports():
    result = subprocess.run(
        [sys.executable, str(DOC_TABLES), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    results = (ROOT / "docs" / "results.md").read_text()
    for name in ("compare_fashion", "compare", "compare_argmax", "schedules", "schedules_gumbel",
                 "compare.diagnostics", "schedules.diagnostics", "schedules_fashion"):  # fmt: skip
        assert f"<!-- results:{name} -->" in results
    assert "<!-- results:compare_fashion.headline -->" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", SWEEPS)
def test_each_reports_significance_marks_match_a_hand_computation(name):
    rows = read_csv(RESULTS / name / "comparison.csv")
    columns = list(rows[0])
    swept = columns[: columns.index("seeds")]  # the swept keys: the columns before seeds

    def config(settings: dict) -> str:  # as the report names a configuration
        if len(swept) == 1:
            return settings[swept[0]]
        return ", ".join(f"{k}={settings[k]}" for k in swept)

    runs: dict[str, list[dict]] = {}
    headlines = set()
    for path in (RESULTS / name).glob("*/metrics.json"):
        metrics = json.loads(path.read_text())
        runs.setdefault(config(dict(o.split("=", 1) for o in metrics["overrides"])), []).append(
            metrics
        )
        headline = metrics.get("headline", {"metric": "test_acc", "higher_is_better": True})
        headlines.add((headline["metric"], headline["higher_is_better"]))
    ((metric, higher_is_better),) = headlines  # one headline per sweep
    check_significance(rows, runs, config, metric, higher_is_better)
    for row in rows:
        assert row["reference"] == ("true" if row.get("op") in ("relaxed", "float") else "false")
        assert {row[c] for c in columns if c.startswith("vs_")} <= {
            "best", "tied", "worse", "better", ""
        }  # fmt: skip


def test_a_result_table_shows_each_mark_as_its_report_does(tmp_path, monkeypatch):
    """References, ranks and every comparison's mark (its test and corrected p) pass from a report
    to the documentation's table unchanged, Welch's test included (the committed sweeps pair every
    row)."""
    spec = importlib.util.spec_from_file_location("doc_tables", DOC_TABLES)
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    runs = {"relaxed": (0, [0.95, 0.955, 0.96]), "a": (0, [0.90, 0.91, 0.92])}
    runs["b"] = (5, [0.85, 0.88, 0.86])  # seeds 5, 6, 7: shared with no one
    for op, (first, values) in runs.items():
        for i, value in enumerate(values):
            write_run(tmp_path / "mini", f"{op}{i}", op, first + i, value)
    write_report(tmp_path / "mini", (0.9,))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    monkeypatch.setitem(tables.THRESHOLDS, "mini", ("0.9",))
    page = table_rows("\n\n" + tables.table("mini"))
    report = table_rows((tmp_path / "mini" / "comparison.md").read_text())
    assert page.keys() == report.keys() == {"header", "relaxed", "a", "b"}
    for key in page:
        assert page[key][:7] == report[key][:7], key
    assert page["b"][4].startswith("worse (Welch p ") and page["relaxed"][0] == "ref"

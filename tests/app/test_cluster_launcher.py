"""The cluster path: a sweep launched through submitit, as ``hydra/launcher=slurm`` launches it on
a Slurm cluster, here in submitit's local mode (``hydra/launcher=submitit_local``: each job a
process that submitit starts, watches and collects, as it would a Slurm job)."""

from __future__ import annotations

import json

import pytest

from tests.app.helpers import FAST, train_cli
from tests.app.test_report import check_rows_against_metrics, read_csv


@pytest.mark.slow
def test_a_two_job_sweep_through_submitit_ends_with_its_report(tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "-m", "hydra/launcher=submitit_local", "op=ste,none", *FAST,
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Submitit 'local' sweep output dir" in result.stdout + result.stderr
    logs = list((sweep / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2  # each job ran as a submitit job, with its own log
    runs = {json.loads((sweep / j / "metrics.json").read_text())["op"] for j in "01"}
    assert runs == {"ste", "none"}
    rows = check_rows_against_metrics(sweep, "op")
    assert {r["op"] for r in rows} == {"ste", "none"}
    assert all(r["failed"] == "0" for r in read_csv(sweep / "comparison.csv"))
    assert "## Failed or missing runs\n\nNone." in (sweep / "comparison.md").read_text()
    assert (sweep / "convergence.png").is_file()

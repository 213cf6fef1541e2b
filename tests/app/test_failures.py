"""Failures fail: a training loss that turns NaN stops the run with a non-zero exit and a message
naming the step, the op and what to try; nothing is reported as a result; a sweep lists the run as
failed; every JSON file the app writes is strict JSON."""

from __future__ import annotations

import json
import math

import pytest

from surrogate.training.atomic import write_json_atomic
from tests.app.helpers import FAST, train_cli
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

"""python -m surrogate.autograd_table: what autograd gives common non-differentiable ops at their
kink and away from it, next to the remedy; every cell computed when it is printed."""

from __future__ import annotations

import subprocess
import sys

KINK_OPS = ["abs", "relu", "sign", "round", "floor", "heaviside", "argmax", "max",
            "masked_select", "slicing", "clamp"]  # fmt: skip


def test_cli_prints_a_row_for_every_op():
    result = subprocess.run(
        [sys.executable, "-m", "surrogate.autograd_table"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = {line.split("|")[1].strip(" `"): line for line in result.stdout.splitlines()
            if line.startswith("| `")}  # fmt: skip
    assert sorted(rows) == sorted(KINK_OPS)
    cells = {op: [c.strip() for c in line.split("|")[1:-1]] for op, line in rows.items()}
    assert cells["sign"][3] == "[0]" and cells["sign"][5] == "[0, 0]"  # PyTorch: zero
    assert cells["sign"][7] == "[2]"  # surrogate.sign(x, "atan") at 0: J·p(0) = 2
    assert cells["heaviside"][3].startswith("error")
    assert cells["argmax"][3].startswith("cut") and cells["argmax"][7] != "—"
    assert cells["abs"][5] == "[-1, 1]" and cells["max"][3] == "[0, 0.5, 0.5]"

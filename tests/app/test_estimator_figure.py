"""The figure of every estimator: its curves against the catalogue's formulas (float64, written
here), and the command line."""

from __future__ import annotations

import math
import subprocess
import sys

import torch

from surrogate.training.report.estimator_figure import X, argmax_backward, scalar_backward


def sigmoid_bump(r: torch.Tensor, beta: float = 4.0) -> torch.Tensor:
    s = 1 / (1 + torch.exp(-beta * r))
    return beta * s * (1 - s)


def triangle_bump(r: torch.Tensor, width: float = 1.0) -> torch.Tensor:
    return torch.clamp(1 - r.abs() / width, min=0) / width


def test_scalar_curves_are_the_bumps_of_the_catalogue():
    to_boundary = (X - 0.5) - torch.round(X - 0.5)  # signed distance to the nearest k + 1/2
    for name, bump in (("sigmoid", sigmoid_bump), ("triangle", triangle_bump)):
        torch.testing.assert_close(scalar_backward(name, "step"), bump(X))
        torch.testing.assert_close(scalar_backward(name, "sign"), 2 * bump(X))
        torch.testing.assert_close(scalar_backward(name, "round"), bump(to_boundary))
    assert torch.all(scalar_backward("ste", "sign") == 1)
    assert torch.all(scalar_backward("none", "step") == 0)


def test_argmax_bars_are_the_estimators_gradients():
    s = torch.softmax(torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64), dim=0)
    jacobian_row = s[0] * (torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) - s)
    torch.testing.assert_close(argmax_backward("softmax"), jacobian_row)
    torch.testing.assert_close(
        argmax_backward("ste"), torch.tensor([1.0, 0, 0], dtype=torch.float64)
    )
    gumbel = argmax_backward("gumbel")  # a mean over draws: finite, and pushes logit 0 up
    assert torch.isfinite(gumbel).all() and gumbel[0] > 0 > gumbel[1]
    assert math.isclose(gumbel.sum().item(), 0.0, abs_tol=1e-9)  # softmax's rows sum to zero


def test_the_command_writes_the_png_and_refuses_a_missing_folder(tmp_path):
    command = [sys.executable, "-m", "surrogate.training.report.estimator_figure"]
    result = subprocess.run([*command, str(tmp_path / "e.png")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    png = (tmp_path / "e.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    bad = subprocess.run([*command, str(tmp_path / "no" / "e.png")], capture_output=True, text=True)
    assert bad.returncode == 2 and "no such folder" in bad.stderr

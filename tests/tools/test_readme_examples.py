"""The README's worked examples of audit and intercept run as printed: the audit output is the one
shown, and after the one-line fix every parameter gets a non-zero gradient."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\nimport surrogate\n"


def _block(starting: str) -> str:
    """The body of the README code block whose first line starts with ``starting``."""
    start = README.index("\n" + starting) + 1
    return README[start : README.index("```", start)]


def test_the_three_families_audit_as_printed_and_the_fix_revives_every_parameter():
    models = _block("class LIF(nn.Module):  # spiking")
    fix = _block("lif, mlp, vq = LIF(), BinaryMLP(), VQ()")
    printed = _block("op  module   elements  calls  PyTorch gives  dead  remedy\ngt ")
    scope: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(HEADER + models, scope)  # noqa: S102 (the README's own code)
    assert out.getvalue() == printed
    exec(fix, scope)  # noqa: S102
    for name in ("lif", "mlp", "vq"):
        for param, value in scope[name].named_parameters():
            assert value.grad is not None and value.grad.ne(0).any(), (name, param)

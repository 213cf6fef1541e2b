"""Every single-run ``python train.py ...`` command in the README composes into a config that the
run's own check accepts (nothing is trained: the composed config is validated)."""

from __future__ import annotations

import shlex

import pytest

from surrogate.training.config.validate import validate
from tests.app.helpers import ROOT, compose_config


def _commands() -> list[str]:
    """The README's code lines that start a single run (no ``-m``, no ``--cfg``)."""
    lines, inside = [], False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.split(" #")[0].strip())
    return [
        line
        for line in lines
        if line.startswith("python train.py ") and " -m " not in line and "--" not in line
    ]


COMMANDS = _commands()


def test_the_readme_has_single_run_commands():
    assert len(COMMANDS) >= 10
    assert any("schedule=" in c for c in COMMANDS)


# What the README's model=custom command imports: a user's package, as the README describes it.
MYPKG = """
import math
from torch import nn


class MyNet(nn.Sequential):
    def __init__(self, input_shape, num_classes, width=32):
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                         nn.Linear(width, num_classes))
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_each_readme_command_composes_into_a_valid_config(command, tmp_path, monkeypatch):
    if "mypkg." in command:
        (tmp_path / "mypkg").mkdir()
        (tmp_path / "mypkg" / "__init__.py").write_text("")
        (tmp_path / "mypkg" / "nets.py").write_text(MYPKG)
        monkeypatch.syspath_prepend(str(tmp_path))
    args = shlex.split(command)[2:]
    config = compose_config(args, tmp_path)
    validate(config, files=False)

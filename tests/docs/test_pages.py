"""Every code block of README.md and docs/ works as printed: each Python block runs (alone, unless
marked as continuing the one before), each printed output is what its block prints, each
``>>>`` session passes as a doctest, and each ``python train.py`` command composes into a config
the run accepts (a sweep: every one of its jobs). Markers: ``tests/docs/pages.py``."""

from __future__ import annotations

import contextlib
import doctest
import io
import itertools
import re
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from surrogate.training.config.schema import store_schema
from surrogate.training.config.validate import validate
from tests.app.helpers import ROOT, compose_config
from tests.docs.pages import MARKERS, PAGES, Block, all_blocks, blocks, train_commands

BLOCKS = all_blocks()
RUNNABLE = [
    p for p in PAGES if any(b.lang in ("python", "pycon") and b.marker != "skip" for b in blocks(p))
]


def test_the_pages_have_blocks_and_every_marker_is_known():
    assert len(PAGES) > 20 and len([b for b in BLOCKS if b.lang == "python"]) >= 10
    for block in BLOCKS:
        assert block.marker in ("", *MARKERS), block.where
        if block.marker == "skip":
            assert block.lang == "python" and len(block.reason.split()) >= 4, block.where
        if block.marker == "continues":
            assert block.lang == "python", block.where
    for block in BLOCKS:  # a Python block is python (runs) or pycon (a doctest), never unlabeled
        assert not (block.lang == "" and block.text.startswith(("import ", ">>> "))), block.where


def run_page(blocks_: list[Block]) -> list[str]:
    """Run a page's Python and pycon blocks as a reader would; returns what each block printed.
    Fails on an error, on output that differs from a ``test: output`` block, and on a doctest."""
    scope: dict = {}
    printed: str | None = None
    ran = []
    for block in blocks_:
        if block.lang == "python" and block.marker != "skip":
            if block.marker != "continues":
                scope = {"__name__": "__main__"}
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(block.text, block.where, "exec"), scope)  # noqa: S102 (the page's code)
            printed = out.getvalue()
            ran.append(block.where)
        elif block.marker == "output":
            assert printed is not None, f"{block.where}: no Python block before this output"
            assert printed == block.text, f"{block.where}: the block above prints\n{printed}"
        elif block.lang == "pycon":
            test = doctest.DocTestParser().get_doctest(block.text, {}, block.where, block.page, 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            report = io.StringIO()
            result = runner.run(test, out=report.write)
            assert result.failed == 0, report.getvalue()
            ran.append(block.where)
    return ran


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_each_page_s_python_runs_as_printed(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands here
    assert run_page(blocks(page))


def test_a_broken_snippet_an_unknown_name_or_a_wrong_output_fails(tmp_path, monkeypatch):
    """The runner above can fail: a block without its imports, and printed output that differs."""
    monkeypatch.chdir(tmp_path)

    def block(text, lang="python", marker=""):
        return Block("page.md", 1, lang, text, marker, "")

    with pytest.raises(NameError, match="nn"):
        run_page([block("layer = nn.Linear(2, 2)\n")])
    with pytest.raises(AssertionError, match="prints"):
        run_page([block("print(1)\n"), block("2\n", "", "output")])
    with pytest.raises(NameError):  # a continued block sees its predecessor; a fresh one does not
        run_page([block("a = 1\n"), block("print(a)\n")])
    run_page([block("a = 1\n"), block("print(a)\n", marker="continues")])
    with pytest.raises(AssertionError, match="Expected"):
        run_page([block(">>> 1 + 1\n3\n", "pycon")])


# --- train.py commands -------------------------------------------------------------------------

COMMANDS = sorted(
    {(b.page, c) for b in BLOCKS if b.lang in ("bash", "") for c in train_commands(b)}
)

# What the model=custom command imports: a user's package, as the page describes it.
MYPKG = """
import math
from torch import nn


class MyNet(nn.Sequential):
    def __init__(self, input_shape, num_classes, width=32):
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                         nn.Linear(width, num_classes))
"""


def jobs(args: list[str], tmp_path) -> list[list[str]]:
    """The overrides of each job a ``-m`` command runs: its sweeper's parameters (an experiment's
    ``hydra.sweeper.params``) and the command's own, every comma list expanded."""
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(args) if not o.is_sweep_override()]
    store_schema()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        cfg = compose("train", overrides=fixed, return_hydra_config=True)
    params = {k: str(v) for k, v in (cfg.hydra.sweeper.get("params") or {}).items()}
    if not str(cfg.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        params = {}  # Optuna's search space is not a list of jobs: compose the command alone
    given = [a for a in args if not a.startswith(("hydra/", "hydra."))]
    merged = {**params, **{a.split("=", 1)[0]: a.split("=", 1)[1] for a in given}}
    choices = []
    for override in parser.parse_overrides([f"{k}={v}" for k, v in merged.items()]):
        key = override.get_key_element()
        if override.is_sweep_override():
            choices.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            choices.append([override.input_line])
    return [list(job) for job in itertools.product(*choices)]


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=lambda x: x if "/" in x else x[:90])
def test_each_train_command_composes_into_configs_the_run_accepts(
    page, command, tmp_path, monkeypatch
):
    if "mypkg." in command:
        (tmp_path / "mypkg").mkdir()
        (tmp_path / "mypkg" / "__init__.py").write_text("")
        (tmp_path / "mypkg" / "nets.py").write_text(MYPKG)
        monkeypatch.syspath_prepend(str(tmp_path))
    args = shlex.split(command)[2:]
    if "--cfg" in args:  # prints the config: the rest must compose
        args = [a for a in args if a not in ("--cfg", "job", "hydra", "all")]
    if "-m" in args or "--multirun" in args:
        args = [a for a in args if a not in ("-m", "--multirun")]
        runs = jobs(args, tmp_path)
        assert runs, command
    else:
        runs = [args]
    for job in runs:
        config = compose_config(job, tmp_path)
        validate(config, files=False)


def test_the_commands_cover_single_runs_sweeps_and_experiments():
    commands = [c for _, c in COMMANDS]
    assert len(commands) >= 30
    assert any(" -m " in c and "experiment=" in c for c in commands)
    assert any("schedule=" in c for c in commands) and any("debug=fast" in c for c in commands)
    assert any("hydra/launcher=" in c for c in commands)


def test_a_sweep_expands_into_its_jobs_and_a_bad_job_is_refused(tmp_path):
    assert len(jobs(["op=none,ste", "seed=0,1,2"], tmp_path)) == 6
    assert len(jobs(["experiment=compare"], tmp_path)) == 13 * 3
    assert jobs(["experiment=compare", "op=ste", "seed=1"], tmp_path) == [
        ["op=ste", "seed=1", "experiment=compare"]
    ]
    with pytest.raises(ValueError, match="seed"):
        for job in jobs(["op=ste", "seed=0,-1"], tmp_path):
            validate(compose_config(job, tmp_path), files=False)


def test_the_readme_links_only_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert len(links) >= 20
    for link in links:
        assert (ROOT / link).is_file(), link

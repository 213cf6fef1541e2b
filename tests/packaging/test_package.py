"""The package as it would be published: its sdist and wheel build and pass ``twine check``, the
wheel holds the library and the training app and nothing else, the version lives in one place,
the library's types check, and the documentation site builds strictly."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import surrogate

ROOT = Path(__file__).resolve().parents[2]
# What a checkout holds that the build does not read: copied, it would only slow the build.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "outputs", "multirun", "build", "dist", "site", "*.egg-info", "__pycache__",
    ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis", "lightning_logs", "results",
)  # fmt: skip


def _run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def build(source: Path, out: Path) -> tuple[Path, Path]:
    """``python -m build`` of ``source`` (an sdist, then the wheel built from it), without
    downloading anything: the build backend comes from this environment."""
    result = _run("build", "--no-isolation", "--outdir", str(out), str(source), cwd=source)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def wheel_problems(wheel: Path) -> list[str]:
    """What is wrong with a wheel's files: a library or app module missing, or anything that is
    not the package (tests, benchmarks, results, configs)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    problems = []
    for path in sorted((ROOT / "surrogate").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if "__pycache__" not in name and name not in names:
            problems.append(f"missing {name}")
    if "surrogate/py.typed" not in names:
        problems.append("missing surrogate/py.typed")
    for name in names:
        if not name.startswith(("surrogate/", "surrogate-")):
            problems.append(f"not the package: {name}")
    return problems


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    source = tmp_path_factory.mktemp("source") / "surrogate"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE, symlinks=True)
    return build(source, tmp_path_factory.mktemp("dist"))


@pytest.mark.slow
def test_the_sdist_and_wheel_build_and_pass_twine_check(built):
    sdist, wheel = built
    assert wheel.name == f"surrogate-{surrogate.__version__}-py3-none-any.whl"
    result = _run("twine", "check", "--strict", str(sdist), str(wheel), cwd=wheel.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_wheel_holds_the_library_and_the_app_and_nothing_else(built, tmp_path):
    _, wheel = built
    assert wheel_problems(wheel) == []
    names = zipfile.ZipFile(wheel).namelist()
    assert "surrogate/training/run.py" in names and "surrogate/functional.py" in names
    # The check can fail: a wheel without a module of the app, or with a test in it.
    broken = tmp_path / "broken.whl"
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            if item.filename != "surrogate/training/run.py":
                dst.writestr(item, src.read(item))
        dst.writestr("tests/test_x.py", "")
    assert wheel_problems(broken) == [
        "missing surrogate/training/run.py",
        "not the package: tests/test_x.py",
    ]
    metadata = (
        zipfile.ZipFile(wheel)
        .read(f"surrogate-{surrogate.__version__}.dist-info/METADATA")
        .decode()
    )
    assert "Requires-Dist: torch>=" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == ["Requires-Dist: torch>=2.3"]


@pytest.mark.slow
def test_the_sdist_carries_what_the_app_and_the_docs_need(built):
    import tarfile

    sdist, _ = built
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for needed in ("train.py", "configs/train.yaml", "mkdocs.yml", "docs/index.md",
                   "CHANGELOG.md", "README.md", "surrogate/py.typed"):  # fmt: skip
        assert needed in names, needed


def test_the_version_lives_in_one_place():
    assert re.fullmatch(r"\d+\.\d+\.\d+", surrogate.__version__)
    assert importlib.metadata.version("surrogate") == surrogate.__version__
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and '\nversion = "' not in pyproject
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, flags=re.MULTILINE)
    assert released and released[0] == surrogate.__version__  # the newest release is this one


@pytest.mark.slow
def test_the_library_type_checks():
    """mypy over the library (pyproject.toml's [tool.mypy]: ``surrogate`` without the app)."""
    result = _run("mypy", cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "Success" in result.stdout


def build_docs(root: Path, site: Path) -> subprocess.CompletedProcess:
    return _run("mkdocs", "build", "--strict", "--site-dir", str(site), cwd=root)


def test_the_documentation_builds_strictly(tmp_path):
    result = build_docs(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr[-5000:]
    assert (tmp_path / "site" / "figures" / "compare" / "convergence.png").is_file()
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    for name in surrogate.__all__:  # every public name has its entry in the API reference
        assert f'id="surrogate.{name}' in reference, name


@pytest.mark.parametrize(
    "breakage",
    ["[a page that is not there](nowhere.md)", "[an anchor that is not there](#nowhere)",
     "![a figure that is not there](figures/nowhere.png)", "::: surrogate.nowhere"],
)  # fmt: skip
def test_a_broken_link_or_reference_fails_the_documentation_build(breakage, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=_NOT_SOURCE, symlinks=True)
    shutil.copytree(ROOT / "benchmarks" / "results", copy / "benchmarks" / "results",
                    ignore=shutil.ignore_patterns("*.json", "*.csv", "*.md", "*.ckpt"))  # fmt: skip
    page = copy / "docs" / "sweeps.md"
    page.write_text(page.read_text() + "\n" + breakage + "\n")
    result = build_docs(copy, tmp_path / "site")
    assert result.returncode != 0


def test_the_repository_is_lint_clean_and_formatted():
    """ruff, configured in pyproject.toml, over every Python file and every Python block of the
    Markdown pages."""
    for args in (("check", "."), ("format", "--check", ".")):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]

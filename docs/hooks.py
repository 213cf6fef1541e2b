"""MkDocs hook: the figures of benchmarks/results/ served at figures/ (a page writes
``figures/compare/convergence.png``), so the site shows the files the reports wrote, not copies."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def on_files(files, config):
    for path in sorted(RESULTS.rglob("*.png")):
        uri = "figures/" + path.relative_to(RESULTS).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files

"""The result tables of README.md and the documentation pages, generated from the committed sweep
reports.

    python benchmarks/doc_tables.py           # rewrite the tables in README.md and docs/
    python benchmarks/doc_tables.py --check   # exit 1 if a page differs from the reports

Each table sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` in a page and
is made from ``benchmarks/results/NAME/comparison.csv``, the report that
``python -m surrogate.training.report benchmarks/results/NAME`` rebuilds from the runs'
``metrics.json`` in that folder (add ``--thresholds 0.8 0.85 0.9`` for the Fashion-MNIST ones,
``compare_fashion`` and ``schedules_fashion``, whose experiments pick those thresholds; ``0.8 0.85``
for ``compare_bnn``, ``compare_bits`` and ``compare_csnn``, ``0.85 0.89`` for ``bnn_default`` and
``csnn_default``, ``0.5 0.8 0.9`` for ``snn_shapes``).
``NAME.diagnostics`` is the table of the same report's final hard-op diagnostics,
``NAME.headline`` the short table of its headline metric alone (the README's), and
``NAME.factors`` its ``factors.md`` (a sweep of op x op.peak: the grid, the ANOVA, the verdict).
A report that writes its own table (``gradient_quality``) is shown as it wrote it.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

from surrogate.training.report.significance import mark

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Which thresholds of each report the README shows (epochs and seconds to reach them).
THRESHOLDS = {
    "compare_fashion": ("0.85", "0.9"),
    "compare": ("0.9",),
    "compare_argmax": ("0.9",),
    "schedules": ("0.9",),
    "schedules_gumbel": ("0.9",),
    "schedules_fashion": ("0.85", "0.9"),
    "compare_vae": ("300", "270"),
    "compare_vae_digits": ("25", "24.5"),
    "compare_bnn": ("0.85",),
    "compare_bits": ("0.85",),
    "bnn_default": ("0.85", "0.89"),
    "compare_csnn": ("0.85",),
    "csnn_default": ("0.85", "0.89"),
}
# Reports that write their own Markdown table: NAME is benchmarks/results/NAME/NAME.md's table.
OWN_TABLES = ("gradient_quality",)
# The diagnostics table: one column per metric, its layers' final values joined by " / ".
DIAGNOSTICS = {
    "dead fraction": "dead_fraction",
    "flip ratio": "flip_ratio",
    "cosine to relaxed": "grad_cosine",
}


def _number(text: str) -> str:
    return "never" if text == "" else f"{float(text):.3g}"


def _headline(columns: list[str]) -> str:
    """The report's headline metric, ``test_<name>``, from its ``test_<name>_mean`` column."""
    (metric,) = [
        c[: -len("_mean")] for c in columns if c.startswith("test_") and c.endswith("_mean")
    ]
    return metric


def _pm(row: dict, key: str) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    return f"{float(mean):.4f}" + ("" if std == "" else f" ± {float(std):.4f}")


def _read(name: str) -> tuple[list[dict], list[str]]:
    with open(RESULTS / name / "comparison.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader), list(reader.fieldnames or [])


def diagnostics_table(name: str) -> str:
    """Each configuration's final diagnostics, a column per metric, its layers in one cell."""
    rows, columns = _read(name)
    swept, headline = columns[: columns.index("seeds")], _headline(columns)
    layers = list(dict.fromkeys(c.split("/")[1] for c in columns if c.startswith("diag/")))
    head = [*swept, headline.replace("_", " ")]
    picked = []
    for title, metric in DIAGNOSTICS.items():
        found = [
            f"diag/{layer}/{metric}" for layer in layers if f"diag/{layer}/{metric}" in columns
        ]
        picked.append(found)
        head.append(f"{title} ({', '.join(c.split('/')[1] for c in found)})")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [*(f"`{row[k]}`" for k in swept), f"{float(row[f'{headline}_mean']):.4f}"]
        for found in picked:
            cells.append(" / ".join(f"{float(row[c]):.3f}" if row[c] else "–" for c in found))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline_table(name: str) -> str:
    """Each configuration's headline metric and its mark against the best estimator."""
    rows, columns = _read(name)
    swept, metric = columns[: columns.index("seeds")], _headline(columns)
    head = ["rank", *swept, metric.replace("_", " "), "vs best estimator"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rank = 0
    for row in rows:
        reference = row["reference"] == "true"
        rank += not reference
        best = mark(row["vs_best_estimator"], float(row["p_vs_best_estimator"] or "nan"),
                    row["test_vs_best_estimator"])  # fmt: skip
        cells = ["ref" if reference else str(rank), *(f"`{row[k]}`" for k in swept)]
        cells += [_pm(row, metric), best or "reference"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def factors_table(name: str) -> str:
    """The report's ``factors.md`` (a names x numbers sweep: its grid, ANOVA and verdict) without
    its title, headings one level down."""
    text = (RESULTS / name / "factors.md").read_text()
    body = [line for line in text.splitlines() if not line.startswith("# ")]
    return "\n".join("#" + line if line.startswith("## ") else line for line in body).strip()


def table(name: str) -> str:
    """The Markdown table of ``benchmarks/results/NAME/comparison.csv``."""
    if name in OWN_TABLES:
        text = (RESULTS / name / f"{name}.md").read_text()
        return "\n".join(line for line in text.splitlines() if line.startswith("|"))
    if name.endswith(".diagnostics"):
        return diagnostics_table(name.removesuffix(".diagnostics"))
    if name.endswith(".headline"):
        return headline_table(name.removesuffix(".headline"))
    if name.endswith(".factors"):
        return factors_table(name.removesuffix(".factors"))
    rows, columns = _read(name)
    swept, metric = columns[: columns.index("seeds")], _headline(columns)
    short = metric.removeprefix("test_")
    versus = [c for c in columns if c.startswith("vs_")]  # the best estimator, each reference
    head = ["rank", *swept, "seeds", metric.replace("_", " ")]
    head += ["vs " + ("best estimator" if c == "vs_best_estimator" else c[3:]) for c in versus]
    head += [f"best val {short.replace('_', ' ')}"]
    for t in THRESHOLDS[name]:
        head += [f"epochs to {t}", f"seconds to {t}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rank = 0
    for row in rows:
        reference = row["reference"] == "true"
        rank += not reference
        cells = ["ref" if reference else str(rank), *(f"`{row[k]}`" for k in swept), row["seeds"]]
        cells.append(_pm(row, metric))
        for c in versus:
            cells.append(mark(row[c], float(row[f"p_{c}"] or "nan"), row[f"test_{c}"]))
        cells.append(_pm(row, f"best_val_{short}"))
        for t in THRESHOLDS[name]:
            cells += [
                _number(row[f"epochs_to_val_{short}_{t}"]),
                _number(row[f"seconds_to_val_{short}_{t}"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with every marked table regenerated."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        return f"<!-- results:{name} -->\n{table(name)}\n<!-- /results:{name} -->"

    pattern = re.compile(r"<!-- results:([\w.]+) -->\n(?:.*?\n)?<!-- /results:\1 -->", re.DOTALL)
    return pattern.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render(text)
        if new != text:
            stale.append(page.relative_to(ROOT).as_posix())
            if not args.check:
                page.write_text(new)
    if args.check and stale:
        print(f"The result tables of {', '.join(stale)} differ from benchmarks/results; run "
              "python benchmarks/doc_tables.py", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The gradient-quality report: ``gradient_quality.json`` (every number), ``.md`` (the table)
and ``.png`` (cosine and bias per estimator and problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from surrogate.training.atomic import write_atomic, write_json_atomic

MEASURES = ("cosine", "bias", "spread")


def to_markdown(report: dict[str, Any]) -> str:
    """One row per estimator, the three measures per problem."""
    problems = report["problems"]
    names = list(next(iter(problems.values()))["estimators"])
    header = ["estimator"] + [f"{p} {m}" for p in problems for m in MEASURES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        cells = [f"`{name}`"]
        for problem in problems.values():
            cells += [f"{problem['estimators'][name][m]:.3f}" for m in MEASURES]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- `{p}`: {problems[p]['description']}" for p in problems]
    return "\n".join(lines + ["", *notes, ""])


def write_report(out: str | Path, problems: dict, draws: int, command: str, seconds: float):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "command": command,
        "draws": draws,
        "seconds": round(seconds, 1),
        "problems": problems,
    }
    write_json_atomic(out / "gradient_quality.json", report)
    text = to_markdown(report)
    write_atomic(out / "gradient_quality.md", lambda tmp: tmp.write_text(text))
    plot(report, out / "gradient_quality.png")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = report["problems"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    width = 0.8 / len(problems)
    for ax, measure in zip(axes, ("cosine", "bias"), strict=True):
        for i, (name, problem) in enumerate(problems.items()):
            estimators = problem["estimators"]
            xs = [x + i * width for x in range(len(estimators))]
            ax.bar(xs, [v[measure] for v in estimators.values()], width, label=name)
            ax.set_xticks([x + width * (len(problems) - 1) / 2 for x in range(len(estimators))])
            ax.set_xticklabels(list(estimators), rotation=30, fontsize=8)
        ax.set_title(
            "mean cosine to the exact gradient" if measure == "cosine" else "relative bias"
        )
        if measure == "bias":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)

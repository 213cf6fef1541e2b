"""Compare the runs of a sweep: ``comparison.csv``, ``comparison.md``, ``convergence.png`` and,
where the runs recorded hard-op diagnostics, ``diagnostics.png``.

    python -m surrogate.training.report SWEEP_DIR [--thresholds 0.5 0.8 0.9]

Reads each job folder's ``metrics.json`` (and ``error.json``, written for a failed job), groups the
runs by configuration (the overrides that differ between runs, ``seed`` aside) and aggregates over
seeds. A job folder with neither file is reported as missing (killed, or still running), and so is
a job of the sweep's plan that never started (``sweep_plan``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from surrogate.training.atomic import write_atomic
from surrogate.training.significance import mark, verdict, welch_p
from surrogate.training.sweep_plan import planned_jobs

THRESHOLDS = (0.5, 0.8, 0.9)
IGNORED_KEYS = ("seed", "hydra.", "experiment", "ckpt_path")  # never tell configurations apart
# The diagnostics each hard-op layer records (see surrogate.training.diagnostics), as plotted.
METRIC_TITLES = {
    "dead_fraction": "dead fraction",
    "flip_ratio": "flip ratio",
    "grad_norm": "gradient norm at the input",
    "grad_cosine": "cosine to the relaxed gradient",
}


@dataclass
class Run:
    """One job folder of a sweep."""

    folder: Path | None  # None: a planned job that never started
    metrics: dict | None = None
    error: str | None = None
    overrides: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "finished" if self.metrics else ("failed" if self.error else "missing")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_runs(sweep_dir: str | Path) -> list[Run]:
    """Every job folder under ``sweep_dir`` (direct subfolders not starting with '.'), then every
    planned job that has none."""
    runs = []
    folders = [p for p in Path(sweep_dir).iterdir() if p.is_dir() and not p.name.startswith(".")]
    for folder in sorted(folders, key=lambda p: (len(p.name), p.name)):
        metrics = _read_json(folder / "metrics.json")
        failure = _read_json(folder / "error.json") or {}
        if metrics is None and not failure and not (folder / ".hydra").is_dir():
            continue
        overrides = list((metrics or failure).get("overrides", [])) or _hydra_overrides(folder)
        runs.append(Run(folder, metrics, failure.get("error"), overrides))
    started = {frozenset(run.overrides) for run in runs}
    for job in planned_jobs(sweep_dir) or []:
        if frozenset(job) not in started:
            runs.append(Run(None, overrides=job))
    return runs


def _hydra_overrides(folder: Path) -> list[str]:
    """The overrides Hydra saved for a job that left no metrics (plain YAML list of strings)."""
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [line[2:].strip() for line in path.read_text().splitlines() if line.startswith("- ")]


def _settings(run: Run) -> dict[str, str]:
    pairs = (o.lstrip("+~").split("=", 1) for o in run.overrides if "=" in o)
    settings = {k: v for k, v in pairs if not any(k.startswith(i) for i in IGNORED_KEYS)}
    if not settings and run.metrics and run.metrics.get("op"):
        settings = {"op": run.metrics["op"]}
    return settings


def group(runs: Sequence[Run]) -> tuple[list[str], dict[tuple[str, ...], list[Run]]]:
    """(the swept keys, runs grouped by their values of those keys)."""
    settings = [_settings(r) for r in runs]
    keys = sorted({k for s in settings for k in s})
    swept = [k for k in keys if len({s.get(k, "") for s in settings}) > 1] or keys[:1] or ["op"]
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run, s in zip(runs, settings, strict=True):
        groups.setdefault(tuple(s.get(k, "") for k in swept), []).append(run)
    return swept, groups


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std


def _x(metrics: dict, key: str) -> list[float]:
    """A run's x values for its curves: ``val_epochs`` or ``val_seconds`` (NaN when absent)."""
    n = len(metrics["val_acc"])
    default = list(range(1, n + 1)) if key == "val_epochs" else [math.nan] * n
    return metrics.get(key) or default


def _first_reach(metrics: dict, threshold: float) -> tuple[float, float] | None:
    """(epochs, training seconds) at the first validation at or above ``threshold``."""
    curves = (metrics["val_acc"], _x(metrics, "val_epochs"), _x(metrics, "val_seconds"))
    for acc, epoch, seconds in zip(*curves, strict=True):
        if acc >= threshold:
            return epoch, seconds
    return None


def diagnostic_names(runs: Sequence[Run]) -> list[str]:
    """Every ``<layer>/<metric>`` diagnostic the finished runs recorded: layers in the order
    recorded, each layer's metrics in the order of ``METRIC_TITLES``."""
    found = [name for run in runs if run.metrics for name in run.metrics.get("diagnostics", {})]
    layers = list(dict.fromkeys(name.rsplit("/", 1)[0] for name in found))
    order = {metric: i for i, metric in enumerate(METRIC_TITLES)}

    def key(name: str) -> tuple[int, int, str]:
        layer, metric = name.rsplit("/", 1)
        return layers.index(layer), order.get(metric, len(order)), metric

    return sorted(set(found), key=key)


def _final(metrics: dict, name: str) -> float | None:
    """A diagnostic's value at the run's last validation that has one."""
    values = [v for v in metrics.get("diagnostics", {}).get(name, []) if v is not None]
    return values[-1] if values else None


def summarize(runs: Sequence[Run], thresholds: Sequence[float] = THRESHOLDS) -> tuple[list, list]:
    """(column names, one row per configuration), rows ranked by mean test accuracy."""
    swept, groups = group(runs)
    columns = [*swept, "seeds", "failed", "test_acc_mean", "test_acc_std", "p_vs_best", "vs_best"]
    columns += ["best_val_acc_mean", "best_val_acc_std"]
    for t in thresholds:
        columns += [f"epochs_to_val_acc_{t:g}", f"seconds_to_val_acc_{t:g}"]
    columns += ["wall_seconds_mean"]
    diagnostics = diagnostic_names(runs)
    columns += [f"diag/{name}" for name in diagnostics]
    rows, accuracies = [], {}
    for values, members in groups.items():
        done = [r.metrics for r in members if r.metrics]
        row = dict(zip(swept, values, strict=True))
        row["seeds"], row["failed"] = len(done), len(members) - len(done)
        for key in ("test_acc", "best_val_acc"):
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([m[key] for m in done])
        for t in thresholds:
            reached = [_first_reach(m, t) for m in done]
            complete = bool(done) and all(r is not None for r in reached)
            row[f"epochs_to_val_acc_{t:g}"] = (
                statistics.fmean(r[0] for r in reached) if complete else math.nan
            )
            row[f"seconds_to_val_acc_{t:g}"] = (
                statistics.fmean(r[1] for r in reached) if complete else math.nan
            )
        row["wall_seconds_mean"] = _mean_std([m["wall_seconds"] for m in done])[0]
        for name in diagnostics:
            row[f"diag/{name}"] = _mean_std(
                [v for m in done if (v := _final(m, name)) is not None]
            )[0]
        rows.append(row)
        accuracies[id(row)] = [m["test_acc"] for m in done]
    rows.sort(key=lambda r: -r["test_acc_mean"] if not math.isnan(r["test_acc_mean"]) else 1.0)
    best = accuracies[id(rows[0])] if rows else []
    for row in rows:
        p = welch_p(best, accuracies[id(row)]) if row is not rows[0] else math.nan
        row["p_vs_best"], row["vs_best"] = p, verdict(p, row is rows[0] and row["seeds"] > 0)
    return columns, rows


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def to_csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ["" if isinstance(v, float) and math.isnan(v) else v for v in map(row.get, columns)]
        )
    return out.getvalue()


def _pm(row: dict, key: str) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" + ("" if math.isnan(std) else f" ± {std:.4f}")


def to_markdown(columns: list[str], rows: list[dict], runs: Sequence[Run], title: str) -> str:
    swept = columns[: columns.index("seeds")]
    reach = [c for c in columns if c.startswith(("epochs_to", "seconds_to"))]
    short = [c.replace("_to_val_acc_", " to val acc ").replace("seconds", "s") for c in reach]
    head = ["rank", *swept, "seeds", "test acc", "vs best", "best val acc", *short, "wall s"]
    head += ["failed"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rank, row in enumerate(rows, start=1):
        cells = [str(rank), *(f"`{row[k]}`" for k in swept), str(row["seeds"])]
        cells += [
            _pm(row, "test_acc"),
            mark(row["vs_best"], row["p_vs_best"]),
            _pm(row, "best_val_acc"),
        ]
        cells += [_cell(row[c]) for c in reach]
        cells += [_cell(row["wall_seconds_mean"]), str(row["failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean ± sample std over seeds. `epochs_to_val_acc_T` / `seconds_to_val_acc_T`: epochs "
        "(fractional when validating mid-epoch) and training seconds until validation accuracy "
        "first reached T, averaged over seeds; empty when a seed never reached it. `vs best`: "
        "Welch's two-sided t-test of the per-seed test accuracies against the best row's; `lower` "
        "when p < 0.05, `tied` otherwise (assumes independent, roughly normal seeds; no correction "
        "for the number of rows), `?` with fewer than two seeds on a side.",
        "",
        "## Failed or missing runs",
        "",
    ]
    bad = [r for r in runs if r.status != "finished"]
    for run in bad:
        if run.folder is None:
            where, why = "never started", "the sweep was stopped before it, or is still running"
        else:
            where, why = f"`{run.folder.name}`", run.error or "no metrics.json (killed, or running)"
        lines.append(f"- {where} ({' '.join(run.overrides) or '?'}): {why}")
    if not bad:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def plot(runs: Sequence[Run], path: Path, title: str) -> None:
    """Validation accuracy and training loss per epoch, mean ± std over seeds per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for label, color, done in _configurations(runs):
        for ax, key in zip(axes, ("val_acc", "train_loss"), strict=True):
            _band(ax, done, lambda m, key=key: m[key], color, label)
    axes[0].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    axes[1].set(xlabel="epoch", ylabel="training loss", title="training loss (mean per interval)")
    for ax in axes:
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(f"{title}: mean ± std over seeds, legend ranked by test accuracy")
    fig.tight_layout(rect=(0, 0, 0.84 if handles else 1, 1))
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.84, 0.5), fontsize=8)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _configurations(runs: Sequence[Run]):
    """(label, color, finished metrics) per configuration, ranked by mean test accuracy."""
    import matplotlib.pyplot as plt

    swept, groups = group(runs)
    palette = plt.get_cmap("tab20").colors
    colors = palette[0::2] + palette[1::2]  # ten distinct hues first, then their light shades
    ranked = sorted(
        ((vs, [r.metrics for r in ms if r.metrics]) for vs, ms in groups.items()),
        key=lambda item: -statistics.fmean(m["test_acc"] for m in item[1]) if item[1] else 1.0,
    )
    for i, (values, done) in enumerate(ranked):
        if done:
            label = ", ".join(
                f"{k}={v}" if len(swept) > 1 else v for k, v in zip(swept, values, strict=True)
            )
            yield f"{label} (n={len(done)})", colors[i % len(colors)], done


def _band(ax, done: list[dict], curve, color, label: str) -> None:
    """Mean ± std over the runs of ``curve(metrics)`` against epochs (None values skipped)."""
    longest = max(done, key=lambda m: len(m["val_acc"]))
    epochs, mean, low, high = [], [], [], []
    for e, epoch in enumerate(_x(longest, "val_epochs")):
        values = [c[e] for c in map(curve, done) if c is not None and e < len(c)]
        values = [v for v in values if v is not None]
        if not values:
            continue
        mu, sd = _mean_std(values)
        sd = 0.0 if math.isnan(sd) else sd
        epochs.append(epoch), mean.append(mu), low.append(mu - sd), high.append(mu + sd)
    ax.plot(epochs, mean, "o-", ms=3, color=color, label=label, lw=1.6)
    ax.fill_between(epochs, low, high, color=color, alpha=0.18, lw=0)


def plot_diagnostics(runs: Sequence[Run], path: Path, title: str) -> bool:
    """Each diagnostic against epochs, one panel per (metric, layer), a line per configuration
    (mean ± std over seeds); False, and no file, when no run recorded diagnostics."""
    names = diagnostic_names(runs)
    if not names:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(dict.fromkeys(name.rsplit("/", 1)[0] for name in names))
    metrics = [m for m in METRIC_TITLES if any(n.endswith("/" + m) for n in names)]
    fig, axes = plt.subplots(
        len(metrics), len(layers), figsize=(3.6 * len(layers) + 2.6, 2.7 * len(metrics)),
        squeeze=False,
    )  # fmt: skip
    for label, color, done in _configurations(runs):
        for r, metric in enumerate(metrics):
            for c, layer in enumerate(layers):
                name = f"{layer}/{metric}"
                if name in names:
                    curve = lambda m, name=name: m.get("diagnostics", {}).get(name)  # noqa: E731
                    _band(axes[r][c], done, curve, color, label)
    for r, metric in enumerate(metrics):
        for c, layer in enumerate(layers):
            ax = axes[r][c]
            if f"{layer}/{metric}" not in names:
                ax.axis("off")
                continue
            ax.set_title(f"{layer}: {METRIC_TITLES[metric]}", fontsize=9)
            ax.grid(alpha=0.3)
            if r == len(metrics) - 1:
                ax.set_xlabel("epoch")
    handles, labels = next(
        (ax.get_legend_handles_labels() for ax in axes.flat if ax.get_legend_handles_labels()[0]),
        ([], []),
    )
    fig.suptitle(f"{title}: hard-op diagnostics, mean ± std over seeds")
    right = 1 - 2.4 / fig.get_figwidth()
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=8)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return True


def write_report(sweep_dir: str | Path, thresholds: Sequence[float] = THRESHOLDS) -> list[Run]:
    """Write the three report files into ``sweep_dir``; return the runs it found."""
    sweep_dir = Path(sweep_dir)
    runs = load_runs(sweep_dir)
    columns, rows = summarize(runs, thresholds)
    title = f"Sweep {sweep_dir.resolve().name}"
    write_atomic(sweep_dir / "comparison.csv", lambda p: p.write_text(to_csv(columns, rows)))
    md = to_markdown(columns, rows, runs, title)
    write_atomic(sweep_dir / "comparison.md", lambda p: p.write_text(md))
    plot(runs, sweep_dir / "convergence.png", title)
    plot_diagnostics(runs, sweep_dir / "diagnostics.png", title)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surrogate.training.report", description=__doc__
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"no such folder: {args.sweep_dir}")
    runs = write_report(args.sweep_dir, args.thresholds)
    if not runs:
        print(f"{args.sweep_dir}: no job folders found", file=sys.stderr)
        return 1
    print((args.sweep_dir / "comparison.md").read_text())
    extra = ", diagnostics.png" if (args.sweep_dir / "diagnostics.png").is_file() else ""
    print(f"wrote comparison.csv, comparison.md, convergence.png{extra} in {args.sweep_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare the runs of a sweep: ``comparison.csv``, ``comparison.md``, ``convergence.png``,
where the runs recorded hard-op diagnostics ``diagnostics.png``, and where the sweep crosses a key
of names with a key of numbers (``op`` x ``op.peak``) ``factors.md`` and ``factors.png``.

    python -m surrogate.training.report SWEEP_DIR [--thresholds 0.5 0.8 0.9]

Reads each job folder's ``metrics.json`` (and ``error.json``, written for a failed job), groups the
runs by configuration and aggregates over seeds. A job folder with neither file is reported as
missing (killed, or still running), and so is a job of the sweep's plan that never started
(``sweep_plan``). ``SWEEP_DIR`` may also be one run's own folder (``outputs/<date>/<time>``): its
report, with its curves, is written there.

A configuration is a run's whole config, ``seed`` and the settings that change no result
(``IGNORED_KEYS``) aside: the ``.hydra/config.yaml`` Hydra saved in its folder, else what its
``metrics.json`` records (its overrides, ``data``, ``estimators`` and ``layer_estimators``), so
runs that differ in anything but the seed are separate configurations even when their overrides
agree (separate ``python train.py`` runs gathered in one ``outputs/<date>``, or YAML edited
between runs). A job with neither (one that never started) joins the configuration of its
overrides. Configurations are named by the overrides that differ between them (a dash where a
configuration does not set the key), and by the config values that differ where their overrides
agree.

The keys it reads from ``metrics.json``: ``headline`` (``{"metric": "test_<name>",
"higher_is_better": bool}``; test accuracy, higher is better, where absent) and the headline's
``test_<name>``, ``best_val_<name>`` and validation curve ``val_<name>``; ``val_epochs``,
``val_seconds``, ``train_loss``, ``wall_seconds``, ``seed``, ``overrides``, ``diagnostics``; and
``reference`` (where absent, ``op`` in ``REFERENCE_OPS`` makes a run a reference). Runs that name
different headlines are refused, naming them.

Configurations are ranked by their mean headline value. A reference configuration is never ranked
or the best; each estimator's row is tested against the best estimator and against every
reference (``significance``: the paired t-test over shared seeds, else Welch's, Holm-corrected
over the rows of each comparison).
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
from surrogate.training.report import factors
from surrogate.training.report.significance import LEVEL, compare, holm, mark, verdict
from surrogate.training.report.sweep_plan import planned_jobs

THRESHOLDS = (0.5, 0.8, 0.9)
# Keys that never tell configurations apart (prefixes): the seed, where a run is written, the
# preset that only sets other keys, and what a run prints or logs.
IGNORED_KEYS = (
    "seed", "hydra.", "hydra/", "experiment", "ckpt_path", "finetune", "paths.output_dir",
    "logger.", "callbacks.progress_refresh_rate", "trainer.enable_model_summary",
)  # fmt: skip
# What a run's metrics.json records of its config, for a run folder without .hydra/config.yaml.
RECORDED_CONFIG = ("data", "estimators", "layer_estimators")
UNSET = "-"  # how the report shows a key a configuration does not set
# The diagnostics each hard-op layer records (surrogate.training.callbacks.diagnostics), as plotted.
METRIC_TITLES = {
    "dead_fraction": "dead fraction",
    "flip_ratio": "flip ratio",
    "grad_norm": "gradient norm at the input",
    "grad_cosine": "cosine to the relaxed gradient",
    "saturated": "saturated latent weights",
    "step": "quantizer step",
    "firing_rate": "firing rate",
}
# Each diagnostic's y axis: what it measures, and its range (None: from the data, from 0).
METRIC_AXES = {
    "dead_fraction": ("share of inputs with ~0 derivative", (0.0, 1.0)),
    "flip_ratio": ("share of decisions flipped", (0.0, 1.0)),
    "grad_norm": ("‖∂loss/∂input‖₂", None),
    "grad_cosine": ("cosine (hard vs relaxed)", (-1.0, 1.0)),
    "saturated": ("share of latent |w| >= 1", (0.0, 1.0)),
    "step": ("step size s", None),
    "firing_rate": ("share of neurons firing a step", (0.0, 1.0)),
}
# What a run without a "headline" in its metrics.json is ranked by.
DEFAULT_HEADLINE = {"metric": "test_acc", "higher_is_better": True}
# The ops of a run without a "reference" key in its metrics.json that make it a reference.
REFERENCE_OPS = ("relaxed", "float")
WORDS = {"acc": "accuracy"}  # how the plots spell a metric's name
BEST = "best_estimator"


@dataclass
class Run:
    """One job folder of a sweep."""

    folder: Path | None  # None: a planned job that never started
    metrics: dict | None = None
    error: str | None = None
    overrides: list[str] = field(default_factory=list)
    config: dict[str, str] | None = None  # the whole config, flattened (see the module's doc)

    @property
    def status(self) -> str:
        return "finished" if self.metrics else ("failed" if self.error else "missing")

    @property
    def name(self) -> str:
        return str(self.folder / "metrics.json") if self.folder else " ".join(self.overrides)


@dataclass(frozen=True)
class Headline:
    """The metric a sweep is ranked by: ``test_<name>``, whose validation curve is ``val_<name>``
    and best validation value ``best_val_<name>``."""

    metric: str
    higher_is_better: bool

    @property
    def name(self) -> str:
        return self.metric.removeprefix("test_")

    @property
    def val(self) -> str:
        return f"val_{self.name}"

    @property
    def best_val(self) -> str:
        return f"best_val_{self.name}"

    @property
    def words(self) -> str:
        return WORDS.get(self.name, self.name.replace("_", " "))

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def reached(self, value: float, threshold: float) -> bool:
        return value >= threshold if self.higher_is_better else value <= threshold

    def rank_key(self, mean: float) -> float:
        """Sorts the best mean first and NaN (no finished run) last."""
        if math.isnan(mean):
            return math.inf
        return -mean if self.higher_is_better else mean


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_runs(sweep_dir: str | Path) -> list[Run]:
    """Every job folder under ``sweep_dir`` (direct subfolders not starting with '.'), then the
    planned jobs that have none; or the one run whose folder ``sweep_dir`` is."""
    sweep_dir = Path(sweep_dir)
    if (sweep_dir / "metrics.json").is_file() or (sweep_dir / "error.json").is_file():
        return [_load_run(sweep_dir)]
    runs = []
    folders = [p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for folder in sorted(folders, key=lambda p: (len(p.name), p.name)):
        if any((folder / name).exists() for name in ("metrics.json", "error.json", ".hydra")):
            runs.append(_load_run(folder))
    started = {frozenset(run.overrides) for run in runs}
    for job in planned_jobs(sweep_dir) or []:
        if frozenset(job) not in started:
            runs.append(Run(None, overrides=job))
    return runs


def _load_run(folder: Path) -> Run:
    metrics = _read_json(folder / "metrics.json")
    failure = _read_json(folder / "error.json") or {}
    overrides = list((metrics or failure).get("overrides", [])) or _hydra_overrides(folder)
    run = Run(folder, metrics, failure.get("error"), overrides)
    run.config = _whole_config(run)
    return run


def _flatten(value, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` as ``{"a.b": "1"}``; lists and scalars as JSON."""
    if isinstance(value, dict):
        found = {}
        for key, item in value.items():
            found.update(_flatten(item, f"{prefix}{key}."))
        return found
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True)}


def _ignored(key: str) -> bool:
    return any(key == i or key.startswith(i) for i in IGNORED_KEYS)


def _whole_config(run: Run) -> dict[str, str] | None:
    """The run's config as flat ``key: value`` (see the module's doc), None when nothing of it is
    recorded."""
    path = run.folder / ".hydra" / "config.yaml"
    if path.is_file():
        from omegaconf import OmegaConf

        try:
            flat = _flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False))
        except Exception:  # a config this reader cannot parse: fall back to what metrics record
            flat = None
        if flat is not None:
            return {k: v for k, v in flat.items() if not _ignored(k)}
    if not run.metrics:
        return None
    recorded = {k: run.metrics[k] for k in RECORDED_CONFIG if k in run.metrics}
    return {**_settings(run), **_flatten(recorded)}


def _hydra_overrides(folder: Path) -> list[str]:
    """The overrides Hydra saved for a job that left no metrics (plain YAML list of strings)."""
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [line[2:].strip() for line in path.read_text().splitlines() if line.startswith("- ")]


def _settings(run: Run) -> dict[str, str]:
    pairs = (o.lstrip("+~").split("=", 1) for o in run.overrides if "=" in o)
    settings = {k: v for k, v in pairs if not _ignored(k)}
    if not settings and run.metrics and run.metrics.get("op"):
        settings = {"op": run.metrics["op"]}
    return settings


def group(runs: Sequence[Run]) -> tuple[list[str], dict[tuple[str, ...], list[Run]]]:
    """(the keys that name the configurations, runs grouped by configuration and keyed by their
    values of those keys, "" where one does not set a key).

    Runs are grouped by their whole config; a run without one (a job that never started) joins
    the first configuration whose runs have its overrides, else its overrides make its own. The
    names: the overrides that differ between configurations, then, for configurations those leave
    alike, the config keys that differ between them."""
    found: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.config is not None:
            found.setdefault(("config", *sorted(run.config.items())), []).append(run)
    for run in runs:
        if run.config is None:
            mine = _settings(run)
            key = next((k for k, ms in found.items() if _settings(ms[0]) == mine), None)
            found.setdefault(key or ("overrides", *sorted(mine.items())), []).append(run)
    members = list(found.values())
    settings = [_settings(ms[0]) for ms in members]
    keys = sorted({k for s in settings for k in s})
    swept = [k for k in keys if len({s.get(k, "") for s in settings}) > 1] or keys[:1] or ["op"]
    names = [tuple(s.get(k, "") for k in swept) for s in settings]
    alike: dict[tuple[str, ...], list[int]] = {}
    for i, name in enumerate(names):
        alike.setdefault(name, []).append(i)
    extra: list[str] = []
    for same in (ix for ix in alike.values() if len(ix) > 1):
        configs = [members[i][0].config or {} for i in same]
        differ = {k for c in configs for k in c if len({c2.get(k) for c2 in configs}) > 1}
        extra += sorted(differ - set(swept) - set(extra))
    groups: dict[tuple[str, ...], list[Run]] = {}
    for ms, name in zip(members, names, strict=True):
        config = ms[0].config or {}
        values = (*name, *(_shown(config.get(k)) for k in extra))
        groups.setdefault(values, []).extend(ms)
    return [*swept, *extra], groups


def _shown(value: str | None) -> str:
    """A config value (JSON) as an override would write it: strings unquoted; "" when unset."""
    if value is None:
        return ""
    try:
        parsed = json.loads(value)
    except ValueError:  # an override's own text
        return value
    return parsed if isinstance(parsed, str) else ("null" if parsed is None else value)


def _label(swept: Sequence[str], values: Sequence[str]) -> str:
    """A configuration's name: its value of the one swept key, or ``key=value, ...``."""
    values = [v if v != "" else UNSET for v in values]
    if len(swept) == 1:
        return values[0]
    return ", ".join(f"{k}={v}" for k, v in zip(swept, values, strict=True))


def _row_label(swept: Sequence[str], row: dict) -> str:
    return _label(swept, [row[k] for k in swept])


def _run_headline(run: Run) -> Headline:
    raw = run.metrics.get("headline", DEFAULT_HEADLINE)
    metric = raw.get("metric") if isinstance(raw, dict) else None
    higher = raw.get("higher_is_better") if isinstance(raw, dict) else None
    if not (isinstance(metric, str) and metric.startswith("test_") and len(metric) > 5):
        raise ValueError(f"{run.name}: headline metric must be 'test_<name>', got {raw!r}")
    if not isinstance(higher, bool):
        raise ValueError(f"{run.name}: headline higher_is_better must be a boolean, got {raw!r}")
    return Headline(metric, higher)


def headline(runs: Sequence[Run]) -> Headline:
    """The headline every finished run names (test accuracy, higher is better, for runs that name
    none); a ValueError naming the runs when they disagree, or naming a run that lacks one of the
    headline's values."""
    found: dict[Headline, list[str]] = {}
    for run in runs:
        if run.metrics:
            found.setdefault(_run_headline(run), []).append(run.name)
    if len(found) > 1:
        listed = "; ".join(
            f"{h.metric} ({h.direction}): {', '.join(names)}" for h, names in found.items()
        )
        raise ValueError(f"the runs disagree on the headline metric: {listed}")
    chosen = next(iter(found), Headline(**DEFAULT_HEADLINE))
    for run in runs:
        missing = [k for k in (chosen.metric, chosen.best_val, chosen.val) if run.metrics
                   and k not in run.metrics]  # fmt: skip
        if missing:
            raise ValueError(f"{run.name}: no {', '.join(missing)} for headline {chosen.metric}")
    return chosen


def is_reference(run: Run) -> bool:
    """A run's ``"reference"`` in its metrics.json where it says, else whether its op is one of
    ``REFERENCE_OPS`` (``op`` in metrics.json, or the ``op=`` override of a run without one)."""
    if not run.metrics:
        return _settings(run).get("op") in REFERENCE_OPS
    flag = run.metrics.get("reference")
    if flag is None:
        return run.metrics.get("op") in REFERENCE_OPS
    if not isinstance(flag, bool):
        raise ValueError(f"{run.name}: reference must be true or false, got {flag!r}")
    return flag


def _is_reference_configuration(label: str, members: Sequence[Run]) -> bool:
    """Whether a configuration is a reference: its finished runs agree (a ValueError naming them
    when not); a configuration with none, by its runs' overrides."""
    finished = [r for r in members if r.metrics] or list(members)
    flags = {r.name: is_reference(r) for r in finished}
    if len(set(flags.values())) > 1:
        refs = ", ".join(name for name, flag in flags.items() if flag)
        others = ", ".join(name for name, flag in flags.items() if not flag)
        raise ValueError(f"configuration {label}: runs {refs} are references and {others} not")
    return any(flags.values())


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std


def _x(metrics: dict, key: str, curve: str) -> list[float]:
    """A run's x values for its ``curve``: ``val_epochs`` or ``val_seconds`` (NaN when absent)."""
    n = len(metrics[curve])
    default = list(range(1, n + 1)) if key == "val_epochs" else [math.nan] * n
    return metrics.get(key) or default


def _first_reach(metrics: dict, threshold: float, head: Headline) -> tuple[float, float] | None:
    """(epochs, training seconds) at the first validation that reached ``threshold``: at or
    above it when higher is better, at or below it when lower is."""
    curves = (
        metrics[head.val], _x(metrics, "val_epochs", head.val), _x(metrics, "val_seconds", head.val)
    )  # fmt: skip
    for value, epoch, seconds in zip(*curves, strict=True):
        if head.reached(value, threshold):
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


def _seed(run: Run) -> int | None:
    seed = run.metrics.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"{run.name}: seed must be an integer, got {seed!r}")
    return seed


@dataclass
class Summary:
    """A sweep's comparison: one row per configuration, ranked by the headline (best first,
    references among them but never ranked), and ``comparisons``: what every estimator row is
    tested against, the best estimator then each reference, as (CSV key, name, its row or None)."""

    columns: list[str]
    rows: list[dict]
    swept: list[str]
    headline: Headline
    comparisons: list[tuple[str, str, dict | None]]
    thresholds: tuple[float, ...]
    repeats: dict[int, list[int]] = field(default_factory=dict)  # id(row): seeds run twice or more


def reach_columns(head: Headline, t: float) -> tuple[str, str]:
    return f"epochs_to_val_{head.name}_{t:g}", f"seconds_to_val_{head.name}_{t:g}"


def summarize(runs: Sequence[Run], thresholds: Sequence[float] = THRESHOLDS) -> Summary:
    """Every configuration's row, ranked by its mean headline value, with its tests against the
    best estimator and each reference."""
    head = headline(runs)
    swept, groups = group(runs)
    diagnostics = diagnostic_names(runs)
    rows, values, repeats = [], {}, {}
    for config, members in groups.items():
        done = [r.metrics for r in members if r.metrics]
        row = dict(zip(swept, config, strict=True))
        row["seeds"], row["failed"] = len(done), len(members) - len(done)
        row["reference"] = _is_reference_configuration(_label(swept, config), members)
        for key in (head.metric, head.best_val):
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([m[key] for m in done])
        for t in thresholds:
            reached = [_first_reach(m, t, head) for m in done]
            complete = bool(done) and all(r is not None for r in reached)
            for i, column in enumerate(reach_columns(head, t)):
                row[column] = statistics.fmean(r[i] for r in reached) if complete else math.nan
        row["wall_seconds_mean"] = _mean_std([m["wall_seconds"] for m in done])[0]
        for name in diagnostics:
            row[f"diag/{name}"] = _mean_std(
                [v for m in done if (v := _final(m, name)) is not None]
            )[0]
        rows.append(row)
        values[id(row)] = [(_seed(r), r.metrics[head.metric]) for r in members if r.metrics]
        seeds = [seed for seed, _ in values[id(row)]]
        repeats[id(row)] = sorted({s for s in seeds if s is not None and seeds.count(s) > 1})
    order = {id(row): i for i, row in enumerate(rows)}
    rows.sort(key=lambda r: head.rank_key(r[f"{head.metric}_mean"]))
    estimators = [r for r in rows if not r["reference"]]
    best = next((r for r in estimators if r["seeds"] > 0), None)
    references = sorted((r for r in rows if r["reference"]), key=lambda r: order[id(r)])
    comparisons = [(BEST, "best estimator", best)]
    comparisons += [(_row_label(swept, r), _row_label(swept, r), r) for r in references]
    for key, _, target in comparisons:
        tested = [r for r in estimators if r is not target]
        results = [compare(values[id(r)], values[id(target)] if target else []) for r in tested]
        for row, result, p in zip(tested, results, holm([c.p for c in results]), strict=True):
            row[f"vs_{key}"] = verdict(p, result.diff, head.higher_is_better)
            row[f"p_vs_{key}"], row[f"test_vs_{key}"] = p, result.test
        for row in rows:
            if all(row is not r for r in tested):
                row[f"vs_{key}"], row[f"p_vs_{key}"], row[f"test_vs_{key}"] = "", math.nan, ""
    if best is not None:
        best[f"vs_{BEST}"] = "best"
    columns = [*swept, "seeds", "failed", "reference", f"{head.metric}_mean", f"{head.metric}_std"]
    for key, _, _ in comparisons:
        columns += [f"p_vs_{key}", f"vs_{key}", f"test_vs_{key}"]
    columns += [f"{head.best_val}_mean", f"{head.best_val}_std"]
    columns += [c for t in thresholds for c in reach_columns(head, t)]
    columns += ["wall_seconds_mean", *(f"diag/{name}" for name in diagnostics)]
    return Summary(columns, rows, swept, head, comparisons, tuple(thresholds), repeats)


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _csv(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if isinstance(value, float) and math.isnan(value) else value


def to_csv(summary: Summary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(summary.columns)
    for row in summary.rows:
        writer.writerow([_csv(v) for v in map(row.get, summary.columns)])
    return out.getvalue()


def _pm(row: dict, key: str) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" + ("" if math.isnan(std) else f" ± {std:.4f}")


def verdicts(summary: Summary) -> list[str]:
    """One line per comparison: which estimators it calls worse, better, tied or cannot tell."""
    swept, head = summary.swept, summary.headline
    names = {id(r): f"`{_row_label(swept, r)}`" for r in summary.rows}
    best = summary.comparisons[0][2]
    if best is None:
        return ["- No estimator finished a run: there is no best estimator."]
    lines = [
        f"- Best estimator: {names[id(best)]} ({head.metric.replace('_', ' ')} "
        f"{_pm(best, head.metric)}, {head.direction})."
    ]
    for key, _, target in summary.comparisons:
        found: dict[str, list[str]] = {}
        for row in summary.rows:
            if row[f"vs_{key}"] in ("better", "worse", "tied", "?"):
                found.setdefault(row[f"vs_{key}"], []).append(names[id(row)])
        said = "; ".join(
            f"{v if v != '?' else 'cannot tell (fewer than two seeds)'} {', '.join(found[v])}"
            for v in ("better", "worse", "tied", "?")
            if v in found
        )
        against = "the best estimator, " if key == BEST else "the reference "
        lines.append(f"- Against {against}{names[id(target)]}: {said or 'no other estimator'}.")
    return lines


def to_markdown(summary: Summary, runs: Sequence[Run], title: str) -> str:
    swept, head, rows = summary.swept, summary.headline, summary.rows
    reach = [c for t in summary.thresholds for c in reach_columns(head, t)]
    short = [
        f"{unit} to val {head.name.replace('_', ' ')} {t:g}"
        for t in summary.thresholds
        for unit in ("epochs", "s")
    ]
    metric, best_val = head.metric.replace("_", " "), head.best_val.replace("_", " ")
    head_cells = ["rank", *swept, "seeds", metric]
    head_cells += [*(f"vs {name}" for _, name, _ in summary.comparisons), best_val, *short]
    head_cells += ["wall s", "failed"]
    lines = [f"# {title}", "", "| " + " | ".join(head_cells) + " |", "|" + "---|" * len(head_cells)]
    rank = 0
    for row in rows:
        rank += not row["reference"]
        cells = ["ref" if row["reference"] else str(rank)]
        cells += [f"`{row[k]}`" if row[k] != "" else UNSET for k in swept]
        cells += [str(row["seeds"]), _pm(row, head.metric)]
        cells += [
            mark(row[f"vs_{key}"], row[f"p_vs_{key}"], row[f"test_vs_{key}"])
            for key, _, _ in summary.comparisons
        ]
        cells += [_pm(row, head.best_val), *(_cell(row[c]) for c in reach)]
        cells += [_cell(row["wall_seconds_mean"]), str(row["failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    references = ", ".join(f"`{name}`" for _, name, _ in summary.comparisons[1:])
    which = '`op=relaxed`, `op=float`, or a run whose metrics.json says `"reference": true`'
    if references:
        which = (
            f"`ref`: a reference configuration ({references}; {which}), which every estimator "
            "is compared with and which is never ranked or the best."
        )
    else:
        which = f"No reference configuration ({which}) in this sweep."
    lines += ["", *verdicts(summary)]
    for row in rows:
        if summary.repeats.get(id(row)):
            seeds = ", ".join(map(str, summary.repeats[id(row)]))
            lines.append(
                f"- `{_row_label(swept, row)}` ran seed {seeds} more than once with the same "
                "config: repeats of one run, not separate seeds, though counted among its seeds."
            )
    lines += [
        "",
        f"Ranked by mean {metric} ({head.direction}). {which} Mean ± sample std over seeds. "
        f"`epochs_to_val_{head.name}_T` / `seconds_to_val_{head.name}_T`: epochs (fractional when "
        f"validating mid-epoch) and training seconds until the validation {head.words} first "
        f"reached T ({'at or above' if head.higher_is_better else 'at or below'} it), averaged "
        "over seeds; empty when a seed never reached it.",
        "",
        f"`vs best estimator`, `vs <reference>`: each estimator's per-seed {metric} against that "
        f"configuration's, `better` or `worse` when the corrected p < {LEVEL:g}, `tied` "
        "otherwise, `?` with fewer than two seeds on a side. `paired`: a two-sided paired t-test, "
        "t = mean(d) / (sd(d) / sqrt(n)) with n − 1 degrees of freedom, over the differences d "
        "of the n ≥ 2 seeds both ran (matched by the `seed` in metrics.json; a seed fixes the "
        "initialization and the data order, so both started from the same weights and saw the "
        "same batches; assumes the differences independent and roughly normal; p is 0 when every "
        "seed differs by the same amount). `Welch`: "
        "Welch's two-sided t-test over every seed when fewer than two are shared (assumes "
        "independent, roughly normal seeds, unequal variances allowed). p: Holm's correction "
        "(Holm 1979) over the estimators the column compares, so a column calls any difference "
        f"by chance at most {LEVEL:.0%} of the time.",
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


def plot(runs: Sequence[Run], path: Path, title: str, head: Headline) -> None:
    """The headline's validation curve and the training loss per epoch, mean ± std over seeds per
    configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for label, color, done in _configurations(runs, head):
        for ax, key in zip(axes, (head.val, "train_loss"), strict=True):
            _band(ax, done, lambda m, key=key: m[key], color, label, head)
    validation = f"validation {head.words}"
    axes[0].set(xlabel="epoch", ylabel=validation, title=validation)
    axes[1].set(xlabel="epoch", ylabel="training loss", title="training loss (mean per interval)")
    for ax in axes:
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(f"{title}: mean ± std over seeds, legend ranked by test {head.words}")
    fig.tight_layout(rect=(0, 0, 0.84 if handles else 1, 1))
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.84, 0.5), fontsize=8)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _configurations(runs: Sequence[Run], head: Headline):
    """(label, color, finished metrics) per configuration, ranked by the mean headline value."""
    import matplotlib.pyplot as plt

    swept, groups = group(runs)
    palette = plt.get_cmap("tab20").colors
    colors = palette[0::2] + palette[1::2]  # ten distinct hues first, then their light shades
    ranked = sorted(
        ((vs, [r.metrics for r in ms if r.metrics]) for vs, ms in groups.items()),
        key=lambda item: head.rank_key(
            statistics.fmean(m[head.metric] for m in item[1]) if item[1] else math.nan
        ),
    )
    for i, (values, done) in enumerate(ranked):
        if done:
            yield f"{_label(swept, values)} (n={len(done)})", colors[i % len(colors)], done


def _band(ax, done: list[dict], curve, color, label: str, head: Headline) -> None:
    """Mean ± std over the runs of ``curve(metrics)`` against the epochs of the headline's
    validation curve (None values skipped)."""
    longest = max(done, key=lambda m: len(m[head.val]))
    epochs, mean, low, high = [], [], [], []
    for e, epoch in enumerate(_x(longest, "val_epochs", head.val)):
        values = [c[e] for c in map(curve, done) if c is not None and e < len(c)]
        values = [v for v in values if v is not None]
        if not values:
            continue
        mu, sd = _mean_std(values)
        sd = 0.0 if math.isnan(sd) else sd
        epochs.append(epoch), mean.append(mu), low.append(mu - sd), high.append(mu + sd)
    ax.plot(epochs, mean, "o-", ms=3, color=color, label=label, lw=1.6)
    ax.fill_between(epochs, low, high, color=color, alpha=0.18, lw=0)


def plot_diagnostics(runs: Sequence[Run], path: Path, title: str, head: Headline) -> bool:
    """Each diagnostic against epochs, one panel per (metric, layer), a line per configuration
    (mean ± std over seeds); False, and no file, when no run recorded diagnostics."""
    names = diagnostic_names(runs)
    if not names:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(dict.fromkeys(name.rsplit("/", 1)[0] for name in names))
    layer_names = layer_titles(runs, layers)
    metrics = [m for m in METRIC_TITLES if any(n.endswith("/" + m) for n in names)]
    fig, axes = plt.subplots(
        len(metrics), len(layers), figsize=(3.6 * len(layers) + 2.6, 2.7 * len(metrics)),
        squeeze=False,
    )  # fmt: skip
    for label, color, done in _configurations(runs, head):
        for r, metric in enumerate(metrics):
            for c, layer in enumerate(layers):
                name = f"{layer}/{metric}"
                if name in names:
                    curve = lambda m, name=name: m.get("diagnostics", {}).get(name)  # noqa: E731
                    _band(axes[r][c], done, curve, color, label, head)
    for r, metric in enumerate(metrics):
        for c, layer in enumerate(layers):
            ax = axes[r][c]
            if f"{layer}/{metric}" not in names:
                ax.axis("off")
                continue
            ax.set_title(f"{layer_names[layer]}: {METRIC_TITLES[metric]}", fontsize=9)
            ax.grid(alpha=0.3)
            _diagnostic_axis(ax, metric)
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


def layer_titles(runs: Sequence[Run], layers: Sequence[str]) -> dict[str, str]:
    """Each diagnosed layer's panel name: its module path and its op, ``features.3 (sign)``, from
    the runs' ``diagnostic_layers`` (path: op) or ``layer_estimators`` (path: {"op": ...}); the
    ops joined by "/" where runs differ; ``network``: the whole network."""
    ops: dict[str, list[str]] = {layer: [] for layer in layers}
    for run in runs:
        if not run.metrics:
            continue
        recorded = dict(run.metrics.get("diagnostic_layers") or {})
        for layer, estimator in (run.metrics.get("layer_estimators") or {}).items():
            if isinstance(estimator, dict) and "op" in estimator:
                recorded.setdefault(layer, estimator["op"])
        for layer, op in recorded.items():
            if layer in ops and isinstance(op, str) and op not in ops[layer]:
                ops[layer].append(op)
    return {
        layer: "whole network" if layer == "network" and not found
        else f"{layer} ({'/'.join(found)})" if found else layer
        for layer, found in ops.items()
    }  # fmt: skip


def _diagnostic_axis(ax, metric: str) -> None:
    """The y axis of a diagnostic's panel: what it measures, over its whole range (a fraction in
    [0, 1], a cosine in [-1, 1], a norm from 0), with a margin so points on a bound show."""
    label, bounds = METRIC_AXES.get(metric, (metric.replace("_", " "), None))
    ax.set_ylabel(label, fontsize=8)
    if bounds is None:
        top = ax.get_ylim()[1]
        bounds = (0.0, top if top > 0 else 1.0)
    low, high = bounds
    margin = 0.04 * (high - low)
    ax.set_ylim(low - margin, high + margin)


def write_report(sweep_dir: str | Path, thresholds: Sequence[float] = THRESHOLDS) -> list[Run]:
    """Write the three report files into ``sweep_dir``; return the runs it found."""
    sweep_dir = Path(sweep_dir)
    runs = load_runs(sweep_dir)
    summary = summarize(runs, thresholds)
    one = len(runs) == 1 and runs[0].folder == sweep_dir  # a run's own folder
    title = f"{'Run' if one else 'Sweep'} {sweep_dir.resolve().name}"
    write_atomic(sweep_dir / "comparison.csv", lambda p: p.write_text(to_csv(summary)))
    md = to_markdown(summary, runs, title)
    write_atomic(sweep_dir / "comparison.md", lambda p: p.write_text(md))
    plot(runs, sweep_dir / "convergence.png", title, summary.headline)
    plot_diagnostics(runs, sweep_dir / "diagnostics.png", title, summary.headline)
    write_factors(runs, sweep_dir, title, summary.headline)
    return runs


def write_factors(runs: Sequence[Run], sweep_dir: Path, title: str, head: Headline) -> bool:
    """``factors.md`` and ``factors.png`` (``surrogate.training.report.factors``) where the sweep
    crosses a key of names with a key of numbers; False, and no files, elsewhere."""
    swept, groups = group(runs)
    found = factors.find(swept, groups, head.metric, head.higher_is_better)
    if found is None:
        return False
    md = factors.to_markdown(found)
    write_atomic(sweep_dir / "factors.md", lambda p: p.write_text(md))
    factors.plot(found, sweep_dir / "factors.png", title)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surrogate.training.report", description=__doc__
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"no such folder: {args.sweep_dir}")
    try:
        runs = write_report(args.sweep_dir, args.thresholds)
    except ValueError as error:
        print(f"{args.sweep_dir}: {error}", file=sys.stderr)
        return 2
    if not runs:
        print(f"{args.sweep_dir}: no job folders found", file=sys.stderr)
        return 1
    print((args.sweep_dir / "comparison.md").read_text())
    extra = ", diagnostics.png" if (args.sweep_dir / "diagnostics.png").is_file() else ""
    if (args.sweep_dir / "factors.md").is_file():
        print((args.sweep_dir / "factors.md").read_text())
        extra += ", factors.md, factors.png"
    print(f"wrote comparison.csv, comparison.md, convergence.png{extra} in {args.sweep_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

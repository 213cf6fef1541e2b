"""Which of two swept factors moves the headline: a kind (``op``: the surrogate's shape) or a
number (``op.peak``: its scale). Written by the sweep report as ``factors.md`` and
``factors.png`` when a sweep crosses one key of names with one key of at least three numbers.

The figure: the headline against the number, a line per name (mean ± std over seeds); runs that
set no number (``ste``, ``none``: no bump to rescale) as horizontal bands.

The verdict: a two-way analysis of variance with replication over the complete grid of names x
numbers, the seeds as replicates (Fisher; e.g. Montgomery, Design and Analysis of Experiments,
ch. 5). The total sum of squares of the headline splits into the names' main effect, the
numbers' main effect, their interaction and the seeds' residual; each effect's F = its mean
square / the residual's, its p from the F distribution, and its share η² = its sum of squares /
the total. The factor with the larger share matters more here; where only one is significant
(p < 0.05), that one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from surrogate.training.atomic import write_atomic
from surrogate.training.report.significance import LEVEL

UNSET = ("", "null")  # a configuration that sets no number: the key left out, or set to null


@dataclass
class Effect:
    name: str
    ss: float
    df: int
    f: float
    p: float
    share: float  # η²


@dataclass
class Factors:
    kind_key: str  # the names' key (op)
    number_key: str  # the numbers' key (op.peak)
    kinds: list[str]
    numbers: list[float]
    cells: dict[tuple[str, float], list[float]]  # the headline per seed, per (name, number)
    plain: dict[str, list[float]]  # names that set no number: the headline per seed
    effects: list[Effect]  # kind, number, interaction (empty where the grid is incomplete)
    metric: str
    higher_is_better: bool


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def find(swept: Sequence[str], groups: dict, metric: str, higher: bool) -> Factors | None:
    """The factors of a sweep grouped as ``sweep.group`` groups it, or None unless it crosses
    exactly one key of names with one key of at least three numbers."""
    numeric = [
        i for i, key in enumerate(swept)
        if len({v for vs in groups for v in [vs[i]] if v not in UNSET}) >= 3
        and all(_number(vs[i]) is not None for vs in groups if vs[i] not in UNSET)
    ]  # fmt: skip
    if len(swept) != 2 or len(numeric) != 1:
        return None
    n = numeric[0]
    k = 1 - n
    cells: dict[tuple[str, float], list[float]] = {}
    plain: dict[str, list[float]] = {}
    for values, runs in groups.items():
        scores = [r.metrics[metric] for r in runs if r.metrics and metric in r.metrics]
        if values[n] in UNSET:
            plain[values[k]] = scores
        else:
            number = _number(values[n])
            assert number is not None
            cells[(values[k], number)] = scores
    kinds = sorted({kind for kind, _ in cells})
    numbers = sorted({number for _, number in cells})
    effects = anova(cells, kinds, numbers)
    return Factors(swept[k], swept[n], kinds, numbers, cells, plain, effects, metric, higher)


def anova(cells: dict, kinds: list[str], numbers: list[float]) -> list[Effect]:
    """Two-way ANOVA with replication (see the module docstring); [] unless every cell of the
    grid holds the same number (>= 2) of finite values."""
    sizes = {len(cells.get((a, b), [])) for a in kinds for b in numbers}
    if len(sizes) != 1 or min(sizes) < 2 or len(kinds) < 2 or len(numbers) < 2:
        return []
    if not all(math.isfinite(v) for vs in cells.values() for v in vs):
        return []
    (r,) = sizes
    a, b = len(kinds), len(numbers)
    every = [v for x in kinds for y in numbers for v in cells[(x, y)]]
    grand = statistics.fmean(every)
    cell_mean = {key: statistics.fmean(vs) for key, vs in cells.items()}
    kind_mean = {x: statistics.fmean(cell_mean[(x, y)] for y in numbers) for x in kinds}
    number_mean = {y: statistics.fmean(cell_mean[(x, y)] for x in kinds) for y in numbers}
    ss_total = sum((v - grand) ** 2 for v in every)
    ss_kind = b * r * sum((m - grand) ** 2 for m in kind_mean.values())
    ss_number = a * r * sum((m - grand) ** 2 for m in number_mean.values())
    ss_cells = r * sum((m - grand) ** 2 for m in cell_mean.values())
    ss_both = ss_cells - ss_kind - ss_number
    ss_error = ss_total - ss_cells
    df_error = a * b * (r - 1)
    ms_error = ss_error / df_error
    effects = []
    for name, ss, df in (("kind", ss_kind, a - 1), ("number", ss_number, b - 1),
                         ("interaction", ss_both, (a - 1) * (b - 1))):  # fmt: skip
        f = (ss / df) / ms_error if ms_error > 0 else math.inf
        effects.append(Effect(name, ss, df, f, _f_sf(f, df, df_error), _share(ss, ss_total)))
    return effects


def _share(ss: float, total: float) -> float:
    return ss / total if total > 0 else 0.0


def _f_sf(f: float, df1: int, df2: int) -> float:
    from scipy.stats import f as fisher

    return 0.0 if math.isinf(f) else float(fisher.sf(f, df1, df2))


def verdict(factors: Factors) -> str:
    """Which factor matters more, in words, from the ANOVA; '' without one."""
    if not factors.effects:
        return ""
    kind, number, _ = factors.effects
    names = {"kind": f"`{factors.kind_key}`", "number": f"`{factors.number_key}`"}
    significant = [e for e in (kind, number) if e.p < LEVEL]
    by_share = max((kind, number), key=lambda e: e.share)
    winner = significant[0] if len(significant) == 1 else by_share
    other = number if winner is kind else kind
    if not significant:
        return (
            f"Neither {names['kind']} nor {names['number']} changes the {factors.metric} "
            f"beyond the seeds' spread (p >= {LEVEL:g} for both)."
        )
    return (
        f"{names[winner.name]} matters more here: it explains {winner.share:.0%} of the "
        f"variance of {factors.metric} across runs (F = {winner.f:.3g}, p = {winner.p:.2g}), "
        f"{names[other.name]} {other.share:.0%} (F = {other.f:.3g}, p = {other.p:.2g})."
    )


def _pm(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def to_markdown(factors: Factors) -> str:
    """``factors.md``: the grid's means ± std, the names without a number, the ANOVA, the
    verdict."""
    head = f"| {factors.kind_key} \\ {factors.number_key} | "
    head += " | ".join(f"{n:g}" for n in factors.numbers) + " |"
    lines = [
        f"# {factors.metric}: {factors.kind_key} against {factors.number_key}",
        "",
        f"Mean ± std over seeds of {factors.metric}.",
        "",
        head,
        "|---|" + "---|" * len(factors.numbers),
    ]
    for kind in factors.kinds:
        row = [_pm(factors.cells.get((kind, n), [])) for n in factors.numbers]
        lines.append(f"| {kind} | " + " | ".join(row) + " |")
    for kind, values in factors.plain.items():
        lines.append(f"| {kind} (no {factors.number_key}) | {_pm(values)} |" + " |" * (
            len(factors.numbers) - 1))  # fmt: skip
    lines += ["", "## Two-way analysis of variance", ""]
    if not factors.effects:
        lines.append("Not computed: the grid is incomplete or has fewer than two seeds a cell.")
    else:
        lines += ["| effect | share of variance (η²) | F | df | p |", "|---|---|---|---|---|"]
        names = {"kind": factors.kind_key, "number": factors.number_key,
                 "interaction": "interaction"}  # fmt: skip
        for e in factors.effects:
            lines.append(f"| {names[e.name]} | {e.share:.3f} | {e.f:.3g} | {e.df} | {e.p:.2g} |")
        lines += ["", verdict(factors)]
    return "\n".join(lines) + "\n"


def plot(factors: Factors, path, title: str) -> None:
    """The headline against the number, a line per name, mean ± std; bands for the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.get_cmap("tab10").colors
    for i, kind in enumerate(factors.kinds):
        xs = [n for n in factors.numbers if factors.cells.get((kind, n))]
        stats = [_mean_std(factors.cells[(kind, n)]) for n in xs]
        mean = [m for m, _ in stats]
        ax.errorbar(xs, mean, yerr=[s for _, s in stats], fmt="o-", ms=4, capsize=3,
                    color=colors[i % 10], label=kind)  # fmt: skip
    low, high = min(factors.numbers), max(factors.numbers)
    for j, (kind, values) in enumerate(factors.plain.items()):
        if not values:
            continue
        m, s = _mean_std(values)
        color = ("0.35", "0.65", "0.8")[j % 3]
        ax.hlines(m, low, high, colors=color, linestyles="--", label=f"{kind} (no bump)")
        ax.fill_between([low, high], m - s, m + s, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log", base=2)
    ax.set(xlabel=f"{factors.number_key} (log scale)", ylabel=factors.metric,
           title=f"{title}: mean ± std over seeds")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _mean_std(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], 0.0
    return statistics.fmean(values), statistics.stdev(values)

"""Whether two configurations' headline metric can be told apart over seeds, and the correction for
comparing many configurations at once.

Each configuration ran a few seeds; in this app a seed fixes both the data order and the network's
initialization, so two configurations that ran the same seed started from the same weights and saw
the same batches. ``compare`` picks the test:

- **Paired t-test** (Student 1908), when both ran at least two seeds in common (matched by the
  ``seed`` each run's ``metrics.json`` records; a configuration with a repeated or unknown seed is
  never paired). Over the n common seeds, with differences d_i = a_i - b_i, their mean d̄ and
  sample standard deviation s_d,

      t = d̄ / (s_d / sqrt(n)),   df = n - 1,   p = 2 · P(T_df > |t|).

  Seeds the other configuration did not run are left out. It assumes the differences are
  independent draws from a roughly normal distribution; it does not assume equal variances, and
  what a seed adds to both configurations alike (a lucky initialization, an easy data order)
  cancels in d_i.
- **Welch's t-test** (unequal variances; Welch 1947) otherwise, over every seed: with values a and
  b, means m, sample variances s² and counts n,

      t = (m_a - m_b) / sqrt(s_a²/n_a + s_b²/n_b)
      df = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)² / (n_a - 1) + (s_b²/n_b)² / (n_b - 1))
      p = 2 · P(T_df > |t|).

  It assumes every seed an independent draw and the values roughly normal.

With fewer than two values on a side neither test can tell (p is NaN). When nothing varies (every
difference equal, or no variance on either side) p is 1 for equal means and 0 otherwise.

A report compares many rows with one (the best estimator, or a reference), so by chance alone some
of m uncorrected tests fall under 0.05. ``holm`` corrects a column of p-values for the m rows it
compares (Holm 1979, the sequentially rejective Bonferroni test): order them p_(1) <= ... <= p_(m);
the adjusted p_(i) is max over j <= i of min(1, (m - j + 1) · p_(j)). A row differs when its
adjusted p is below 0.05; the chance of calling any of the m a difference when none is real is then
at most 0.05, whatever the dependence between the tests.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.05
PAIRED, WELCH = "paired", "Welch"


def _two_sided(t: float, df: float) -> float:
    from scipy.stats import t as student_t

    return float(2 * student_t.sf(abs(t), df))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch's two-sided p-value for equal means of ``a`` and ``b``; NaN with fewer than two
    values on a side; 1 or 0 when neither side varies (equal or different means)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:
        return 1.0 if diff == 0 else 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return _two_sided(diff / math.sqrt(va + vb), df)


def paired_p(a: Sequence[float], b: Sequence[float]) -> float:
    """The paired t-test's two-sided p-value for a mean difference of zero between ``a[i]`` and
    ``b[i]``; NaN with fewer than two pairs; 1 or 0 when every difference is the same (zero or
    not)."""
    if len(a) != len(b):
        raise ValueError(f"a paired test needs as many values on each side, got {len(a)} and "
                         f"{len(b)}")  # fmt: skip
    if len(a) < 2:
        return math.nan
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean, var = statistics.fmean(d), statistics.variance(d)
    if var == 0:
        return 1.0 if mean == 0 else 0.0
    return _two_sided(mean / math.sqrt(var / len(d)), len(d) - 1)


@dataclass(frozen=True)
class Comparison:
    """One configuration against another: the uncorrected p, the test (``paired``, ``Welch``, or
    ``""`` when it cannot tell), the seeds it paired (0 for Welch) and the difference of the means
    it tested (first minus second)."""

    p: float
    test: str
    paired: int
    diff: float


def _by_seed(values: Sequence[tuple[int | None, float]]) -> dict[int, float] | None:
    seeds = [s for s, _ in values]
    if None in seeds or len(set(seeds)) != len(seeds):
        return None
    return dict(values)


def compare(
    a: Sequence[tuple[int | None, float]], b: Sequence[tuple[int | None, float]]
) -> Comparison:
    """``a`` against ``b``, each a configuration's (seed, value) per finished run: the paired test
    over the seeds both ran when there are two or more, Welch's test over every run otherwise."""
    pa, pb = _by_seed(a), _by_seed(b)
    common = sorted(pa.keys() & pb.keys()) if pa is not None and pb is not None else []
    if len(common) >= 2:
        x, y = [pa[s] for s in common], [pb[s] for s in common]
        diff = statistics.fmean(x) - statistics.fmean(y)
        return Comparison(paired_p(x, y), PAIRED, len(common), diff)
    x, y = [v for _, v in a], [v for _, v in b]
    p = welch_p(x, y)
    diff = statistics.fmean(x) - statistics.fmean(y) if x and y else math.nan
    return Comparison(p, "" if math.isnan(p) else WELCH, 0, diff)


def holm(ps: Sequence[float]) -> list[float]:
    """Holm's adjusted p-values, in the order given; a NaN (a test that could not be made) stays
    NaN and does not count among the m tests."""
    tested = sorted((p, i) for i, p in enumerate(ps) if not math.isnan(p))
    for p, _ in tested:
        if not 0 <= p <= 1:
            raise ValueError(f"a p-value lies in [0, 1], got {p!r}")
    adjusted, running = [math.nan] * len(ps), 0.0
    for j, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - j) * p))
        adjusted[i] = running
    return adjusted


def verdict(p: float, diff: float, higher_is_better: bool) -> str:
    """``better`` or ``worse`` (the first configuration's headline against the second's, adjusted
    p < 0.05, in the headline's direction), ``tied`` (p >= 0.05), or ``?`` (cannot tell)."""
    if math.isnan(p):
        return "?"
    if p >= LEVEL:
        return "tied"
    return "better" if (diff > 0) == higher_is_better else "worse"


def mark(verdict: str, p: float, test: str) -> str:
    """How a report shows a verdict: ``tied (paired p 0.47)``, ``worse (Welch p 0.012)``, or the
    verdict alone (``best``, ``?``, empty)."""
    return f"{verdict} ({test} p {p:.2g})" if verdict in ("tied", "better", "worse") else verdict

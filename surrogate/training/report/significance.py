"""Whether a configuration's test accuracy can be told from the best one's, over seeds.

Welch's two-sided t-test (unequal variances; Welch 1947): with per-seed accuracies ``a`` (the best
configuration) and ``b``, means m, sample variances s² and counts n,

    t = (m_a - m_b) / sqrt(s_a²/n_a + s_b²/n_b)
    df = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)² / (n_a - 1) + (s_b²/n_b)² / (n_b - 1))
    p = 2 · P(T_df > |t|)

A difference is called real when p < 0.05. It assumes each seed is an independent draw and the
accuracies are roughly normal; it makes no correction for comparing many configurations with the
best (with twelve, about one "real" difference in two sweeps is chance). With fewer than two seeds
on either side it cannot tell.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

LEVEL = 0.05


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch's two-sided p-value for equal means of ``a`` and ``b``; NaN with fewer than two
    values on a side; 1 or 0 when neither side varies (equal or different means)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    from scipy.stats import t as student_t

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:
        return 1.0 if diff == 0 else 0.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return float(2 * student_t.sf(abs(t), df))


def verdict(p: float, is_best: bool) -> str:
    """``best``, ``tied`` (p >= 0.05), ``lower`` (p < 0.05), or ``?`` (cannot tell)."""
    if is_best:
        return "best"
    if math.isnan(p):
        return "?"
    return "lower" if p < LEVEL else "tied"


def mark(verdict: str, p: float) -> str:
    """How a report shows a verdict: ``tied (p 0.47)``, ``lower (p 0.012)``, ``best`` or ``?``."""
    return f"{verdict} (p {p:.2g})" if verdict in ("tied", "lower") else verdict

"""The tests a sweep report makes, against float64 references written here from the formulas
(Student's t distribution by quadrature, Holm's step-down rule as Holm 1979 states it) and against
scipy.stats: Welch's and the paired t-test at their edges and on worked examples, the pairing by
seed, Holm's correction and the verdict's direction."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from scipy import stats

from surrogate.training.report.significance import (
    compare,
    holm,
    mark,
    paired_p,
    verdict,
    welch_p,
)


def t_two_sided(t: float, df: float, steps: int = 20_000) -> float:
    """P(|T_df| > |t|) = 1 - 2 ∫_0^|t| f(x) dx, with Student's density
    f(x) = Γ((df+1)/2) / (sqrt(df π) Γ(df/2)) · (1 + x²/df)^(-(df+1)/2), by Simpson's rule."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    h = abs(t) / steps
    f = [c * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(steps + 1)]
    integral = h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))
    return 1 - 2 * integral


def welch_reference(a: list[float], b: list[float]) -> float:
    """Welch's two-sided p, from its textbook formulas in float64."""
    na, nb = len(a), len(b)
    va = sum((x - sum(a) / na) ** 2 for x in a) / (na - 1) / na
    vb = sum((x - sum(b) / nb) ** 2 for x in b) / (nb - 1) / nb
    if va + vb == 0:  # t = ±inf, or 0/0 for equal means
        return 1.0 if sum(a) / na == sum(b) / nb else 0.0
    t = (sum(a) / na - sum(b) / nb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return t_two_sided(t, df)


def paired_reference(a: list[float], b: list[float]) -> float:
    """The paired t-test's two-sided p, from its textbook formula in float64."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd == 0:  # t = ±inf, or 0/0 when every difference is zero
        return 1.0 if mean == 0 else 0.0
    return t_two_sided(mean / (sd / math.sqrt(n)), n - 1)


def holm_reference(ps: list[float]) -> list[float]:
    """Holm's adjusted p of each test: the smallest level at which his sequentially rejective test
    rejects it, max over the tests ordered at or before it of (m - j + 1) p_(j), capped at 1."""
    tested = [p for p in ps if not math.isnan(p)]
    m = len(tested)
    ordered = sorted(tested)
    out = []
    for p in ps:
        if math.isnan(p):
            out.append(math.nan)
            continue
        i = ordered.index(p)
        out.append(min(1.0, max((m - j) * ordered[j] for j in range(i + 1))))
    return out


def holm_rejects(ps: list[float], alpha: float) -> list[bool]:
    """Holm (1979): order the p-values p_(1) <= ... <= p_(m); reject H_(1), ..., H_(j-1), where j
    is the first index with p_(j) > alpha / (m - j + 1)."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    rejected = [False] * m
    for j, i in enumerate(order, start=1):
        if ps[i] > alpha / (m - j + 1):
            break
        rejected[i] = True
    return rejected


def test_the_t_distribution_reference_has_known_values():
    # df = 2 has a closed form, P(|T| > t) = 1 - t / sqrt(t² + 2); df = 1 is Cauchy's.
    assert t_two_sided(1.5, 2) == pytest.approx(1 - 1.5 / math.sqrt(1.5**2 + 2), abs=1e-12)
    assert t_two_sided(3.0, 1) == pytest.approx(1 - 2 / math.pi * math.atan(3.0), abs=1e-12)
    assert t_two_sided(2.1, 7.3) == pytest.approx(2 * stats.t.sf(2.1, 7.3), abs=1e-12)


def test_fewer_than_two_seeds_on_a_side_cannot_tell():
    assert math.isnan(welch_p([0.9], [0.8, 0.85]))
    assert math.isnan(welch_p([0.9, 0.91], [0.8]))
    assert math.isnan(paired_p([0.9], [0.8]))
    assert verdict(math.nan, 0.1, higher_is_better=True) == "?"


def test_no_variance():
    assert welch_p([0.9, 0.9], [0.9, 0.9, 0.9]) == 1.0
    assert welch_p([0.9, 0.9], [0.8, 0.8]) == 0.0
    assert paired_p([0.9, 0.8], [0.9, 0.8]) == 1.0
    assert paired_p([0.5, 0.75], [0.25, 0.5]) == 0.0  # every difference 0.25, exactly
    with pytest.raises(ValueError, match="3 and 2"):
        paired_p([1, 2, 3], [1, 2])


def test_welch_on_a_textbook_example():
    # Worked by hand: a has mean 20, variance 10, n 5; b has mean 10, variance 1, n 3. Then
    # s_a^2/n_a = 2, s_b^2/n_b = 1/3, t = 10 / sqrt(7/3), df = (7/3)^2 / (2^2/4 + (1/3)^2/2).
    a, b = [16, 18, 20, 22, 24], [9, 10, 11]
    t, df = 10 / math.sqrt(7 / 3), (7 / 3) ** 2 / (1 + 1 / 18)
    assert welch_p(a, b) == pytest.approx(t_two_sided(t, df), abs=1e-12)
    assert welch_p(a, b) == pytest.approx(welch_reference(a, b), abs=1e-12)
    assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)


def test_paired_on_a_worked_example():
    # d = (0.01, 0.02, 0.005): mean 7/600, sd sqrt(((-1/600)² + (5/600)² + (-4/600)²) / 2)
    # = sqrt(21) / 600, t = (7/600) / (sqrt(21)/600 / sqrt(3)) = 7 sqrt(3) / sqrt(21) = sqrt(7),
    # df = 2: p = 1 - t / sqrt(t² + 2) = 1 - sqrt(7/9).
    a, b = [0.91, 0.93, 0.92], [0.90, 0.91, 0.915]
    assert paired_p(a, b) == pytest.approx(1 - math.sqrt(7 / 9), abs=1e-9)
    assert paired_p(a, b) == pytest.approx(paired_reference(a, b), abs=1e-12)
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert paired_p(b, a) == paired_p(a, b)


@pytest.mark.parametrize("seed", range(5))
def test_both_tests_agree_with_scipy_on_random_samples(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 8)
    a = [rng.gauss(0.9, 0.01) for _ in range(n)]
    b = [x - rng.gauss(0.005, 0.01) for x in a]
    c = [rng.gauss(0.88, 0.03) for _ in range(rng.randint(2, 8))]
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    assert paired_p(a, b) == pytest.approx(paired_reference(a, b), abs=1e-9)
    assert welch_p(a, c) == pytest.approx(stats.ttest_ind(a, c, equal_var=False).pvalue, rel=1e-9)
    assert welch_p(a, c) == pytest.approx(welch_reference(a, c), abs=1e-9)


def test_compare_pairs_runs_by_seed_and_falls_back_to_welch():
    a = [(2, 0.92), (0, 0.91), (1, 0.93)]
    b = [(1, 0.91), (0, 0.90), (2, 0.915)]  # another order: matched by seed, not position
    result = compare(a, b)
    assert (result.test, result.paired) == ("paired", 3)
    assert result.p == pytest.approx(
        stats.ttest_rel([0.91, 0.93, 0.92], [0.90, 0.91, 0.915]).pvalue
    )
    assert result.diff == pytest.approx((0.91 + 0.93 + 0.92 - 0.90 - 0.91 - 0.915) / 3)
    # Only seeds 0 and 1 in common: the paired test over those two, seed 2 left out.
    partial = compare(a, [(0, 0.90), (1, 0.91), (7, 0.5)])
    assert (partial.test, partial.paired) == ("paired", 2)
    assert partial.p == pytest.approx(stats.ttest_rel([0.91, 0.93], [0.90, 0.91]).pvalue)
    # One seed in common, a repeated seed, or an unknown one: Welch over every run.
    for other in (
        [(0, 0.90), (5, 0.91), (6, 0.915)],
        [(0, 0.90), (0, 0.91), (1, 0.915)],
        [(None, 0.90), (1, 0.91), (2, 0.915)],
    ):
        result = compare(a, other)
        assert (result.test, result.paired) == ("Welch", 0), other
        welch = stats.ttest_ind([0.92, 0.91, 0.93], [v for _, v in other], equal_var=False)
        assert result.p == pytest.approx(welch.pvalue, rel=1e-12)
    assert compare(a, [(0, 0.9)]).test == "" and math.isnan(compare(a, [(0, 0.9)]).p)
    assert math.isnan(compare(a, []).p)


def test_holm_on_a_hand_computed_example():
    # m = 5 (the NaN is no test). Ordered: 0.005, 0.01, 0.03, 0.04, 0.45, times m - j + 1 =
    # 5, 4, 3, 2, 1: 0.025, 0.04, 0.09, 0.08, 0.45; running maximum: 0.025, 0.04, 0.09, 0.09, 0.45.
    ps = [0.01, 0.04, 0.03, 0.005, math.nan, 0.45]
    expected = [0.04, 0.09, 0.09, 0.025, math.nan, 0.45]
    adjusted = holm(ps)
    assert adjusted[:4] + adjusted[5:] == pytest.approx(expected[:4] + expected[5:], abs=1e-15)
    assert math.isnan(adjusted[4])
    assert holm([0.4, 0.5]) == pytest.approx([0.8, 0.8], abs=1e-15)  # 2·0.4, then max(0.8, 0.5)
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # 2·0.6 capped at 1
    assert holm([0.03]) == [0.03] and holm([]) == []
    with pytest.raises(ValueError, match="1.5"):
        holm([0.1, 1.5])


@pytest.mark.parametrize("seed", range(20))
def test_holm_rejects_what_the_step_down_rule_rejects(seed):
    rng = random.Random(seed)
    ps = [rng.choice([rng.random() * 0.06, rng.random()]) for _ in range(rng.randint(1, 12))]
    assert holm(ps) == pytest.approx(holm_reference(ps), abs=1e-15)
    for alpha in (0.01, 0.05, 0.1):
        assert [p <= alpha for p in holm(ps)] == holm_rejects(ps, alpha), (ps, alpha)


def test_holm_is_at_least_the_raw_p_and_keeps_their_order():
    ps = [0.2, 0.001, 0.04, 0.04, 0.9]
    adjusted = holm(ps)
    assert all(q >= p for p, q in zip(ps, adjusted, strict=True))
    for (p, q), (r, s) in itertools.combinations(zip(ps, adjusted, strict=True), 2):
        assert (p <= r) <= (q <= s)


def test_the_verdict_follows_the_headline_direction():
    assert verdict(0.01, diff=-0.02, higher_is_better=True) == "worse"
    assert verdict(0.01, diff=0.02, higher_is_better=True) == "better"
    assert verdict(0.01, diff=-3.0, higher_is_better=False) == "better"  # a lower loss
    assert verdict(0.01, diff=3.0, higher_is_better=False) == "worse"
    assert verdict(0.05, diff=-1, higher_is_better=True) == "tied"
    assert verdict(0.049, diff=-1, higher_is_better=True) == "worse"


def test_the_mark_names_the_test_and_the_p():
    assert mark("worse", 0.01234, "paired") == "worse (paired p 0.012)"
    assert mark("tied", 0.47, "Welch") == "tied (Welch p 0.47)"
    assert mark("best", math.nan, "") == "best" and mark("?", math.nan, "") == "?"
    assert mark("", math.nan, "") == ""

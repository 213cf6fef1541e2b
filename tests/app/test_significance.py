"""Welch's test at its edges: too few seeds, no variance, and values from a published example."""

from __future__ import annotations

import math

import pytest

from surrogate.training.significance import verdict, welch_p


def test_fewer_than_two_seeds_on_a_side_cannot_tell():
    assert math.isnan(welch_p([0.9], [0.8, 0.85]))
    assert math.isnan(welch_p([0.9, 0.91], [0.8]))
    assert verdict(math.nan, is_best=False) == "?"


def test_no_variance_on_either_side():
    assert welch_p([0.9, 0.9], [0.9, 0.9, 0.9]) == 1.0
    assert welch_p([0.9, 0.9], [0.8, 0.8]) == 0.0


def test_a_textbook_example():
    # Worked by hand: a has mean 20, variance 10, n 5; b has mean 10, variance 1, n 3. Then
    # s_a^2/n_a = 2, s_b^2/n_b = 1/3, t = 10 / sqrt(7/3), df = (7/3)^2 / (2^2/4 + (1/3)^2/2).
    a, b = [16, 18, 20, 22, 24], [9, 10, 11]
    from scipy.stats import t as student_t

    t, df = 10 / math.sqrt(7 / 3), (7 / 3) ** 2 / (1 + 1 / 18)
    assert welch_p(a, b) == pytest.approx(2 * student_t.sf(t, df), rel=1e-12)
    assert verdict(welch_p(a, b), is_best=False) == "lower"
    assert verdict(0.05, is_best=False) == "tied" and verdict(0.049, is_best=False) == "lower"
    assert verdict(math.nan, is_best=True) == "best"

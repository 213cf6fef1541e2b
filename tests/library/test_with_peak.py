"""``Estimator.with_peak(k)``: the same bump k times as tall and 1/k times as wide, checked against
each bump's parameter written here from its formula's height p(0), and against k·p(k·r)."""

from __future__ import annotations

import math

import pytest
import torch

import surrogate

# p(0) of each bump as a function of its parameter, from the formulas in the estimators' docs.
HEIGHT = {
    "atan": ("alpha", lambda a: a / 2),
    "sigmoid": ("beta", lambda b: b / 4),
    "fast_sigmoid": ("beta", lambda b: b / 2),
    "triangle": ("width", lambda w: 1 / w),
    "gaussian": ("sigma", lambda s: 1 / (s * math.sqrt(2 * math.pi))),
    "exponential": ("alpha", lambda a: a / 2),
    "clipped_ste": ("width", lambda w: 1 / (2 * w)),
}


@pytest.mark.parametrize("name", sorted(HEIGHT))
@pytest.mark.parametrize("peak", [0.25, 1.0, 3.0])
def test_the_rescaled_bump_peaks_where_asked_and_keeps_its_shape(name, peak):
    param, height = HEIGHT[name]
    scaled = surrogate.estimator(name).with_peak(peak)
    assert math.isclose(height(getattr(scaled, param)), peak, rel_tol=1e-12)
    base = surrogate.estimator(name)
    k = peak / height(getattr(base, param))
    r = torch.linspace(-3, 3, 601, dtype=torch.float64)
    torch.testing.assert_close(scaled.bump(r), k * base.bump(k * r), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("peak", [0, -1.0, math.inf, True, "2"])
def test_a_bad_peak_is_refused(peak):
    with pytest.raises(ValueError, match=r"atan: peak must be a finite number > 0"):
        surrogate.estimator("atan").with_peak(peak)


def test_a_bump_without_one_scale_parameter_is_refused():
    custom = surrogate.estimator(lambda r: torch.exp(-r.abs()) / 2)
    with pytest.raises(ValueError, match="with_peak rescales a bump of one scale parameter"):
        custom.with_peak(2.0)

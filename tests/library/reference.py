"""Independent float64 references for the scalar hard ops, written from the README's forward
conventions and estimator tables.

Nothing here imports or copies ``surrogate``: the forwards, the bumps p and their integrals P are
written out of the README's tables in NumPy/SciPy float64, so tests can hold the library to them.

Bumps (the README's estimator table, unit area, defaults chosen so that p(0) = 1; clipped_ste
has p(0) = 1/(2w)):

    clipped_ste   1[|x| <= w] / (2w)                              w = 1
    sigmoid       β·σ(βx)·(1 − σ(βx))                              β = 4
    fast_sigmoid  (β/2) / (1 + β|x|)²                              β = 2
    atan          (α/2) / (1 + (π·α·x/2)²)                         α = 2
    tanh          (β/2)·(1 − tanh²(βx))                            β = 2
    triangle      max(0, 1 − |x|/w) / w                            w = 1
    gaussian      exp(−x²/(2σ²)) / (σ√(2π))                        σ = 1/√(2π)
    exponential   (α/2)·exp(−α|x|)                                 α = 2
    swish         (β/2)·(2 − βx·tanh(βx/2)) / (1 + cosh(βx))       β = 2

The integrals P(x) = ∫_{-∞}^{x} p are derived by hand below (each is checked against a finite
difference of itself and against p in ``test_scalar_ops.py``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

DEFAULTS: dict[str, dict[str, float]] = {
    "clipped_ste": {"width": 1.0},
    "sigmoid": {"beta": 4.0},
    "fast_sigmoid": {"beta": 2.0},
    "atan": {"alpha": 2.0},
    "tanh": {"beta": 2.0},
    "triangle": {"width": 1.0},
    "gaussian": {"sigma": 1.0 / math.sqrt(2.0 * math.pi)},
    "exponential": {"alpha": 2.0},
    "swish": {"beta": 2.0},
}
"""Each bump's parameter and default, from the README's estimator table."""

BUMPS = tuple(DEFAULTS)
"""The estimators with a bump (everything but ``none`` and ``ste``)."""

JUMP = {"step": 1.0, "sign": 2.0, "round": 1.0}
"""Height J of each op's jump: the surrogate derivative is J·p(offset)."""


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Forwards (the README's forward conventions)
# ---------------------------------------------------------------------------------------------


def step(x) -> np.ndarray:
    """1 where x > 0, else 0; NaN stays NaN."""
    x = _f64(x)
    return np.where(np.isnan(x), np.nan, np.where(x > 0, 1.0, 0.0))


def sign(x) -> np.ndarray:
    """+1 where x >= 0 (so sign(-0.0) = +1), else -1; NaN stays NaN."""
    x = _f64(x)
    return np.where(np.isnan(x), np.nan, np.where(x >= 0, 1.0, -1.0))


def round_(x) -> np.ndarray:
    """Round half to even (IEEE ``rint``); keeps the sign of zero, NaN and ±inf."""
    return np.rint(_f64(x))


FORWARD = {"step": step, "sign": sign, "round": round_}


def round_offset(x) -> np.ndarray:
    """r = x − (floor(x) + 1/2), the signed distance to the rounding boundary; ±inf stays ±inf."""
    x = _f64(x)
    with np.errstate(invalid="ignore"):
        r = (x - np.floor(x)) - 0.5  # x − floor(x) is exact; x − (floor(x) + 0.5) is not for big x
    return np.where(np.isinf(x), x, r)


def offset(op: str, x) -> np.ndarray:
    return round_offset(x) if op == "round" else _f64(x)


# ---------------------------------------------------------------------------------------------
# Bumps p and their integrals P
# ---------------------------------------------------------------------------------------------


def _param(name: str, params: dict) -> float:
    (key,) = DEFAULTS[name]
    return float(params.get(key, DEFAULTS[name][key]))


def bump(name: str, x, **params) -> np.ndarray:
    """p(x) of the estimator ``name`` in float64 (NaN in, NaN out; 0 at ±inf)."""
    x = _f64(x)
    a = _param(name, params)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if name == "clipped_ste":
            out = np.where(np.abs(x) <= a, 1.0 / (2.0 * a), 0.0)
            return np.where(np.isnan(x), np.nan, out)
        if name == "sigmoid":
            s = special.expit(a * x)
            return a * s * special.expit(-a * x)  # 1 − σ(y) = σ(−y), exact in the tails
        if name == "fast_sigmoid":
            return (a / 2.0) / (1.0 + a * np.abs(x)) ** 2
        if name == "atan":
            return (a / 2.0) / (1.0 + (math.pi * a * x / 2.0) ** 2)
        if name == "tanh":
            return (a / 2.0) / np.cosh(a * x) ** 2  # 1 − tanh² = sech², exact in the tails
        if name == "triangle":
            out = np.maximum(0.0, 1.0 - np.abs(x) / a) / a
            return np.where(np.isnan(x), np.nan, out)
        if name == "gaussian":
            return np.exp(-(x**2) / (2.0 * a**2)) / (a * math.sqrt(2.0 * math.pi))
        if name == "exponential":
            return (a / 2.0) * np.exp(-a * np.abs(x))
        if name == "swish":
            y = a * x
            out = (a / 2.0) * (2.0 - y * np.tanh(y / 2.0)) / (1.0 + np.cosh(y))
            return np.where(np.abs(y) > 1400.0, 0.0, out)  # every term underflowed: the limit 0
    raise KeyError(name)


def integral(name: str, x, **params) -> np.ndarray:
    """P(x) = ∫_{-∞}^{x} p of the estimator ``name`` in float64; P(-inf) = 0, P(+inf) = 1."""
    x = _f64(x)
    a = _param(name, params)
    ax = np.abs(x)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if name == "clipped_ste":
            out = np.clip((x + a) / (2.0 * a), 0.0, 1.0)
        elif name == "sigmoid":
            out = special.expit(a * x)
        elif name == "fast_sigmoid":
            half_tail = 0.5 / (1.0 + a * ax)  # ∫_{|x|}^{∞} p
            out = np.where(x < 0, half_tail, 1.0 - half_tail)
        elif name == "atan":
            out = 0.5 + np.arctan(math.pi * a * x / 2.0) / math.pi
        elif name == "tanh":
            out = (1.0 + np.tanh(a * x)) / 2.0
        elif name == "triangle":
            u = np.minimum(ax / a, 1.0)
            half_tail = (1.0 - u) ** 2 / 2.0
            out = np.where(x < 0, half_tail, 1.0 - half_tail)
        elif name == "gaussian":
            out = special.ndtr(x / a)
        elif name == "exponential":
            half_tail = np.exp(-a * ax) / 2.0
            out = np.where(x < 0, half_tail, 1.0 - half_tail)
        elif name == "swish":
            # p = (β/2)·(2 − y·tanh(y/2))/(1 + cosh y), y = βx; with 1 + cosh y = 2cosh²(y/2):
            # P = (1 + tanh(y/2))/2 + y/(2(1 + cosh y)), whose derivative in x is p.
            y = a * x
            out = (1.0 + np.tanh(y / 2.0)) / 2.0 + y / (2.0 * (1.0 + np.cosh(y)))
            out = np.where(np.abs(y) > 1400.0, (1.0 + np.sign(y)) / 2.0, out)
        else:
            raise KeyError(name)
    return np.where(np.isnan(x), np.nan, out)


def surrogate_grad(op: str, name: str, x, g, **params) -> np.ndarray:
    """The backward of the README's estimator table: g·J·p(offset(x)); ``ste`` passes g, ``none``
    gives 0."""
    g = _f64(g)
    if name == "none":
        return np.zeros_like(g)
    if name == "ste":
        return g.copy()
    return g * JUMP[op] * bump(name, offset(op, x), **params)


def relaxed(op: str, name: str, x, **params) -> np.ndarray:
    """The relaxed forward: P(x) for step, 2P(x) − 1 for sign, floor(x) + P(r) for round."""
    x = _f64(x)
    if op == "step":
        return integral(name, x, **params)
    if op == "sign":
        return 2.0 * integral(name, x, **params) - 1.0
    with np.errstate(invalid="ignore"):
        return np.floor(x) + integral(name, round_offset(x), **params)

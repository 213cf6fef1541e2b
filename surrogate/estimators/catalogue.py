"""The catalogue: estimators looked up by name, built with checked parameters, matched to an op.

``available(op)`` lists the names that apply to an op (``available()``: every name);
``estimator(name, **params)`` builds one; ``resolve(op, spec, params, relaxed)`` is what every hard
op calls on what a user passed: a name, an :class:`Estimator`, or a callable bump p (a
:class:`Custom` estimator). Every refusal is a ``ValueError`` naming the bad value and the valid
choices.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# isort: off
# Registration order is the order `available()` lists: the shared ones, the bumps, then argmax's.
from surrogate.estimators import common, bumps, argmax  # noqa: F401

# isort: on
from surrogate.estimators.base import ARGMAX_OPS, OPS, REGISTRY, Estimator
from surrogate.estimators.bumps import Custom


def check_op(op: str) -> None:
    """Refuse an op name that is not one of ``OPS``."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; choose one of: {', '.join(OPS)}")


def available(op: str | None = None) -> tuple[str, ...]:
    """Names of the estimators that apply to ``op`` ('step', 'sign', 'round' or 'argmax'), in the
    order they were registered; with no ``op``, every registered name."""
    if op is None:
        return tuple(REGISTRY)
    check_op(op)
    return tuple(name for name, cls in REGISTRY.items() if op in cls.ops)


def parameters(name: str) -> dict[str, float | int]:
    """The parameters of the estimator called ``name`` with their defaults; a default's type
    (``int`` or ``float``) is the parameter's (``perturbed``'s ``samples`` is an int)."""
    return {f.name: f.default for f in dataclasses.fields(_lookup(name))}  # type: ignore[misc]


def _lookup(name: str) -> type[Estimator]:
    if name not in REGISTRY:
        raise ValueError(f"unknown estimator {name!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def _check_names(name: str, known: tuple[str, ...], params: dict) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes no parameters"
        raise ValueError(f"{name}: unknown parameter {unknown[0]!r}; {name} {takes}")


def estimator(spec: str | Estimator | Any = "ste", /, **params: Any) -> Estimator:
    """Build an estimator from its name and parameters, e.g. ``estimator("sigmoid", beta=8.0)``.

    An :class:`Estimator` is returned as it is (with ``params`` replaced, if any); a callable ``p``
    becomes a custom bump (see :class:`surrogate.estimators.bumps.Custom`).
    """
    if isinstance(spec, Estimator):
        _check_names(spec.name, tuple(f.name for f in dataclasses.fields(spec)), params)
        return dataclasses.replace(spec, **params) if params else spec
    if isinstance(spec, str):
        cls = _lookup(spec)
        _check_names(spec, cls.param_names, params)
        return cls(**params)
    if callable(spec):
        return Custom(spec, **params)
    raise ValueError(
        f"estimator must be a name, an Estimator or a callable bump, got {spec!r}; "
        f"names: {', '.join(REGISTRY)}"
    )


def resolve(op: str, spec: str | Estimator | Any, params: dict, relaxed: bool = False) -> Estimator:
    """The estimator ``spec`` for ``op``, refused with a ValueError if it does not apply."""
    check_op(op)
    if isinstance(spec, str) and spec not in REGISTRY:
        choices = ", ".join(available(op))
        raise ValueError(f"unknown estimator {spec!r} for {op}; choose one of: {choices}")
    if not isinstance(spec, (str, Estimator)) and not callable(spec):
        kinds = "a name or an Estimator" if op in ARGMAX_OPS else "a name, an Estimator or a bump"
        raise ValueError(
            f"estimator for {op} must be {kinds}, got {spec!r}; "
            f"choose one of: {', '.join(available(op))}"
        )
    est = estimator(spec, **params)
    if op not in est.ops:
        choices = ", ".join(available(op))
        raise ValueError(f"estimator {est.name!r} does not apply to {op}; choose one of: {choices}")
    if relaxed and not est.relaxable:
        smooth = [n for n in available(op) if REGISTRY[n].relaxable]
        raise ValueError(
            f"relaxed {op} needs an estimator with a smooth forward, {est.name!r} has none; "
            f"choose one of: {', '.join(smooth)}"
        )
    return est

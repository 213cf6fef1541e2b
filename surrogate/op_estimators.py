"""Which estimator each hard op uses: ``{op: spec}`` parsed into ``{op: OpEstimator}``.

One parser for every place that names estimators per op: ``surrogate.swap``,
``surrogate.intercept``, and the training app's config group ``op``. A spec is any of

- what ``surrogate.step`` and friends take: a name, an ``Estimator``, or (step, sign, round) a
  callable bump p; the op then runs hard;
- an ``(estimator, relaxed)`` pair;
- a config node ``{"name": "sigmoid", "relaxed": False, "beta": 8.0}``, where a parameter set to
  ``None`` takes the estimator's default;
- ``None``: the op is not named.

Everything is checked before anything is done: a bad op, estimator or parameter raises a
ValueError that starts with where it was found (``swap.sign:``, ``op.step:``) and names the valid
choices. An op's choice is an ``OpEstimator(estimator, relaxed)``, a named pair that unpacks as
``est, relaxed = choice``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from surrogate.estimators import Estimator, resolve
from surrogate.estimators.base import OPS
from surrogate.estimators.catalogue import check_op

NODE_KEYS = ("name", "relaxed")  # a config node's keys that are not estimator parameters


class OpEstimator(NamedTuple):
    """One op's estimator and whether the op runs relaxed (its smooth forward) or hard."""

    estimator: Estimator
    relaxed: bool

    def describe(self) -> dict[str, Any]:
        """``{"name": ..., <each parameter>: value, "relaxed": ...}``, plain values (for logs)."""
        est = self.estimator
        params = {name: getattr(est, name) for name in est.param_names}
        return {"name": est.name, **params, "relaxed": self.relaxed}

    def summary(self) -> str:
        """``estimator('atan', alpha=2.0)``, with `` (relaxed)`` where relaxed (for messages)."""
        return f"{self.estimator!r}" + (" (relaxed)" if self.relaxed else "")


def parse_spec(op: str, spec: Any) -> OpEstimator:
    """The ``OpEstimator`` of one op from one spec (see the module docstring)."""
    name, relaxed, params = spec, False, {}
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], bool):
        name, relaxed = spec
    elif isinstance(spec, Mapping):
        name, relaxed = spec.get("name"), bool(spec.get("relaxed", False))
        params = {k: v for k, v in spec.items() if k not in NODE_KEYS and v is not None}
    return OpEstimator(resolve(op, name, params, relaxed), relaxed)


def parse_ops(ops: Mapping[str, Any], where: str, default: Any = None) -> dict[str, OpEstimator]:
    """``{op: OpEstimator}`` for the ops that ``ops`` names, in the order of ``OPS``.

    ``where`` prefixes every error message; ``default``, if not None, is the spec of the ops that
    ``ops`` leaves out (so the result has all four).
    """
    for op in ops:
        try:
            check_op(op)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    parsed = {}
    for op in OPS:
        spec = ops.get(op)
        if spec is None:
            spec = default
        if spec is None:
            continue
        try:
            parsed[op] = parse_spec(op, spec)
        except ValueError as err:
            raise ValueError(f"{where}.{op}: {err}") from None
    return parsed


def summary(estimators: Mapping[str, OpEstimator]) -> str:
    """``op=estimator(...)`` per op, ``(relaxed)`` where relaxed, comma-separated (for messages);
    an op's choice may also be a plain ``(estimator, relaxed)`` pair, as in ``describe``."""
    return ", ".join(f"{op}={OpEstimator(*choice).summary()}" for op, choice in estimators.items())


def describe(estimators: Mapping[str, OpEstimator]) -> dict[str, dict[str, Any]]:
    """Each op's estimator with all of its parameters, as plain values (for metrics and logs)."""
    return {op: OpEstimator(*choice).describe() for op, choice in estimators.items()}

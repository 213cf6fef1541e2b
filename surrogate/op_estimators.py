"""Which estimator each hard op uses: ``{op: spec}`` parsed into ``{op: (estimator, relaxed)}``.

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
choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from surrogate.estimators import Estimator, resolve
from surrogate.estimators.base import OPS
from surrogate.estimators.catalogue import check_op

NODE_KEYS = ("name", "relaxed")  # a config node's keys that are not estimator parameters


def parse_spec(op: str, spec: Any) -> tuple[Estimator, bool]:
    """``(estimator, relaxed)`` for one op from one spec (see the module docstring)."""
    name, relaxed, params = spec, False, {}
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], bool):
        name, relaxed = spec
    elif isinstance(spec, Mapping):
        name, relaxed = spec.get("name"), bool(spec.get("relaxed", False))
        params = {k: v for k, v in spec.items() if k not in NODE_KEYS and v is not None}
    return resolve(op, name, params, relaxed), relaxed


def parse_ops(
    ops: Mapping[str, Any], where: str, default: Any = None
) -> dict[str, tuple[Estimator, bool]]:
    """``{op: (estimator, relaxed)}`` for the ops that ``ops`` names, in the order of ``OPS``.

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


def summary(estimators: Mapping[str, tuple[Estimator, bool]]) -> str:
    """``op=estimator(...)`` per op, ``(relaxed)`` where relaxed, comma-separated (for messages)."""
    return ", ".join(
        f"{op}={est!r}" + (" (relaxed)" if relaxed else "")
        for op, (est, relaxed) in estimators.items()
    )


def describe(estimators: Mapping[str, tuple[Estimator, bool]]) -> dict[str, dict[str, Any]]:
    """Each op's estimator with all of its parameters, as plain values (for metrics and logs)."""
    out = {}
    for op, (est, relaxed) in estimators.items():
        params = {name: getattr(est, name) for name in est.param_names}
        out[op] = {"name": est.name, **params, "relaxed": relaxed}
    return out

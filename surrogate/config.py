"""Plain-dict configuration of the hard ops: ``{"step": {"name": "atan", "alpha": 2.0}, ...}``.

This is the shape of the Hydra group ``op`` once resolved to a dict; the training code and the
checkpoints use it as plain values. No Hydra here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from surrogate.estimators import Estimator, resolve
from surrogate.estimators.base import OPS


def estimator_from_node(op: str, node: Mapping[str, Any]) -> tuple[Estimator, bool]:
    """``(estimator, relaxed)`` for ``op`` from ``{"name": ..., "relaxed": ..., **params}``.

    Parameters set to ``None`` take the library's default. Errors are ValueErrors that start with
    ``op.<op>:`` so they point at the config key.
    """
    params = {k: v for k, v in node.items() if k not in ("name", "relaxed") and v is not None}
    relaxed = bool(node.get("relaxed", False))
    try:
        return resolve(op, node.get("name"), params, relaxed), relaxed
    except ValueError as err:
        raise ValueError(f"op.{op}: {err}") from None


def estimators_from_config(
    ops: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[Estimator, bool]]:
    """Every op's ``(estimator, relaxed)``; ops missing from ``ops`` use ``ste``."""
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        raise ValueError(f"op: unknown op {unknown[0]!r}; choose from {', '.join(OPS)}")
    return {op: estimator_from_node(op, ops.get(op, {"name": "ste"})) for op in OPS}


def describe(estimators: Mapping[str, tuple[Estimator, bool]]) -> dict[str, dict[str, Any]]:
    """Each op's estimator with all of its parameters, as plain values (for metrics and logs)."""
    out = {}
    for op, (est, relaxed) in estimators.items():
        params = {name: getattr(est, name) for name in est.param_names}
        out[op] = {"name": est.name, **params, "relaxed": relaxed}
    return out

"""``surrogate.swap(model, sign="atan")``: set the estimator of each surrogate module of a model.

The module is callable: ``surrogate.swap(...)`` calls ``surrogate.swap.swap`` (see
``surrogate.callable_module``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from surrogate.callable_module import make_callable
from surrogate.modules import HardOp
from surrogate.op_estimators import parse_ops


def swap(
    model: nn.Module,
    *,
    step: Any = None,
    sign: Any = None,
    round: Any = None,  # noqa: A002  (the op is called round)
    argmax: Any = None,
    **unknown: Any,
) -> int:
    """Set the estimator of every ``surrogate.Step``/``Sign``/``Round``/``ArgMax`` in ``model``.

    Each keyword names the new estimator of that op (see ``surrogate.op_estimators``); ops left
    out keep theirs. A bare estimator makes the modules hard (``relaxed=False``); an
    ``(estimator, relaxed)`` pair (an ``OpEstimator``) or a config node sets both. Returns how
    many modules it changed: modules already set that way are not counted. Plain torch ops
    (``torch.sign``) are not modules; for them use ``surrogate.intercept``.
    """
    ops = {"step": step, "sign": sign, "round": round, "argmax": argmax, **unknown}
    named = parse_ops(ops, "swap")
    if not isinstance(model, nn.Module):
        raise TypeError(f"swap: model must be a torch.nn.Module, got {type(model).__name__}")
    changed = 0
    for module in model.modules():
        if not isinstance(module, HardOp) or module.op_name not in named:
            continue
        est, relaxed = named[module.op_name]
        if module.estimator == est and module.relaxed == relaxed:
            continue
        module.relaxed = False  # always valid; the estimator is then checked against `relaxed`
        module.estimator = est
        module.relaxed = relaxed
        changed += 1
    return changed


make_callable(__name__)

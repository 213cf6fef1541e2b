"""Set the estimator of every surrogate module in a model: ``surrogate.swap(model, sign="atan")``.

Also holds ``resolve_ops``, the checking of the op keywords that ``swap`` and ``intercept`` share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from surrogate.estimators import Estimator, available, resolve
from surrogate.estimators.base import OPS
from surrogate.modules import HardOp


def resolve_ops(owner: str, ops: Mapping[str, Any]) -> dict[str, tuple[Estimator, bool]]:
    """``{op: (estimator, relaxed)}`` for every op named in ``ops`` (``None`` names none).

    A value is what ``surrogate.step`` and friends take (a name, an ``Estimator``, or for step,
    sign and round a callable bump p), an ``(estimator, relaxed)`` pair as
    ``surrogate.config.estimators_from_config`` returns, or a config node
    ``{"name": ..., "relaxed": ..., <params>}`` as in ``configs/op/*.yaml``. Everything is checked
    before anything is done: a bad op or estimator raises a ValueError naming it and the valid
    choices.
    """
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ValueError(f"{owner}: unknown op {unknown[0]!r}; choose from {', '.join(OPS)}")
    resolved = {}
    for op, spec in ops.items():
        if spec is None:
            continue
        name, relaxed, params = spec, False, {}
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], bool):
            name, relaxed = spec
        if isinstance(spec, Mapping):  # as estimator_from_node: None takes the default
            name, relaxed = spec.get("name"), bool(spec.get("relaxed", False))
            params = {
                k: v for k, v in spec.items() if k not in ("name", "relaxed") and v is not None
            }
        if isinstance(name, str) and all(name not in available(o) for o in OPS):
            raise ValueError(
                f"{owner}: unknown estimator {name!r} for {op}; "
                f"choose one of: {', '.join(available(op))}"
            )
        try:
            resolved[op] = (resolve(op, name, params, relaxed), relaxed)
        except ValueError as err:
            raise ValueError(f"{owner}: {op}: {err}") from None
    return resolved


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

    Each keyword names the new estimator of that op (see ``resolve_ops``); ops left out keep
    theirs. A bare estimator makes the modules hard (``relaxed=False``); an
    ``(estimator, relaxed)`` pair or a config node sets both. Returns how many modules it changed:
    modules already set that way are not counted. Plain torch ops (``torch.sign``) are not modules;
    for them use ``surrogate.intercept``.
    """
    ops = {"step": step, "sign": sign, "round": round, "argmax": argmax, **unknown}
    named = resolve_ops("swap", ops)
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

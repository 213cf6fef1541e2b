"""The config group ``schedule`` as a ``surrogate.EstimatorSchedule`` for one run.

    schedule:
      relaxed_until_epoch: 10          # or null
      params:                          # {op or all: {parameter: Schedule's fields}}
        all: {beta: {kind: exponential, start: 1.0, end: 16.0, unit: epoch}}

A schedule's ``length`` left null spans the whole run in its unit: ``epochs`` epochs or ``steps``
training steps.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from surrogate import EstimatorSchedule, parse_ops


def build_schedule(
    ops: Mapping[str, Any],
    schedule: Mapping[str, Any] | None,
    epochs: int | None = None,
    steps: int | None = None,
    layer_params: Collection[str] = (),
) -> EstimatorSchedule:
    """The estimators of ``ops`` (the config group ``op``) over time, as ``schedule`` says, for a
    run of ``epochs`` epochs and ``steps`` training steps (None: not known yet; the schedule is
    checked as far as it can be without them). ``layer_params``: the parameters of the
    ``op.layers`` entries' estimators; an ``all`` schedule of one that no op's estimator has is
    theirs alone."""
    schedule = schedule or {}
    params = {
        op: {name: _with_length(node, epochs or 1, steps or 1) for name, node in named.items()}
        for op, named in (schedule.get("params") or {}).items()
    }
    if params.get("all") and layer_params:
        own = {p for c in parse_ops(ops, "op").values() for p in c.estimator.param_names}
        params["all"] = {
            k: v for k, v in params["all"].items() if k in own or k not in layer_params
        }
        if not params["all"]:
            del params["all"]
    relaxed = schedule.get("relaxed_until_epoch")
    try:
        built = EstimatorSchedule(ops, params, relaxed)
    except (TypeError, ValueError) as err:
        message = str(err)
        if message.startswith("EstimatorSchedule."):
            raise ValueError("schedule." + message.removeprefix("EstimatorSchedule.")) from None
        raise ValueError(f"schedule: {message.removeprefix('EstimatorSchedule: ')}") from None
    if epochs is not None and relaxed is not None and relaxed >= epochs:
        raise ValueError(
            f"schedule.relaxed_until_epoch: {relaxed} leaves no hard epoch in a run of "
            f"trainer.max_epochs={epochs}; choose 1 to {epochs - 1}, or more epochs"
            if epochs > 1
            else f"schedule.relaxed_until_epoch: {relaxed} leaves no hard epoch in a run of "
            "trainer.max_epochs=1; train at least 2 epochs"
        )
    return built


def _with_length(node: Any, epochs: int, steps: int) -> Any:
    """The node without its null fields, and with the run's length where it takes one (anything
    but a mapping is left for ``EstimatorSchedule`` to refuse)."""
    if not isinstance(node, Mapping):
        return node
    node = {k: v for k, v in node.items() if v is not None}
    if node.get("kind") in ("linear", "cosine", "exponential") and "length" not in node:
        node["length"] = steps if node.get("unit") == "step" else epochs
    return node


def layer_schedule(
    layer, schedule: Mapping[str, Any] | None, epochs: int | None = None, steps: int | None = None
) -> EstimatorSchedule:
    """The estimator of one hard-op layer with an ``op.layers`` entry (a ``HardLayer``) over time:
    the schedule's parameters for its op (``all``'s, then the op's own) that its estimator has,
    and the relaxed phase."""
    schedule = dict(schedule or {})
    own = layer.choice.estimator.param_names
    params = {**(schedule.get("params") or {}).get("all", {})}
    params.update((schedule.get("params") or {}).get(layer.op, {}))
    kept = {name: node for name, node in params.items() if name in own}
    schedule["params"] = {layer.op: kept} if kept else {}
    try:
        return build_schedule({layer.op: layer.choice}, schedule, epochs, steps)
    except ValueError as err:
        raise ValueError(f"{layer.rule.where} ({layer.path}): {err}") from None

"""The config group ``op``, parsed once at the start of a run (:class:`HardOpConfig`).

    op:
      step: {name: atan}                  # each op's estimator: name, relaxed, parameters
      sign: {name: atan}
      round: {name: atan}
      argmax: {name: softmax}
      layers:                             # per layer, by a glob over its module path
        - {match: "features.3", name: ste}
      reference: false                    # a reference configuration in a sweep's report
      peak: null                          # k: every smooth estimator's bump rescaled to p(0) = k

A hard-op layer is a ``surrogate.HardOp`` module of the network (``surrogate.Step``, ``Sign``,
``Round``, ``ArgMax``), named by its path in it (``features.3``), the name the diagnostics and
``metrics.json``'s ``layer_estimators`` use. It takes the estimator of the last ``layers`` entry
whose ``match`` (``fnmatch``: ``*``, ``?``, ``[...]``) matches its path, else its op's. An entry
that matches no hard-op layer is an error that lists them.

``peak`` rescales the bump of every op's smooth estimator (``surrogate.Estimator.with_peak``) to
the height p(0) = k, k times as tall and 1/k times as wide as at its default, so one sweep of
``op.peak`` compares shapes at equal scales; estimators without a bump (``ste``, ``none``, the
argmax ones) and the ``layers`` entries are left as they are.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from surrogate import HardOp, OpEstimator, available, parameters, parse_ops, swap

NODE_KEYS = ("layers", "reference", "peak")  # keys of the op node that are not ops


@dataclass(frozen=True)
class LayerRule:
    """One entry of ``op.layers``: a glob over module paths and an estimator node."""

    index: int
    match: str
    node: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"op.layers[{self.index}]"

    def choice(self, op: str, path: str) -> OpEstimator:
        """The entry's estimator for the ``op`` layer at ``path``, checked by the library."""
        try:
            return parse_ops({op: self.node}, self.where)[op]
        except ValueError as err:
            message = str(err).removeprefix(f"{self.where}.{op}: ")
            raise ValueError(f"{self.where} ({path}, {op}): {message}") from None


@dataclass(frozen=True)
class HardLayer:
    """A hard-op layer of a network and the estimator the op config gives it."""

    path: str
    module: HardOp
    choice: OpEstimator
    rule: LayerRule | None  # None: its op's estimator

    @property
    def op(self) -> str:
        return self.module.op_name

    def describe(self) -> dict[str, Any]:
        return describe_layer(self.op, self.choice)


def describe_layer(op: str, choice: OpEstimator) -> dict[str, Any]:
    """A hard-op layer's estimator as plain values: ``{op, name, relaxed, <parameters>}`` (what
    ``metrics.json`` and checkpoints record of each layer)."""
    described = choice.describe()
    head = {"op": op, "name": described.pop("name"), "relaxed": described.pop("relaxed")}
    return {**head, **described}


def hard_op_modules(net: nn.Module) -> list[tuple[str, HardOp]]:
    """``(path, module)`` of every ``surrogate.HardOp`` in ``net``, in ``named_modules`` order."""
    return [(path, m) for path, m in net.named_modules() if isinstance(m, HardOp)]


@dataclass(frozen=True)
class HardOpConfig:
    """The op config parsed: each op's estimator (``ops``), the per-layer rules (``layers``) and
    whether the configuration is a reference (``reference``)."""

    ops: dict[str, OpEstimator]
    layers: tuple[LayerRule, ...] = ()
    reference: bool = False

    @classmethod
    def parse(cls, node: Mapping[str, Any], default: Any = "ste") -> HardOpConfig:
        """Parse the op node; ops it leaves out take ``default`` (None: left alone)."""
        ops = {k: v for k, v in node.items() if k not in NODE_KEYS}
        parsed = parse_ops(ops, "op", default=default)
        if node.get("peak") is not None:
            parsed = {op: _with_peak(op, choice, node["peak"]) for op, choice in parsed.items()}
        return cls(parsed, _parse_layers(node.get("layers") or []), bool(node.get("reference")))

    def hard_layers(self, net: nn.Module) -> list[HardLayer]:
        """Every hard-op layer of ``net`` with the estimator the config gives it; ValueError for
        an ``op.layers`` entry that matches none of them or whose estimator does not fit."""
        found = hard_op_modules(net)
        matched = {rule.index: False for rule in self.layers}
        layers = []
        for path, module in found:
            op = module.op_name
            hits = [r for r in self.layers if fnmatch.fnmatchcase(path, r.match)]
            matched.update((r.index, True) for r in hits)
            rule = hits[-1] if hits else None  # the last matching entry wins
            choice = self.ops[op] if rule is None else rule.choice(op, path)
            layers.append(HardLayer(path, module, choice, rule))
        for rule in self.layers:
            if not matched[rule.index]:
                raise ValueError(
                    f"{rule.where}: match {rule.match!r} matches no hard-op layer; "
                    + describe_layers(found)
                )
        return layers

    def apply(self, net: nn.Module) -> list[HardLayer]:
        """Set every hard-op layer of ``net`` to its estimator (no schedule); the layers."""
        layers = self.hard_layers(net)
        for layer in layers:
            swap(layer.module, **{layer.op: layer.choice})
        return layers

    def layer_params(self) -> set[str]:
        """The parameters of the ``op.layers`` entries' estimators."""
        names = {rule.node["name"] for rule in self.layers}
        return {p for name in names if name in available() for p in parameters(name)}

    def summary(self) -> str:
        """Each op's estimator, for messages: ``step=estimator('atan', alpha=2.0), ...``."""
        return ", ".join(f"{op}={choice.summary()}" for op, choice in self.ops.items())

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each op's estimator with all of its parameters, as plain values."""
        return {op: choice.describe() for op, choice in self.ops.items()}


def check_swap(
    method: str, net: nn.Module, layers: Sequence[HardLayer], reference: bool = False
) -> None:
    """Refuse ``model.apply_estimators=swap`` on a network without surrogate's modules, unless
    the op config is a reference (``op=float`` builds a float twin: no hard op is left)."""
    if method == "swap" and not layers and not reference:
        raise ValueError(
            "model.apply_estimators 'swap' finds no surrogate.Step/Sign/Round/ArgMax module "
            f"in {type(net).__name__}; for plain torch ops use 'intercept'"
        )


def describe_layers(found: Sequence[tuple[str, HardOp]]) -> str:
    if not found:
        return (
            "the network has no surrogate hard-op module (surrogate.Step, Sign, Round, ArgMax) "
            "to match; plain torch ops under model.apply_estimators=intercept have no layer names"
        )
    return "the layers are: " + ", ".join(f"{path} ({m.op_name})" for path, m in found)


def _with_peak(op: str, choice: OpEstimator, peak: Any) -> OpEstimator:
    """``choice`` with its bump rescaled to p(0) = ``peak``; as it is if it has no bump."""
    rescale = getattr(choice.estimator, "with_peak", None)
    if rescale is None:
        return choice
    try:
        return OpEstimator(rescale(peak), choice.relaxed)
    except ValueError as err:
        raise ValueError(f"op.peak ({op}): {err}") from None


def _parse_layers(entries: Any) -> tuple[LayerRule, ...]:
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ValueError(f"op.layers: must be a list of {{match: ..., name: ...}}, got {entries!r}")
    rules = []
    for index, entry in enumerate(entries):
        where = f"op.layers[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: must be a mapping {{match: ..., name: ...}}, got {entry!r}")
        match = entry.get("match")
        if not isinstance(match, str) or not match:
            raise ValueError(
                f"{where}: match must be a glob over module paths (e.g. 'features.3'), "
                f"got {match!r}"
            )
        if entry.get("name") is None:
            raise ValueError(f"{where}: name must be an estimator's name, got None")
        node = {k: v for k, v in entry.items() if k != "match"}
        rules.append(LayerRule(index, match, node))
    return tuple(rules)

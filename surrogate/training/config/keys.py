"""Every key of the config checked against the schema before anything runs.

Hydra's ``+`` adds a key the YAML does not have (``+trainer.max_epoch=3``), and Hydra suggests it
for a key it does not know; a typo so added would pass the composition and fail later, inside
Lightning. Here each node typed by a schema dataclass (``schema.TrainConfig``; ``model`` by the
chosen network's own config) is refused a key its dataclass lacks, naming the nearest valid one.
Free-form nodes take any key: a custom network's ``model.net`` (its keyword arguments), the
entries of ``op.layers`` (checked by the library) and ``schedule.params``.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any

from surrogate.training.config.schema import TrainConfig
from surrogate.training.models import MODELS

TOP_LEVEL_EXTRA = ("hydra",)  # keys of the composed config that the schema leaves to Hydra


def check_keys(config: Mapping[str, Any]) -> None:
    """Refuse a key that no schema dataclass has (ValueError naming it and the nearest valid
    key), anywhere in ``config`` (a plain config, or the part of one that is at hand)."""
    _check(config, TrainConfig, "", TOP_LEVEL_EXTRA)


def _check(node: Mapping[str, Any], schema: type, where: str, extra: tuple[str, ...] = ()) -> None:
    types = typing.get_type_hints(schema)
    valid = [f.name for f in dataclasses.fields(schema)]
    for key, value in node.items():
        if key in extra:
            continue
        if key not in types:
            raise ValueError(_unknown(where, str(key), valid, schema, node))
        sub = _schema_of(where + key, types[key], value)
        if sub is not None and isinstance(value, Mapping):
            _check(value, sub, f"{where}{key}.")


def _schema_of(key: str, kind: Any, value: Any) -> type | None:
    """The dataclass that types the node at ``key``, or None for a free-form node."""
    if key == "model":  # typed by the chosen network's config
        entry = MODELS.get(value.get("name")) if isinstance(value, Mapping) else None
        return entry.config if entry is not None else None
    return kind if dataclasses.is_dataclass(kind) else None


def _unknown(where: str, key: str, valid: list[str], schema: type, node: Mapping) -> str:
    name = where.rstrip(".") or "the config"
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.0)
    hint = f"; did you mean {where}{near[0]}?" if near else ""
    keys = f"(the keys of {name}: {', '.join(k for k in valid if k != 'surrogate')})"
    if where == "model.":  # as the network's own config words it (models.Model.typed)
        return f"model.{key} ({node['name']}): Key '{key}' not in '{schema.__name__}'{hint} {keys}"
    return f"{where}{key}: no such key in {name}{hint} {keys}"

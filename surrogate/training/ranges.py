"""The valid range of every number in the config, checked before a run writes anything.

``RANGES`` holds one entry per numeric key of the schema, and a model's keys are ranged in its own
config's dataclass, each field's ``metadata["range"]`` (:func:`field_ranges`; a test walks the
schema, every model's config and the composed config so that a key added later cannot be
forgotten); the estimators' own parameters are checked
by the library (a finite number above a bound) and here once more for what the library cannot
know: that the run computes in float32, where a large ``beta`` overflows
(:func:`check_estimators_in_float32`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch

import surrogate
from surrogate import OpEstimator


@dataclass(frozen=True)
class Range:
    """A finite number (an integer if ``integer``) in ``[low, high]``; ``low_open``/``high_open``
    exclude an end; ``nullable`` also allows null; ``fraction_or_count`` also allows an integer
    count >= 0 (Lightning's ``limit_*_batches``: a float fraction or a number of batches)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    nullable: bool = False
    batches_from: int | None = None

    def contains(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return False
        if self.batches_from is not None and isinstance(value, int):
            return value >= self.batches_from
        if not math.isfinite(value) or (self.integer and not float(value).is_integer()):
            return False
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return low_ok and high_ok

    def __str__(self) -> str:
        def num(v: float) -> str:
            return str(int(v)) if float(v).is_integer() else f"{v:g}"

        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            where = f"in {'(' if self.low_open else '['}{num(self.low)}, {num(self.high)}"
            where += ")" if self.high_open else "]"
        elif self.low is not None:
            where = f"{'>' if self.low_open else '>='} {num(self.low)}"
        else:
            where = f"{'<' if self.high_open else '<='} {num(self.high)}"
        extra = ""
        if self.batches_from is not None:
            extra = f" or an integer number of batches >= {self.batches_from}"
        return f"{kind} {where}{extra}{' or null' if self.nullable else ''}"


SEED = Range(0, 2**32 - 1, integer=True)  # numpy's and torch's seed range
COUNT = Range(1, integer=True)
FRACTION = Range(0, 1, low_open=True, high_open=True)
BATCHES = Range(0, 1, batches_from=0)

RANGES: dict[str, Range] = {
    "seed": SEED,
    "threads": Range(0, integer=True),
    "op.peak": Range(0, low_open=True, nullable=True),
    "data.batch_size": COUNT,
    "data.val_fraction": FRACTION,
    "data.test_fraction": Range(0, 1, high_open=True),  # 0: the data set has its own test split
    "data.split_seed": SEED,
    "data.num_workers": Range(0, integer=True),
    "data.train_subset": Range(1, integer=True, nullable=True),
    "data.image_size": Range(1, integer=True, nullable=True),
    # The spike data sets' keys (data=randman, data=shd), null where the data set does not read
    # them; the reader refuses null for a key it reads.
    "data.units": Range(1, integer=True, nullable=True),
    "data.classes": Range(2, integer=True, nullable=True),
    "data.steps": Range(1, integer=True, nullable=True),
    "data.manifold_dim": Range(1, integer=True, nullable=True),
    "data.smoothness": Range(0, nullable=True),
    "data.samples_per_class": Range(1, integer=True, nullable=True),
    "data.generator_seed": Range(0, 2**32 - 1, integer=True, nullable=True),
    "data.time_steps": Range(1, integer=True, nullable=True),
    "data.duration": Range(0, low_open=True, nullable=True),
    "data.cnn_size.channels": COUNT,  # each entry
    "data.cnn_size.groups": COUNT,
    "trainer.max_epochs": COUNT,
    "trainer.log_every_n_steps": COUNT,
    "trainer.num_sanity_val_steps": Range(-1, integer=True),
    "trainer.val_check_interval": Range(0, 1, low_open=True, batches_from=1),
    "trainer.limit_train_batches": BATCHES,
    "trainer.limit_val_batches": BATCHES,
    "trainer.limit_test_batches": BATCHES,
    "trainer.gradient_clip_val": Range(0, low_open=True, nullable=True),
    "callbacks.progress_refresh_rate": Range(0, integer=True),
    "callbacks.probe_size": Range(1, integer=True),
    "callbacks.diagnostics_every": Range(1, integer=True),
    "schedule.relaxed_until_epoch": Range(1, integer=True, nullable=True),
}


def _lookup(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node


def field_ranges(config: type, prefix: str) -> dict[str, Range]:
    """``{prefix.key: Range}`` of every field of the dataclass ``config`` (and of the dataclasses
    it nests) whose metadata holds a ``range``."""
    ranges = {}
    for f in dataclasses.fields(config):
        key = f"{prefix}.{f.name}"
        if "range" in f.metadata:
            ranges[key] = f.metadata["range"]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            ranges.update(field_ranges(type(default), key))
    return ranges


def check_ranges(config: dict[str, Any], model_config: type | None = None) -> None:
    """Raise ValueError naming the key, the value and its range for the first value outside
    ``RANGES`` or, given the model's config dataclass, outside its fields' ranges (keys absent
    from ``config`` are skipped: a partial config checks what it has)."""
    ranges = dict(RANGES)
    if model_config is not None:
        ranges.update(field_ranges(model_config, "model"))
    for key, valid in ranges.items():
        try:
            value = _lookup(config, key)
        except (KeyError, TypeError):
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            if not valid.contains(item):
                raise ValueError(f"{key}: must be {valid}, got {value!r}")


def check_estimators_in_float32(estimators: dict[str, OpEstimator]) -> None:
    """Run each op with its estimator on float32 inputs across [-10, 10] (where normalized
    pre-activations lie) and raise ValueError if its output or its surrogate gradient is not
    finite there: a parameter that is valid as a number but overflows in the training's float32."""
    x = torch.linspace(-10, 10, 201, dtype=torch.float32)
    for op, (est, relaxed) in estimators.items():
        probe = (x.reshape(67, 3) if op == "argmax" else x).clone().requires_grad_()
        with torch.random.fork_rng(devices=[]):
            y = getattr(surrogate, op)(probe, est, relaxed=relaxed)
            (grad,) = torch.autograd.grad(y, probe, torch.ones_like(y))
        for what, values in (("output", y), ("surrogate gradient", grad)):
            bad = ~torch.isfinite(values)
            if bad.any():
                at = probe.detach()[bad][0].item()
                raise ValueError(
                    f"op.{op}: {est!r} overflows in float32: its {what} is "
                    f"{values[bad][0].item()} at x={at:g}; choose parameters nearer the defaults"
                )

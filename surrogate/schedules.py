"""Estimator parameters that change during training, and a relaxed warm-up phase.

A :class:`Schedule` maps a time t >= 0 (the global step or the epoch, its ``unit``) to a value.
With u = min(t / length, 1):

| kind        | value(t)                                         | fields              |
|-------------|--------------------------------------------------|---------------------|
| constant    | start                                            | start               |
| linear      | start + (end − start)·u                          | start, end, length  |
| cosine      | end + (start − end)·(1 + cos(π·u)) / 2           | start, end, length  |
| exponential | start·(end / start)^u                            | 0 < start, 0 < end  |
| gumbel      | max(end, start·exp(−rate·t))                     | 0 < end <= start    |

``gumbel`` is the temperature annealing of Jang, Gu & Poole 2017, "Categorical Reparameterization
with Gumbel-Softmax" (arXiv:1611.01144): τ = max(0.5, exp(−r·t)) with t the global training step,
that is ``Schedule("gumbel", 1.0, 0.5, rate=r, unit="step")``. (They update τ every N steps; here
it follows every step.)

Every kind moves monotonically from ``value(0) = start`` to its last value ``final()`` (= end), so
a value inside an estimator's range (a half-line) at both ends is inside it throughout.

An :class:`EstimatorSchedule` holds the estimators of some ops (``{op: spec}`` as
``surrogate.swap`` takes them), schedules some of their parameters, and may run every named op
relaxed (its smooth forward) for the first epochs::

    sched = EstimatorSchedule(
        {"step": "sigmoid"}, {"step": {"beta": Schedule("exponential", 1.0, 8.0, length=10)}}
    )
    for epoch in range(10):
        for x, y in loader:
            sched.apply(model, step, epoch)
            ...
            step += 1

For a model written with plain torch ops: ``with surrogate.intercept(**sched.at(step, epoch)):``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, cast

from torch import nn

from surrogate.estimators import Estimator, resolve
from surrogate.estimators.base import OPS
from surrogate.op_estimators import OpEstimator, parse_ops, summary
from surrogate.swap import swap

KINDS = ("constant", "linear", "cosine", "exponential", "gumbel")
UNITS = ("epoch", "step")
_WITH_LENGTH = ("linear", "cosine", "exponential")
ALL = "all"  # the key of ``params`` that applies to every op with that parameter


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(kind: str, name: str, value: Any) -> float:
    if not (_is_real(value) and math.isfinite(value)):
        raise ValueError(f"Schedule({kind}): {name} must be a finite number, got {value!r}")
    return float(value)


def _positive(kind: str, name: str, value: Any, why: str = "") -> float:
    value_f = _finite(kind, name, value)
    if value_f <= 0:
        raise ValueError(f"Schedule({kind}): {name} must be > 0{why}, got {value!r}")
    return value_f


@dataclasses.dataclass(frozen=True)
class Schedule:
    """One parameter's value over time; the formulas are in the module docstring.

    ``end`` is required except for ``constant`` (None, or equal to ``start``); ``length`` (> 0)
    only for linear, cosine and exponential; ``rate`` (> 0) only for gumbel. ``unit`` says what t
    counts: ``"epoch"`` (the value holds for a whole epoch) or ``"step"`` (the global step).
    """

    kind: str
    start: float
    end: float | None = None
    length: float | None = None
    rate: float | None = None
    unit: str = "epoch"

    def __post_init__(self) -> None:
        kind = self.kind
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(f"Schedule: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not isinstance(self.unit, str) or self.unit not in UNITS:
            raise ValueError(
                f"Schedule({kind}): unit must be one of {', '.join(UNITS)}, got {self.unit!r}"
            )
        start = _finite(kind, "start", self.start)
        end = self.end
        if kind == "constant":
            if end is not None and end != start:
                raise ValueError(
                    f"Schedule(constant): end must be None or equal to start ({start!r}), "
                    f"got {end!r}; for a changing value choose one of {', '.join(KINDS[1:])}"
                )
            end = start
        elif end is None:
            raise ValueError(f"Schedule({kind}): end is required, got None")
        end = _finite(kind, "end", end)
        if kind == "exponential":
            start = _positive(kind, "start", start)
            end = _positive(kind, "end", end)
        if kind == "gumbel":
            end = _positive(kind, "end", end)
            if start < end:
                raise ValueError(
                    f"Schedule(gumbel): start must be >= end ({end!r}): it decays to end, "
                    f"got {start!r}"
                )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        self._set_optional("length", kind in _WITH_LENGTH, _WITH_LENGTH)
        self._set_optional("rate", kind == "gumbel", ("gumbel",))

    def _set_optional(self, name: str, needed: bool, kinds: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if needed:
            if value is None:
                raise ValueError(f"Schedule({self.kind}): {name} is required, got None")
            object.__setattr__(self, name, _positive(self.kind, name, value))
        elif value is not None:
            raise ValueError(
                f"Schedule({self.kind}): takes no {name}, got {value!r}; "
                f"{name} is for {', '.join(kinds)}"
            )

    def value(self, t: float) -> float:
        """The value at time ``t >= 0``, in the schedule's unit."""
        if not _is_real(t) or not t >= 0:  # `not >=` also refuses NaN
            raise ValueError(f"Schedule.value: t must be a number >= 0, got {t!r}")
        return self._at(float(t))

    def final(self) -> float:
        """The last value, held once the schedule ends: ``end`` (``start`` if constant)."""
        return self._at(math.inf)

    def _at(self, t: float) -> float:
        # __post_init__ has set end for every kind, rate for gumbel and length for the others.
        start, end = self.start, cast(float, self.end)
        if self.kind == "constant":
            return start
        if self.kind == "gumbel":
            return max(end, start * math.exp(-cast(float, self.rate) * t))
        u = min(t / cast(float, self.length), 1.0)
        if self.kind == "linear":
            return start + (end - start) * u
        if self.kind == "cosine":
            return end + (start - end) * (1 + math.cos(math.pi * u)) / 2
        return start * (end / start) ** u


def as_schedule(spec: Schedule | Mapping[str, Any], where: str) -> Schedule:
    """``spec`` if it is a Schedule, else ``Schedule(**spec)`` (a mapping of its fields)."""
    if isinstance(spec, Schedule):
        return spec
    fields = tuple(f.name for f in dataclasses.fields(Schedule))
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"{where}: must be a Schedule or a mapping of its fields ({', '.join(fields)}), "
            f"got {spec!r}"
        )
    unknown = sorted(str(k) for k in spec if k not in fields)
    if unknown:
        raise ValueError(
            f"{where}: unknown field {unknown[0]!r}; a Schedule takes {', '.join(fields)}"
        )
    try:
        return Schedule(**spec)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{where}: {err}; a Schedule takes {', '.join(fields)}") from None
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def schedulable(est: Estimator) -> dict[str, dict]:
    """The parameters of ``est`` that take numbers, each with its range (see ``param``)."""
    return {f.name: dict(f.metadata) for f in dataclasses.fields(est) if f.metadata}


def _coerce(value: float, meta: dict) -> float | int:
    """An integer parameter takes the schedule's value rounded half up."""
    return math.floor(value + 0.5) if meta["integer"] else value


class EstimatorSchedule:
    """The estimators in force at each (step, epoch) of a training run.

    ``estimators`` is ``{op: spec}`` as ``surrogate.swap`` takes it. ``params`` is
    ``{op or "all": {parameter: Schedule or a mapping of its fields}}``: ``"all"`` applies to every
    named op whose estimator has that parameter, an op's own entry wins over it. From epoch
    ``relaxed_until_epoch`` on (an int >= 1) the ops run as ``estimators`` says; before it, every
    named op runs relaxed. Everything is checked here, values at both ends of each schedule
    included, so a bad configuration fails before training starts.
    """

    def __init__(
        self,
        estimators: Mapping[str, Any],
        params: Mapping[str, Mapping[str, Any]] | None = None,
        relaxed_until_epoch: int | None = None,
    ):
        if not isinstance(estimators, Mapping):
            raise TypeError(
                f"EstimatorSchedule: estimators must be a mapping {{op: estimator}} with ops "
                f"among {', '.join(OPS)}, got {type(estimators).__name__}"
            )
        self._base = parse_ops(estimators, "EstimatorSchedule")
        self._schedules = self._parse_params({} if params is None else params)
        self.relaxed_until_epoch = self._parse_relaxed(relaxed_until_epoch)
        for op, by_name in self._schedules.items():
            for name, sched in by_name.items():
                for what, value in (("start", sched.value(0)), ("end", sched.final())):
                    try:
                        self._with(op, {name: value})
                    except ValueError as err:
                        raise ValueError(
                            f"EstimatorSchedule.params.{op}.{name}: the schedule's {what} value "
                            f"{value!r} is out of range: {err}"
                        ) from None

    def _parse_params(self, params: Any) -> dict[str, dict[str, Schedule]]:
        if not isinstance(params, Mapping):
            raise TypeError(
                f"EstimatorSchedule: params must be a mapping {{op or 'all': {{parameter: "
                f"Schedule}}}}, got {type(params).__name__}"
            )
        keys = (ALL, *OPS)
        for key, entry in params.items():
            if key not in keys:
                choices = ", ".join(keys)
                raise ValueError(
                    f"EstimatorSchedule.params: unknown key {key!r}; choose one of: {choices}"
                )
            if key != ALL and key not in self._base:
                raise ValueError(
                    f"EstimatorSchedule.params: {key!r} has no estimator; the estimators name "
                    f"{', '.join(self._base) or 'no op'}"
                )
            if not isinstance(entry, Mapping):
                raise TypeError(
                    f"EstimatorSchedule.params.{key}: must be a mapping {{parameter: Schedule}}, "
                    f"got {type(entry).__name__}"
                )
        out: dict[str, dict[str, Schedule]] = {op: {} for op in self._base}
        for name, spec in params.get(ALL, {}).items():
            ops = [op for op, (est, _) in self._base.items() if name in schedulable(est)]
            if not ops:
                raise ValueError(
                    f"EstimatorSchedule.params.all: no estimator has a parameter {name!r}; "
                    f"they have: {self._describe_params()}"
                )
            sched = as_schedule(spec, f"EstimatorSchedule.params.all.{name}")
            for op in ops:
                out[op][name] = sched
        for op in self._base:
            est = self._base[op].estimator
            for name, spec in params.get(op, {}).items():
                if name not in schedulable(est):
                    takes = ", ".join(schedulable(est)) or "no parameters"
                    raise ValueError(
                        f"EstimatorSchedule.params.{op}: {est.name} has no parameter {name!r}; "
                        f"it takes {takes}"
                    )
                out[op][name] = as_schedule(spec, f"EstimatorSchedule.params.{op}.{name}")
        return {op: by_name for op, by_name in out.items() if by_name}

    def _describe_params(self) -> str:
        return "; ".join(
            f"{op}={est.name}({', '.join(schedulable(est)) or 'no parameters'})"
            for op, (est, _) in self._base.items()
        )

    def _parse_relaxed(self, k: Any) -> int | None:
        if k is None:
            return None
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(
                f"EstimatorSchedule: relaxed_until_epoch must be None or an int >= 1, got {k!r}"
            )
        for op, (est, _) in self._base.items():
            try:
                resolve(op, est, {}, relaxed=True)
            except ValueError as err:
                raise ValueError(f"EstimatorSchedule.relaxed_until_epoch: {err}") from None
        return int(k)

    def _with(self, op: str, values: Mapping[str, float]) -> Estimator:
        est = self._base[op].estimator
        ranges = schedulable(est)
        return dataclasses.replace(
            est, **{name: _coerce(v, ranges[name]) for name, v in values.items()}
        )

    @staticmethod
    def _check_time(step: Any, epoch: Any) -> None:
        for name, t in (("step", step), ("epoch", epoch)):
            if not isinstance(t, numbers.Integral) or isinstance(t, bool) or t < 0:
                raise ValueError(f"EstimatorSchedule: {name} must be an int >= 0, got {t!r}")

    def _values(self, step: int, epoch: int) -> dict[str, dict[str, float]]:
        return {
            op: {
                name: sched.value(step if sched.unit == "step" else epoch)
                for name, sched in by_name.items()
            }
            for op, by_name in self._schedules.items()
        }

    def relaxed_phase(self, epoch: int) -> bool:
        """Whether ``epoch`` is in the relaxed phase (before ``relaxed_until_epoch``)."""
        return self.relaxed_until_epoch is not None and epoch < self.relaxed_until_epoch

    def at(self, step: int, epoch: int) -> dict[str, OpEstimator]:
        """``{op: OpEstimator}`` in force at global ``step`` in ``epoch`` (both from 0)."""
        self._check_time(step, epoch)
        values = self._values(step, epoch)
        relax_all = self.relaxed_phase(epoch)
        return {
            op: OpEstimator(
                self._with(op, values[op]) if op in values else est, relaxed or relax_all
            )
            for op, (est, relaxed) in self._base.items()
        }

    def values(self, step: int, epoch: int) -> dict[str, float]:
        """``{"op.parameter": value}`` of every scheduled parameter (integers rounded as applied),
        and ``"relaxed"`` (1.0 in the relaxed phase, else 0.0) if there is one: for logging."""
        self._check_time(step, epoch)
        out = {}
        for op, by_value in self._values(step, epoch).items():
            applied = self._with(op, by_value)
            for name in by_value:
                out[f"{op}.{name}"] = float(getattr(applied, name))
        if self.relaxed_until_epoch is not None:
            out["relaxed"] = 1.0 if self.relaxed_phase(epoch) else 0.0
        return out

    def apply(self, model: nn.Module, step: int, epoch: int) -> int:
        """Set the surrogate modules of ``model`` to ``at(step, epoch)``; how many changed."""
        return swap(model, **self.at(step, epoch))

    def final(self) -> dict[str, OpEstimator]:
        """The estimators once every schedule has ended and the relaxed phase is over."""
        return {
            op: OpEstimator(
                self._with(op, {n: s.final() for n, s in self._schedules.get(op, {}).items()}),
                relaxed,
            )
            for op, (est, relaxed) in self._base.items()
        }

    @property
    def is_constant(self) -> bool:
        """True when nothing changes over time: no schedule and no relaxed phase."""
        return not self._schedules and self.relaxed_until_epoch is None

    def __repr__(self) -> str:
        return (
            f"EstimatorSchedule({summary(self._base)}, params={self._schedules!r}, "
            f"relaxed_until_epoch={self.relaxed_until_epoch!r})"
        )

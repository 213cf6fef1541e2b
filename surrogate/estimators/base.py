"""The estimator registry: one frozen dataclass per estimator, one entry per name.

An estimator decides what a hard op saves in its forward and what gradient its backward returns.
Parameters are dataclass fields declared with :func:`param`, which records the valid range; the
range is checked once, when the estimator is built, so a bad value fails before any work is done.
Adding an estimator is one small subclass decorated with :func:`register`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import torch

SCALAR_OPS = frozenset({"step", "sign", "round"})
ARGMAX_OPS = frozenset({"argmax"})
OPS = ("step", "sign", "round", "argmax")

_REGISTRY: dict[str, type[Estimator]] = {}


def param(default: float, *, above: float = 0.0, at_least: bool = False, integer: bool = False):
    """A validated estimator parameter: a finite real ``> above`` (``>= above`` if ``at_least``)."""
    return dataclasses.field(
        default=default, metadata={"above": above, "at_least": at_least, "integer": integer}
    )


def _valid_range(meta: dict) -> str:
    kind = "an integer" if meta["integer"] else "a finite number"
    return f"{kind} {'>=' if meta['at_least'] else '>'} {meta['above']:g}"


def _check_param(owner: str, name: str, value: Any, meta: dict) -> float | int:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value_f = float(value)
        ok = math.isfinite(value_f) and (not meta["integer"] or value_f.is_integer())
        bound = meta["above"]
        ok = ok and (value_f >= bound if meta["at_least"] else value_f > bound)
    if not ok:
        raise ValueError(f"{owner}: {name} must be {_valid_range(meta)}, got {value!r}")
    return int(value_f) if meta["integer"] else value_f


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp16 and bf16 are computed in fp32; fp32 and fp64 in themselves."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def upcast(x: torch.Tensor) -> torch.Tensor:
    return x.to(compute_dtype(x.dtype))


@dataclasses.dataclass(frozen=True)
class Estimator:
    """Base of every estimator. Subclasses set ``name`` and ``ops`` and implement ``grad``.

    The hard op calls ``forward(op, x, relaxed)``, which returns its output and the tensors to save;
    its backward calls ``grad(op, g, *saved)``. ``op`` is the op's spec (see ``surrogate.hardops``).
    """

    name: ClassVar[str]
    ops: ClassVar[frozenset[str]]
    param_names: ClassVar[tuple[str, ...]] = ()  # set by `register`

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.metadata:
                value = _check_param(self.name, f.name, getattr(self, f.name), f.metadata)
                object.__setattr__(self, f.name, value)

    def relaxable(self, op_name: str) -> bool:
        """Whether this estimator has a smooth forward for ``op_name`` (relaxed mode)."""
        return False

    def forward(self, op, x: torch.Tensor, relaxed: bool):
        out = op.relax(x, self) if relaxed else op.hard(x)
        return out, self.save(op, x)

    def save(self, op, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,)

    def grad(self, op, g: torch.Tensor, *saved: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
        return f"estimator({self.name!r}{', ' if args else ''}{args})"


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make ``cls`` available by its ``name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"an estimator named {cls.name!r} is already registered")
    cls.param_names = tuple(f.name for f in dataclasses.fields(cls))
    _REGISTRY[cls.name] = cls
    return cls


def _check_op(op: str) -> None:
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; choose one of: {', '.join(OPS)}")


def available(op: str) -> tuple[str, ...]:
    """Names of the estimators that apply to ``op`` ('step', 'sign', 'round' or 'argmax')."""
    _check_op(op)
    return tuple(name for name, cls in _REGISTRY.items() if op in cls.ops)


def parameters(name: str) -> dict[str, float | int]:
    """The parameters of the estimator called ``name`` with their defaults."""
    cls = _lookup(name)
    return {f.name: f.default for f in dataclasses.fields(cls)}


def _lookup(name: str) -> type[Estimator]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown estimator {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _check_names(name: str, known: tuple[str, ...], params: dict) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes no parameters"
        raise ValueError(f"{name}: unknown parameter {unknown[0]!r}; {name} {takes}")


def estimator(spec: str | Estimator | Any = "ste", /, **params: Any) -> Estimator:
    """Build an estimator from its name and parameters, e.g. ``estimator("sigmoid", beta=8.0)``.

    An :class:`Estimator` is returned as it is (with ``params`` replaced, if any); a callable ``p``
    becomes a custom bump (see :class:`surrogate.estimators.bumps.Custom`).
    """
    if isinstance(spec, Estimator):
        _check_names(spec.name, tuple(f.name for f in dataclasses.fields(spec)), params)
        return dataclasses.replace(spec, **params) if params else spec
    if isinstance(spec, str):
        cls = _lookup(spec)
        _check_names(spec, cls.param_names, params)
        return cls(**params)
    if callable(spec):
        from surrogate.estimators.bumps import Custom

        return Custom(spec, **params)
    raise ValueError(
        f"estimator must be a name, an Estimator or a callable bump, got {spec!r}; "
        f"names: {', '.join(_REGISTRY)}"
    )


def resolve(op: str, spec: str | Estimator | Any, params: dict, relaxed: bool = False) -> Estimator:
    """The estimator ``spec`` for ``op``, refused with a ValueError if it does not apply."""
    _check_op(op)
    est = estimator(spec, **params)
    if op not in est.ops:
        choices = ", ".join(available(op))
        raise ValueError(f"estimator {est.name!r} does not apply to {op}; choose one of: {choices}")
    if relaxed and not est.relaxable(op):
        smooth = [n for n in available(op) if _REGISTRY[n]().relaxable(op)]
        raise ValueError(
            f"relaxed {op} needs an estimator with a smooth forward, {est.name!r} has none; "
            f"choose one of: {', '.join(smooth)}"
        )
    return est

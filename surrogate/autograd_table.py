"""What PyTorch's autograd gives common non-differentiable ops, at their kink and away from it,
next to the remedy. Every gradient in the table is computed when it is printed.

    python -m surrogate.autograd_table

Each cell is the gradient of sum(op(x)) with respect to x (for argmax, of the one-hot dotted with
[0, 1, 2]), or what autograd does instead: ``cut`` (the output has no grad_fn) or ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import surrogate


@dataclass(frozen=True)
class Kink:
    """One row: the op, its PyTorch call, an input at its kink and one away from it, and the
    remedy (``remedy_fn`` computes it; None where PyTorch's gradient is already the right one)."""

    op: str
    call: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    at: list
    away: list
    remedy: str
    remedy_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    weighted: bool = False  # incoming gradient [0, 1, 2, ...] instead of ones


def _onehot(t: torch.Tensor) -> torch.Tensor:
    return F.one_hot(t.argmax(-1), t.shape[-1]).float()


def _floor_ste(t: torch.Tensor) -> torch.Tensor:
    return t + (t.floor() - t).detach()


KINKS = (
    Kink("abs", "torch.abs(x)", torch.abs, [0.0], [-0.5, 0.5],
         "none needed: 0 is a valid subgradient at the kink"),
    Kink("relu", "torch.relu(x)", torch.relu, [0.0], [-0.5, 0.5],
         "none needed: 0 is a valid subgradient at the kink"),
    Kink("sign", "torch.sign(x)", torch.sign, [0.0], [-0.5, 0.5],
         'surrogate.sign(x, "atan"); intercept(sign="atan")',
         lambda t: surrogate.sign(t, "atan")),
    Kink("round", "torch.round(x)", torch.round, [0.5], [0.2, 0.8],
         'surrogate.round(x, "sigmoid"); intercept(round="sigmoid")',
         lambda t: surrogate.round(t, "sigmoid")),
    Kink("floor", "torch.floor(x)", torch.floor, [1.0], [0.5, 1.5],
         "straight-through by hand: x + (x.floor() - x).detach()", _floor_ste),
    Kink("heaviside", "torch.heaviside(x, 0)", lambda t: torch.heaviside(t, torch.zeros(())),
         [0.0], [-0.5, 0.5], 'surrogate.step(x, "atan"); intercept(step="atan")',
         lambda t: surrogate.step(t, "atan")),
    Kink("argmax", "F.one_hot(x.argmax(-1), 3).float()", _onehot, [0.5, 0.5, 0.1],
         [0.2, 0.9, 0.6], 'surrogate.argmax(x, "softmax"); intercept(argmax="softmax")',
         lambda t: surrogate.argmax(t, "softmax"), weighted=True),
    Kink("max", "x.max()", torch.max, [1.0, 3.0, 3.0], [1.0, 2.0, 3.0],
         "none needed: ties share the gradient; torch.logsumexp for a smooth max"),
    Kink("masked_select", "x.masked_select(x > 0)", lambda t: t.masked_select(t > 0), [0.0],
         [-0.5, 0.5], "none for the values; the mask x > 0 is cut: surrogate.step(x) if it "
         "must learn"),
    Kink("slicing", "x[1:]", lambda t: t[1:], [0.0, 0.0, 0.0], [-1.0, 2.0, 5.0],
         "none needed: 0 outside the slice is exact"),
    Kink("clamp", "x.clamp(-1, 1)", lambda t: t.clamp(-1, 1), [1.0], [0.5, 2.0],
         "none needed; the gradient is 0 where it saturates (sign's clipped_ste is this)"),
)  # fmt: skip


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v + 0.0:.3g}" for v in values) + "]"


def gradient(fn: Callable, values: list, weighted: bool = False) -> str:
    """d/dx of sum(fn(x)) (weighted by [0, 1, 2, ...] if asked), or ``cut`` / ``error: ...``."""
    x = torch.tensor(values, requires_grad=True)
    try:
        y = fn(x)
        if not y.requires_grad:
            return "cut: no grad_fn"
        w = torch.arange(y.numel()).reshape(y.shape).to(y) if weighted else torch.ones_like(y)
        (grad,) = torch.autograd.grad(y, x, w)
    except (RuntimeError, NotImplementedError) as err:
        return f"error: {str(err).splitlines()[0]}"
    return _fmt(grad.tolist())


def rows():
    """For each op: (op, call, x at the kink, PyTorch's d/dx there, x away, PyTorch's d/dx
    there, remedy, the remedy's d/dx at the kink and away)."""
    for k in KINKS:
        ours = (
            (gradient(k.remedy_fn, k.at, k.weighted), gradient(k.remedy_fn, k.away, k.weighted))
            if k.remedy_fn
            else ("—", "—")
        )
        yield (
            k.op, k.call, _fmt(k.at), gradient(k.fn, k.at, k.weighted), _fmt(k.away),
            gradient(k.fn, k.away, k.weighted), k.remedy, *ours,
        )  # fmt: skip


HEADER = (
    "op", "PyTorch call", "x at the kink", "PyTorch's d/dx", "x away", "PyTorch's d/dx",
    "remedy", "remedy's d/dx at the kink", "away",
)  # fmt: skip


def table() -> str:
    """The Markdown table of ``rows()``."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for op, call, *rest in rows():
        lines.append("| " + " | ".join([f"`{op}`", f"`{call}`", *rest]) + " |")
    return "\n".join(lines)


def main() -> None:
    print(
        "Gradient of sum(op(x)) (for argmax, of the one-hot dotted with [0, 1, 2]); cut: the "
        "output has no grad_fn.\n"
    )
    print(table())


if __name__ == "__main__":
    main()

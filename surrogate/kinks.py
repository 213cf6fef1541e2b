"""What autograd gives at the kinks of hard ops, next to what ``surrogate`` gives.

    python -m surrogate.kinks

Prints a Markdown table: for each op, the inputs, PyTorch's own gradient (zero, a cut graph or an
error), and the gradient of the same forward through ``surrogate`` with a few estimators.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import surrogate


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v + 0.0:.3g}" for v in values) + "]"


def _weights(y: torch.Tensor) -> torch.Tensor:
    """The incoming gradient: ones, or [0, 1, 2, ...] along the last dim of a one-hot."""
    if y.dim() < 2:
        return torch.ones_like(y)
    return torch.arange(y.shape[-1]).expand_as(y).to(y)


def _torch_grad(fn, x: torch.Tensor) -> str:
    x = x.clone().requires_grad_()
    try:
        y = fn(x)
    except RuntimeError as err:
        return f"error: {str(err).splitlines()[0]}"
    if not y.requires_grad:
        return "cut: the output has no grad_fn"
    try:
        y.backward(_weights(y))
    except RuntimeError as err:
        return f"error: {str(err).splitlines()[0]}"
    return _fmt(x.grad.flatten().tolist())


def _surrogate_grad(fn, x: torch.Tensor) -> str:
    x = x.clone().requires_grad_()
    fn(x).backward(_weights(fn(x)))
    return _fmt(x.grad.flatten().tolist())


def rows():
    """(op, input, PyTorch's gradient, [(estimator, surrogate's gradient), ...])."""
    kink = torch.tensor([-1.0, -0.1, 0.0, 0.1, 1.0])
    half = torch.tensor([0.4, 0.5, 0.6, 1.5, 2.5])
    logits = torch.tensor([[0.2, 0.9, 0.6]])
    yield "abs", kink, _torch_grad(torch.abs, kink), []
    yield (
        "sign",
        kink,
        _torch_grad(torch.sign, kink),
        [
            (est, _surrogate_grad(lambda t, e=est: surrogate.sign(t, e), kink))
            for est in ("ste", "clipped_ste", "atan")
        ],
    )
    yield (
        "round",
        half,
        _torch_grad(torch.round, half),
        [
            (est, _surrogate_grad(lambda t, e=est: surrogate.round(t, e), half))
            for est in ("ste", "sigmoid")
        ],
    )
    heaviside = lambda t: torch.heaviside(t, torch.zeros(()))  # noqa: E731
    yield (
        "heaviside",
        kink,
        _torch_grad(heaviside, kink),
        [
            (f"step {est}", _surrogate_grad(lambda t, e=est: surrogate.step(t, e), kink))
            for est in ("ste", "sigmoid")
        ],
    )
    onehot = lambda t: F.one_hot(t.argmax(-1), t.shape[-1]).to(t)  # noqa: E731
    yield (
        "argmax + one_hot",
        logits,
        _torch_grad(onehot, logits),
        [
            (est, _surrogate_grad(lambda t, e=est: surrogate.argmax(t, e), logits))
            for est in ("ste", "softmax", "sparsemax")
        ],
    )


def table() -> str:
    lines = [
        "| op | input x | PyTorch's d/dx | surrogate | surrogate's d/dx |",
        "|---|---|---|---|---|",
    ]
    for op, x, torch_grad, ours in rows():
        first, *rest = ours or [("—", "—")]
        inputs = _fmt(x.flatten().tolist())
        lines.append(f"| `{op}` | {inputs} | {torch_grad} | {first[0]} | {first[1]} |")
        lines += [f"| | | | {est} | {grad} |" for est, grad in rest]
    return "\n".join(lines)


if __name__ == "__main__":
    print("Gradients of sum(op(x)); for argmax, of the one-hot dotted with [0, 1, 2].\n")
    print(table())

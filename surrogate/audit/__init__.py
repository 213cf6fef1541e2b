"""Where does the gradient die? ``surrogate.audit(model, *inputs)`` finds the hard ops.

    report = surrogate.audit(model, x)
    print(report)              # op, module, elements, calls, what PyTorch gives, remedy
    report.dead_parameters     # parameters that get no gradient, or only zeros, because of them

It runs the model's forward once under a recording ``TorchFunctionMode`` (forward hooks name the
module whose forward is running) and backpropagates a fixed random projection of the outputs (or
``loss(outputs)``). Then it runs the same forward with every hard op made straight-through: a
parameter that gets a gradient there but none (or only zeros) from PyTorch is dead because of the
hard ops; one that gets none either way (unused) is not. A backward that raises, as heaviside's
does, is reported in ``report.error``, not raised. The model runs in its current train/eval mode;
its buffers (BatchNorm statistics), the RNG and every ``.grad`` are left as they were.

``python -m surrogate.audit MODULE:FACTORY --input 8,1,28,28`` prints the audit of the model that
``MODULE:FACTORY()`` builds (see ``surrogate.audit.cli``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from surrogate.audit.findings import Finding, Report
from surrogate.audit.modes import Healer, Recorder

__all__ = ["Finding", "Report", "audit"]


def tensors(obj: Any) -> list[torch.Tensor]:
    """The tensors in a model's output: a tensor, or nested tuples, lists and mappings of them."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in tensors(item)]
    return []


def projection(outputs: Any) -> torch.Tensor | None:
    """Σ ⟨y, w⟩ over the float outputs y that carry a gradient, w ~ N(0, 1) drawn from a fixed
    seed (a plain sum would give softmax outputs a zero gradient)."""
    gen = torch.Generator().manual_seed(0)
    terms = [
        (y * torch.randn(y.shape, generator=gen).to(y)).sum()
        for y in tensors(outputs)
        if y.is_floating_point() and y.requires_grad
    ]
    return torch.stack(terms).sum() if terms else None


def gradients(model, inputs, params, loss, mode) -> tuple[list[torch.Tensor | None], str | None]:
    """One forward of ``model`` under ``mode`` and one backward: each parameter's gradient (None
    where it gets none) and the first line of the error the backward raised, if any."""
    with torch.enable_grad():
        with mode:
            outputs = model(*inputs)
        value = loss(outputs) if loss is not None else projection(outputs)
        if value is None or not value.requires_grad or not params:
            return [None] * len(params), None
        try:
            return list(torch.autograd.grad(value, params, allow_unused=True)), None
        except (RuntimeError, NotImplementedError) as err:
            return [None] * len(params), str(err).strip().splitlines()[0]


def has_gradient(grad: torch.Tensor | None) -> bool:
    return grad is not None and bool(grad.ne(0).any())


def audit(
    model: nn.Module, *inputs: Any, loss: Callable[[Any], torch.Tensor] | None = None
) -> Report:
    """Run ``model(*inputs)`` forward and backward and report its hard ops and dead parameters.

    ``loss`` maps the model's output to the scalar to backpropagate; by default a fixed random
    projection of every float output that carries a gradient. See the module docstring.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"audit: model must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names, params = [n for n, _ in named], [p for _, p in named]
    path = [""]
    found: dict[tuple[str, str], Finding] = {}

    def note(op: str, numel: int) -> None:
        key = (path[-1], op)
        old = found.get(key)
        calls, total = (old.calls + 1, old.numel + numel) if old else (1, numel)
        found[key] = Finding(op, path[-1], total, calls)

    def enter(name: str) -> Callable:
        return lambda module, args: path.append(name)  # returns None: the input stays

    def leave(module, args, output) -> None:
        path.pop()

    hooks = []
    for name, module in model.named_modules():
        hooks.append(module.register_forward_pre_hook(enter(name)))
        hooks.append(module.register_forward_hook(leave, always_call=True))
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    devices = sorted(
        {
            torch.cuda.current_device() if t.device.index is None else t.device.index
            for t in [*params, *tensors(list(inputs))]
            if t.device.type == "cuda"
        }
    )
    try:
        with torch.random.fork_rng(devices=devices):
            plain, error = gradients(model, inputs, params, loss, Recorder(note))
        restore(buffers)
        with torch.random.fork_rng(devices=devices):
            healed, healed_error = gradients(model, inputs, params, loss, Healer())
    finally:
        for hook in hooks:
            hook.remove()
        restore(buffers)
    # Dead: no gradient from PyTorch, one once the hard ops pass it on. If even the
    # straight-through pass fails, every parameter without a gradient.
    dead = [
        n
        for n, a, b in zip(names, plain, healed, strict=True)
        if not has_gradient(a) and (has_gradient(b) or healed_error is not None)
    ]
    return Report(list(found.values()), dead, error, parameters=len(names))


def restore(buffers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buffer, saved in buffers:
            buffer.copy_(saved)

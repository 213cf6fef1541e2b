"""Where does the gradient die? ``surrogate.audit(model, *inputs)`` finds the hard ops.

    report = surrogate.audit(model, x)
    print(report)              # op, module, elements, calls, what PyTorch gives, remedy
    report.dead_parameters     # parameters that get no gradient, or only zeros
    report.causes              # for each of them, the op that cut it

It runs the model's forward once under a recording ``TorchFunctionMode`` (forward hooks name the
module whose forward is running) and backpropagates a fixed random projection of the outputs (or
``loss(outputs)``). The dead parameters are read off that backward: those whose gradient is None
or all zero, as ``loss.backward()`` would leave them. Each is attributed through the autograd
graph to the first recorded op downstream of it (``surrogate.audit.attribution``): a hard op, an
op the audit does not recognise (``detach``, an integer cast, a call under ``no_grad``), or none
("not used in the forward"). Then it runs the same forward with every recorded hard op made
straight-through, to see which healed results a gradient reaches. The library's own modules
(``surrogate.Sign``, ``Step``, ``Round``, ``ArgMax``, also inside ``BinaryConv2d`` and
``Quantize``) with the estimator ``none`` take part too: their calls are recorded by forward hooks
and the second pass gives them ``ste`` (``surrogate.audit.library``); what they cut is named by
module, and the remedy is another estimator for them (``surrogate.swap``), not intercept.
Each call site (the module and the line that call an op, ``surrogate.intercept.sites``) is
``cut``, ``handled by the model`` (the model routes a gradient from the op's result to its input,
``surrogate.audit.routes``, or the op runs in the model's own ``autograd.Function``) or ``does not
reach the loss``. The report's ``scope`` is its cut sites: ``surrogate.intercept(...,
only=report)`` changes those calls and no others. A backward that raises, as heaviside's does, is
reported in ``report.error``, not raised. The model runs in its current train/eval mode; its
buffers (BatchNorm statistics), its modules' estimators, the RNG and every ``.grad`` are left as
they were.

``python -m surrogate.audit MODULE:FACTORY --input 8,1,28,28`` prints the audit of the model that
``MODULE:FACTORY()`` builds (see ``surrogate.audit.cli``). The package is callable:
``surrogate.audit(...)`` calls ``surrogate.audit.audit`` (see ``surrogate.callable_module``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from surrogate.audit.attribution import causes
from surrogate.audit.findings import CUT, HANDLED, UNREACHED, Finding, Report
from surrogate.audit.library import ZeroModules
from surrogate.audit.modes import Event, Healer, Recorder
from surrogate.callable_module import make_callable
from surrogate.intercept.sites import Modules

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
    modules = Modules(model)
    recorder = Recorder(lambda: path[-1], {id(p): n for n, p in named}, modules)
    zero_modules = ZeroModules(model)
    try:
        with torch.random.fork_rng(devices=devices), zero_modules.recording(lambda: recorder.count):
            plain, error = gradients(model, inputs, params, loss, recorder)
        recorder.routes.settle()
        recorder.remove()
        restore(buffers)
        healer = Healer(recorder.plan, recorder.events)
        with torch.random.fork_rng(devices=devices), zero_modules.healed():
            healed, healed_error = gradients(model, inputs, params, loss, healer)
    finally:
        for hook in hooks:
            hook.remove()
        recorder.remove()
        restore(buffers)
    dead = [n for n, g in zip(names, plain, strict=True) if not has_gradient(g)]
    revived = {n for n, g in zip(names, healed, strict=True) if has_gradient(g)}
    grads = dict(zip(names, plain, strict=True))
    calls = zero_modules.calls
    why, cut, _ = causes(
        dead, dict(named), grads, recorder.used, recorder.events, revived, error, calls
    )
    reached = None if healed_error is not None or healer.lost else healer.reached
    found = findings(recorder.events, reached, cut)
    zeroed = {c.module: c.op for c in calls if c.cause in why.values()}
    return Report(found, dead, error, len(names), why, modules, zeroed)


def findings(events: list[Event], reached: dict | None, cut: dict) -> list[Finding]:
    """One finding per call site of the hard events, in the order they made a float result.

    Its status: ``handled by the model`` when the call runs in the model's own
    ``autograd.Function`` or the model routes a gradient from its result to its input
    (``surrogate.audit.routes``); else ``cut`` when a gradient reached one of its healed results
    (``reached``; None when the healed pass failed); else ``does not reach the loss``.
    """
    groups: dict = {}
    for event in sorted((e for e in events if e.hard), key=lambda e: e.heals[0]):
        groups.setdefault(event.key, []).append(event)
    out = []
    for key, group in groups.items():
        own = next((e.own for e in group if e.own), None)
        if own is not None or any(e.routed for e in group):
            status = HANDLED
        elif reached is None or reached.get(key):
            status = CUT
        else:
            status = UNREACHED
        first = group[0]
        unfollowed = next((e.unfollowed for e in group if e.unfollowed), None)
        out.append(
            Finding(first.op, first.module, sum(e.numel for e in group), len(group), status,
                    tuple(cut.get(key, ())), first.site, own, unfollowed)
        )  # fmt: skip
    return out


def restore(buffers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buffer, saved in buffers:
            buffer.copy_(saved)


make_callable(__name__)

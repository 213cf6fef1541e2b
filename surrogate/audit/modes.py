"""The two torch function modes behind ``surrogate.audit``.

``Recorder`` leaves every result PyTorch's and writes down, in the order the forward made them,
``Event``s: each call of a hard op whose float input requires grad (``surrogate.audit.flow``)
while grad is enabled or within the forward of the model's own ``autograd.Function`` (not the
library's), and each other call that reads a grad-carrying tensor and returns none (``detach``,
an integer cast, a call under ``torch.no_grad``): a cut it does not recognise. It numbers every
call; a hard op's event records the calls where it made a float result (a hard step, a one-hot,
a lookup).

``Healer`` is an ``Intercept`` that replays that record: on the same forward (same calls, same
values) it makes each such result straight-through to the hard op's input, so a second backward
shows what the hard ops cut off, and hooks on the healed results show whether the loss reaches
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from surrogate.audit.flow import (
    HardCall,
    fate,
    in_place,
    index_of,
    pass_gradient_to,
    recognise,
    tensor_args,
    written,
)
from surrogate.audit.followable import INDEX, after, is_lost, lost
from surrogate.audit.functions import running_function
from surrogate.audit.routes import Routes
from surrogate.estimators import estimator
from surrogate.intercept import Intercept
from surrogate.intercept.sites import Modules, Site
from surrogate.op_estimators import OpEstimator
from surrogate.torch_calls import arg, bypass, bypassed

Tensor = torch.Tensor
Key = Site | tuple[str, str]  # an event's call site, or (module, op) where it has none


def nonzero(g: Tensor | None) -> bool:
    return g is not None and bool(g.ne(0).any())


def call_name(func) -> str:
    """``detach`` for ``Tensor.detach``, ``data`` for the ``x.data`` getter."""
    name = getattr(func, "__name__", repr(func))
    if name in ("__get__", "__set__"):
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name.strip("_") or name


@dataclass(eq=False)
class Event:
    """A hard-op call (``kind`` zero, mask or index) or an unrecognised ``cut``: its op, the
    module that called it and its call ``site``, the elements it decides (``numel``), the
    grad-carrying tensors it read, whether it made a float result (``hard``), the model's own
    ``autograd.Function`` it ran in (``own``), and whether the model routes a gradient from its
    result to its input (``routed``, see ``surrogate.audit.routes``)."""

    op: str
    kind: str
    module: str
    inputs: list[Tensor]
    numel: int = 0
    hard: bool = False
    site: Site | None = None
    own: str | None = None
    routed: bool = False
    unfollowed: str | None = None  # the call where intercept loses an index on its way
    created: int = -1  # the call number that made it
    heals: list[int] = field(default_factory=list)  # call numbers of the float results

    @property
    def key(self) -> Key:
        return self.site if self.site is not None else (self.module, self.op)


def library_function(cls: type) -> bool:
    """A Function of torch or of this library (not of its training app's models)."""
    package = cls.__module__.split(".")
    return package[0] in ("torch", "surrogate") and package[:2] != ["surrogate", "training"]


class Recorder(TorchFunctionMode):
    """Writes down the ``events`` of one forward, the calls to heal (``plan``: call number ->
    the events whose float results it made) and, for each parameter in ``params`` (id -> name),
    the first call that read it (``used``); ``routes`` follows each hard result to where the model
    meets it with a gradient. ``remove()`` drops its gradient hooks."""

    def __init__(self, where: Callable[[], str], params: dict[int, str], modules: Modules):
        super().__init__()
        self.where, self.params, self.modules = where, params, modules
        self.events: list[Event] = []
        self.plan: dict[int, tuple[object, list[Event]]] = {}
        self.used: dict[str, str] = {}
        self.tracked = WeakTensorKeyDictionary()  # mask or index -> the events it comes from
        self.states = WeakTensorKeyDictionary()  # tensor made from an index -> followable.after
        self.routes = Routes()
        self.count = 0

    def remove(self) -> None:
        self.routes.remove()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if bypassed():
            return func(*args, **kwargs)
        n, self.count = self.count, self.count + 1
        tensors = tensor_args(args, kwargs)
        for t in tensors:
            name = self.params.get(id(t))
            if name is not None and name not in self.used:
                self.used[name] = call_name(func)
        call, own = None, None
        if torch.is_grad_enabled():
            call = recognise(func, args, kwargs)
        elif any(t.is_floating_point() for t in tensors):
            owner = running_function()
            if owner is not None and library_function(owner):
                return func(*args, **kwargs)
            if owner is not None:  # the model's own Function: it defines the gradient
                call, own = recognise(func, args, kwargs, inside_function=True), owner.__name__
        if call is not None:
            return self.hard_op(n, call, func, args, kwargs, own)
        out = func(*args, **kwargs)
        result = written(func, args, kwargs, out)
        sources = {id(e): e for t in tensors for e in self.tracked.get(t, ())}
        if sources:
            self.follow(n, func, list(sources.values()), result)
            self.follow_index(func, args, kwargs, tensors, result)
        elif self.cuts(tensors, out):
            inputs = [t for t in tensors if t.requires_grad]
            self.events.append(Event(call_name(func), "cut", self.where(), inputs, created=n))
        self.routes.meet(func, args, tensors, result)
        return out

    def hard_op(self, n: int, call: HardCall, func, args, kwargs, own: str | None):
        site = self.modules.site()
        event = Event(call.op, call.kind, self.where(), call.inputs, created=n, site=site, own=own)
        out = func(*args, **kwargs)
        self.events.append(event)
        if call.kind == "mask":
            event.numel = out.numel()  # the broadcast shape
            self.tracked[out] = (event,)
        else:
            event.numel = call.inputs[0].numel()
            if call.kind == "index":
                self.tracked[index_of(call, out)] = (event,)
                k = arg(args, kwargs, 1, "k") if call.op == "topk" else 1
                self.states[index_of(call, out)] = INDEX if k == 1 else lost(f"topk(k={k})")
                if isinstance(out, tuple) and out[0].requires_grad:  # max, min, topk's values
                    self.routes.watch_values(event, out[0])
            else:
                self.heal(n, func, event, written(func, args, kwargs, out))
        return out

    def follow(self, n: int, func, sources: list[Event], result) -> None:
        kept = []
        for event in sources:
            what = fate(event.kind, result)
            if what == "follow":
                kept.append(event)
            elif what == "hard":
                self.heal(n, func, event, result)
        if kept:
            self.tracked[result] = tuple(kept)

    def follow_index(self, func, args, kwargs, tensors: list[Tensor], result) -> None:
        """Whether intercept still follows the index events' indices (``followable``): a float
        result made where it does not marks their events ``unfollowed``."""
        states = {id(t): self.states[t] for t in tensors if t in self.states}
        if not states or not isinstance(result, Tensor):
            return
        floating = result.is_floating_point() or result.is_complex()
        state = after(func, args, kwargs, states, call_name(func), floating)
        if not floating:
            self.states[result] = state
            return
        if is_lost(state):
            for t in tensors:
                for event in self.tracked.get(t, ()):
                    if event.kind == "index" and event.unfollowed is None:
                        event.unfollowed = state

    def heal(self, n: int, func, event: Event, result: Tensor) -> None:
        event.hard = True
        event.heals.append(n)
        self.plan.setdefault(n, (func, []))[1].append(event)
        self.routes.add(event, result)

    @staticmethod
    def cuts(tensors: list[Tensor], out) -> bool:
        """A grad-carrying input and tensor results of which none carries a gradient."""
        results = tensor_args((out,), {})
        return (
            bool(results)
            and any(t.requires_grad for t in tensors)
            and not any(r.requires_grad for r in results)
        )


class Healer(Intercept):
    """Replays a ``Recorder``'s plan on the same forward: each hard op's float results, straight-
    through to its input (``surrogate.audit.flow.pass_gradient_to``; sign, round, floor, ceil
    and heaviside by ``Intercept``'s own handlers with the ``ste`` estimator). ``reached[key]``
    says whether a non-zero gradient reached a healed result of the events with that key.
    ``lost`` turns True (and healing stops) if the forward calls differ from the recorded ones."""

    def __init__(self, plan: dict[int, tuple[object, list[Event]]], events: list[Event]):
        ste = OpEstimator(estimator("ste"), False)
        super().__init__(dict.fromkeys(("step", "sign", "round"), ste))
        self.plan = plan
        made = {id(e) for _, es in plan.values() for e in es}
        self.made = {e.created: e for e in events if id(e) in made}
        self.sources: dict[int, Tensor] = {}  # id(event) -> the tensor its gradient goes to
        self.reached: dict[Key, bool] = {}
        self.lost = False
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if bypassed():
            return func(*args, **kwargs)
        n, self.count = self.count, self.count + 1
        if self.lost or not torch.is_grad_enabled():
            return func(*args, **kwargs)
        event = self.made.get(n)
        if event is not None:
            call = recognise(func, args, kwargs)
            if call is None or call.op != event.op:
                return self.lose(func, args, kwargs)
            if call.kind != "zero":
                self.sources[id(event)] = call.source()
        planned = self.plan.get(n)
        if planned is None:
            return func(*args, **kwargs)
        if planned[0] is not func:
            return self.lose(func, args, kwargs)
        events = planned[1]
        if events[0].kind == "zero":
            return self.zero(func, args, kwargs, events[0])
        out = func(*args, **kwargs)
        result = written(func, args, kwargs, out)
        healed = result
        for e in events:
            healed = pass_gradient_to(healed, self.sources[id(e)])
            self.watch(e, healed)
        if in_place(func):
            result.copy_(healed)
            return out
        return healed

    def lose(self, func, args, kwargs):
        self.lost = True
        return func(*args, **kwargs)

    def zero(self, func, args, kwargs, event: Event):
        """A zero-gradient op (sign, round, floor, trunc, heaviside... and their in-place forms)
        through ``Intercept``'s own handler, with ``ste``."""
        with bypass():
            out = self.handlers[func](func, args, kwargs)
        if isinstance(out, Tensor) and out.requires_grad:
            self.watch(event, out)
        return out

    def watch(self, event: Event, healed: Tensor) -> None:
        key = event.key
        self.reached.setdefault(key, False)

        def hook(g):
            self.reached[key] = self.reached[key] or nonzero(g)

        healed.register_hook(hook)

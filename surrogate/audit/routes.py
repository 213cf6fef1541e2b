"""Whether a model routes a gradient from a hard op's result to its input itself.

A hard op's result y carries no gradient. Every tensor computed from it is followed (``derived``);
where one meets a grad-carrying tensor the result may carry a gradient the model routes for y.
It does, and the op is "handled by the model", when a non-zero gradient reaches one of these in
the backward as written and a non-zero gradient flows on from there into the op's input x (node
hooks on the edges where the way back enters it):

* a straight-through: a tensor with y's values that carries a gradient, made by the meeting or the
  call after it (``y + s - s.detach()``, ``s + (y - s).detach()``, ``z + (z_q - z).detach()``),
  whose gradient reaches x or a tensor x is computed from;
* a read by an index (``probs.gather(-1, i)``, a router's gate), or the values of ``max``, ``min``
  or ``topk``: the gradient reaches x itself;
* a product ``sign(x) * g(x)`` with g zero on the elements nearest the jump and non-zero on all
  the others (a soft threshold ``sign(w) * relu(|w| - t)``, continuous across the jump): the
  gradient reaches x itself.

Any other meeting (``spk * thr`` in a reset, ``decoder(one_hot)``) uses y's values with a
gradient to something else: the op is cut there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch.autograd.graph import Node
from torch.utils.weak import WeakTensorKeyDictionary

if TYPE_CHECKING:
    from surrogate.audit.modes import Event

Tensor = torch.Tensor
HELD = 8  # hard values kept per op call, to compare straight-through results with
PRODUCTS = frozenset((torch.mul, torch.multiply, Tensor.mul, Tensor.__mul__, Tensor.__rmul__))
JUMP_AT_ZERO = ("sign", "sgn", "heaviside")


def unique(events: Iterable) -> tuple:
    return tuple({id(e): e for e in events}.values())


def nonzero(g: Tensor | None) -> bool:
    return g is not None and bool(g.ne(0).any())


def same_values(t: Tensor, held: list[Tensor]) -> bool:
    """Whether ``t`` has the values of one of ``held`` (to float rounding of a straight-through
    ``y + s - s``)."""
    t = t.detach()
    atol = 1e-4 * (1.0 + float(t.abs().max())) if t.numel() else 0.0
    return any(
        v.shape == t.shape and v.dtype == t.dtype and torch.allclose(t, v, rtol=1e-4, atol=atol)
        for v in held
    )


def continuous(x: Tensor, g: Tensor) -> bool:
    """Whether ``g`` is 0 on the elements of x nearest 0 and non-zero on all the others."""
    if g.shape != x.shape:
        return False
    zero = g.detach() == 0
    if not bool(zero.any()) or bool(zero.all()):
        return False
    distance = x.detach().abs()
    return bool(distance[zero].max() < distance[~zero].min())


def entries(node: Node | None, inputs: list[Tensor], itself: bool) -> list[tuple[Node, int]]:
    """The edges by which the backward from ``node`` enters one of ``inputs`` (``itself``) or a
    tensor one of them is computed from: (a node, the index of its input that is one)."""
    targets: set[Node] = set()
    leaves: set[int] = set()
    for x in inputs:
        if x.grad_fn is None:
            leaves.add(id(x))
        else:
            targets.add(x.grad_fn)
    if not itself:
        stack = list(targets)
        while stack:
            for child, _ in stack.pop().next_functions:
                if child is not None and child not in targets:
                    targets.add(child)
                    stack.append(child)

    def target(child) -> bool:
        variable = getattr(child, "variable", None)
        return child in targets or (variable is not None and id(variable) in leaves)

    found: list[tuple[Node, int]] = []
    seen: set[Node] = set()
    walk = [node]
    while walk:
        current = walk.pop()
        if current is None or current in seen or target(current):
            continue
        seen.add(current)
        for i, (child, _) in enumerate(current.next_functions):
            if child is not None and target(child):
                found.append((current, i))
            else:
                walk.append(child)
    return found


class Routes:
    """Follows the hard results of a ``Recorder``'s forward; ``settle()``, after the backward,
    sets ``routed`` on the events whose result the model routes a gradient from."""

    def __init__(self) -> None:
        self.derived = WeakTensorKeyDictionary()  # a tensor computed from hard results -> events
        self.meetings = WeakTensorKeyDictionary()  # a meeting's result -> events
        self.outputs = WeakTensorKeyDictionary()  # a zero-gradient op's own result -> event
        self.held: dict[int, list[Tensor]] = {}  # id(event) -> its hard values
        self.candidates: list[tuple[Event, dict[str, bool]]] = []  # (event, what its hooks saw)
        self.handles: list = []

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def hold(self, event: Event, t: Tensor) -> None:
        held = self.held.setdefault(id(event), [])
        if len(held) < HELD:
            held.append(t.detach().clone())

    def add(self, event: Event, result) -> None:
        """A hard op's float result (``sign(x)``, ``mask.float()``, ``one_hot(i).float()``,
        ``codebook[i]``)."""
        if not isinstance(result, Tensor) or not result.is_floating_point():
            return
        self.derived[result] = unique((*self.derived.get(result, ()), event))
        self.hold(event, result)
        if event.kind == "zero":
            self.outputs[result] = event
        elif event.kind == "index" and result.requires_grad:  # a read: probs.gather(-1, i)
            self.meetings[result] = (event,)
            self.watch(event, result, itself=True)

    def watch_values(self, event: Event, values: Tensor) -> None:
        """The values of ``max``, ``min`` or ``topk``: the op's own output, with x's gradient."""

        def hook(g):
            event.routed = event.routed or nonzero(g)

        self.handles.append(values.register_hook(hook))

    def watch(self, event: Event, t: Tensor, itself: bool) -> None:
        """A candidate route from ``t`` to the op's input: taken when a non-zero gradient reaches
        ``t`` and a non-zero gradient enters the input (or what it is computed from) on the way
        back from ``t`` (a router's gate of one top-k value, softmax's constant 1, enters 0)."""
        seen = {"fed": False, "entered": False}

        def hook(g):
            seen["fed"] = seen["fed"] or nonzero(g)

        self.handles.append(t.register_hook(hook))
        for node, i in entries(t.grad_fn, event.inputs, itself):

            def enter(grad_inputs, grad_outputs, i=i):
                seen["entered"] = seen["entered"] or nonzero(grad_inputs[i])

            self.handles.append(node.register_hook(enter))
        self.candidates.append((event, seen))

    def meet(self, func, args: tuple, tensors: list[Tensor], result) -> None:
        """A call that read ``tensors`` and made ``result``: follow what hard results it reads."""
        inputs = [t for t in tensors if t in self.derived]
        if not inputs or not isinstance(result, Tensor) or not result.is_floating_point():
            return
        events = unique(e for t in inputs for e in self.derived[t])
        self.derived[result] = unique((*self.derived.get(result, ()), *events))
        if not (result.requires_grad and torch.is_grad_enabled()):
            for event in events:
                self.hold(event, result)
            return
        hard = unique(e for t in inputs if not t.requires_grad for e in self.derived[t])
        met = unique(e for t in inputs if t in self.meetings for e in self.meetings[t])
        if hard:
            self.meetings[result] = hard
        for event in unique((*hard, *met)):
            if same_values(result, self.held.get(id(event), [])):
                self.watch(event, result, itself=False)
        if func in PRODUCTS and len(args) >= 2:
            self.product(args[0], args[1], result)

    def product(self, a, b, result: Tensor) -> None:
        """``sign(x) * g``: watched when g vanishes around the jump (``continuous``)."""
        for y, g in ((a, b), (b, a)):
            event = self.outputs.get(y) if isinstance(y, Tensor) else None
            if event is None or event.op not in JUMP_AT_ZERO or not isinstance(g, Tensor):
                continue
            if g.requires_grad and continuous(event.inputs[0], g):
                self.watch(event, result, itself=True)

    def settle(self) -> None:
        for event, seen in self.candidates:
            event.routed = event.routed or (seen["fed"] and seen["entered"])

"""Which op cut each dead parameter, read off the autograd graph of the forward as written.

A recorded call cuts parameter p when p lies upstream of the tensors it read (a walk down their
``grad_fn`` to the ``AccumulateGrad`` nodes). A dead parameter goes to the first hard op (in
forward order) upstream of which it lies, if healing the hard ops revives it (or its gradient is
None and nothing else cut it); else, if its gradient is a tensor of zeros, to an unrecognised op
(the path to the loss is there, its derivative is zero); else to the first other cut (``detach``,
an integer cast, a call under ``no_grad``, a comparison used as a mask). A call of one of the
library's own modules with the estimator ``none`` (``surrogate.audit.library``) counts as a hard
op here (``zero gradient by surrogate.Sign at <module> (estimator 'none')``) when the healed pass,
which gives it ``ste``, revives the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from surrogate.audit.findings import PYTORCH_GIVES, label
from surrogate.audit.library import ModuleCall
from surrogate.audit.modes import Event, Key

Tensor = torch.Tensor


class Upstream:
    """``upstream(tensors)``: the names of the ``targets`` (id(param) -> name) they depend on."""

    def __init__(self, targets: dict[int, str]):
        self.targets = targets
        self.memo: dict = {}

    def __call__(self, tensors: Iterable[Tensor]) -> frozenset[str]:
        found: set[str] = set()
        for t in tensors:
            if t.grad_fn is None:
                if id(t) in self.targets:
                    found.add(self.targets[id(t)])
            else:
                found |= self.node(t.grad_fn)
        return frozenset(found)

    def node(self, root) -> frozenset[str]:
        stack = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            if node in self.memo:
                continue
            nexts = [f for f, _ in node.next_functions if f is not None]
            if not children_done:
                stack.append((node, True))
                stack.extend((f, False) for f in nexts if f not in self.memo)
                continue
            names = set().union(*(self.memo[f] for f in nexts))
            variable = getattr(node, "variable", None)
            if variable is not None and id(variable) in self.targets:
                names.add(self.targets[id(variable)])
            self.memo[node] = frozenset(names)
        return self.memo[root]


def causes(
    dead: list[str],
    params: dict[str, Tensor],
    grads: dict[str, Tensor | None],
    used: dict[str, str],
    events: list[Event],
    revived: set[str],
    error: str | None,
    calls: Sequence[ModuleCall] = (),
) -> tuple[dict[str, str], dict[Key, list[str]], set[Key]]:
    """Each dead parameter's cause (see ``surrogate.audit.findings.Report``), the dead
    parameters each hard op's key (``Event.key``) cuts, and the keys of the hard ops that some dead
    parameter lies upstream of. ``calls``: those of the library's modules with estimator
    ``none`` (``surrogate.audit.library``)."""
    upstream = Upstream({id(params[n]): n for n in dead if n in used})
    reach = [upstream(e.inputs) for e in events]
    module_reach = [upstream(c.inputs) for c in calls]
    why: dict[str, str] = {}
    cut: dict[Key, list[str]] = {}
    behind: set[Key] = set()
    raiser = next((e for e in events if e.hard and PYTORCH_GIVES[e.op] == "error"), None)
    for name in dead:
        if name not in used:
            why[name] = "not used in the forward"
            continue
        hits = [e for e, r in zip(events, reach, strict=True) if name in r]
        behind.update(e.key for e in hits if e.hard)
        hard = next((e for e in hits if e.hard), None)
        other = next((e for e in hits if not e.hard), None)
        module = next((c for c, r in zip(calls, module_reach, strict=True) if name in r), None)
        if module is not None and hard is not None and hard.created < module.created:
            module = None  # a torch hard op comes first
        if error is not None and raiser is not None:
            why[name] = f"cut by {label(raiser.op, raiser.module)}, whose backward raised"
            cut.setdefault(raiser.key, []).append(name)
        elif error is not None:
            why[name] = "backward raised"
        elif module is not None and name in revived:
            why[name] = module.cause
        elif hard is not None and (name in revived or (other is None and grads[name] is None)):
            why[name] = f"cut by {label(hard.op, hard.module)}"
            cut.setdefault(hard.key, []).append(name)
        elif grads[name] is not None:  # on the loss's path, but the gradient arrives as zeros
            why[name] = f"unrecognised op: gradient all zero (first read by {used[name]})"
        elif other is not None:
            kind = "" if other.kind == "cut" else ", used as a mask or an index"
            why[name] = f"unrecognised op: {label(other.op, other.module)}{kind}"
        else:
            why[name] = f"not on the loss's path (read by {used[name]})"
    return why, cut, behind

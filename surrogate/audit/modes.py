"""The two torch function modes behind ``surrogate.audit``.

``Recorder`` notes every hard op whose input carries a gradient, leaving every result PyTorch's.
``Healer`` is an ``Intercept`` that makes every hard op the recorder knows straight-through, so a
second backward shows which parameters the hard ops cut off.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from surrogate.audit.findings import COMPARISONS, PYTORCH_GIVES
from surrogate.estimators import estimator
from surrogate.hardops import ROUND, STEP
from surrogate.intercept import Intercept, SurrogateFunction
from surrogate.torch_calls import CASTS, SHAPE_OPS, bypassed, first_arg, is_real

# torch.<name> and Tensor.<name> for every op the audit knows, and the dunder forms of comparisons.
HARD_OPS = {
    getattr(owner, name): name
    for name in PYTORCH_GIVES
    for owner in (torch, torch.Tensor)
    if hasattr(owner, name)
}
HARD_OPS.update({getattr(torch.Tensor, f"__{name}__"): name for name in COMPARISONS})
HARD_OPS.update(  # the in-place forms, x.sign_() and friends, under their op's name
    {getattr(torch.Tensor, f"{n}_"): n for n in PYTORCH_GIVES if hasattr(torch.Tensor, f"{n}_")}
)
WHERE = (torch.where, torch.Tensor.where)


def condition(func, args: tuple, kwargs: dict):
    """The condition of ``torch.where(condition, a, b)`` or ``a.where(condition, b)``."""
    if func is torch.where:
        return args[0] if args else kwargs.get("condition")
    return args[1] if len(args) > 1 else kwargs.get("condition")


def constant(out) -> bool:
    """A float result that carries no gradient: where a mask picked constants, a hard step."""
    return isinstance(out, torch.Tensor) and out.is_floating_point() and not out.requires_grad


def grad_inputs(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The positional tensor inputs that carry a gradient (none when grad is disabled)."""
    if not torch.is_grad_enabled():
        return []
    inputs = [*args[:2], kwargs.get("input"), kwargs.get("values"), kwargs.get("other")]
    return [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]


class Recorder(TorchFunctionMode):
    """Calls ``note(op, numel)`` for each hard op on the gradient path; comparisons only once
    their boolean result is cast to a float dtype (possibly after views), or picks between
    constants in ``torch.where`` (``torch.where(x > 0, 1.0, 0.0)``)."""

    def __init__(self, note: Callable[[str, int], None]):
        super().__init__()
        self.note = note
        self.masks = WeakTensorKeyDictionary()  # comparison result -> [op, numel, noted]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if bypassed():
            return out
        op = HARD_OPS.get(func)
        if op is not None:
            inputs = grad_inputs(args, kwargs)
            if inputs and op in COMPARISONS:
                self.masks[out] = [op, inputs[0].numel(), False]
            elif inputs:
                self.note(op, inputs[0].numel())
        elif func in SHAPE_OPS or func in CASTS or func in WHERE:
            src = condition(func, args, kwargs) if func in WHERE else first_arg(args, kwargs)
            mask = self.masks.get(src) if isinstance(src, torch.Tensor) else None
            if mask is None or not isinstance(out, torch.Tensor):
                return out
            if func in WHERE and not constant(out):
                return out  # a mask: the gradient flows through the chosen values
            if func in WHERE or (func in CASTS and out.is_floating_point()):
                self.once(mask)
            else:
                self.masks[out] = mask
        return out

    def once(self, mask: list) -> None:
        if not mask[2]:
            mask[2] = True
            self.note(mask[0], mask[1])


class Healer(Intercept):
    """Every op the recorder knows, straight-through: the four of ``intercept`` plus floor, ceil,
    trunc, argmin, and comparisons cast to a float dtype or picking constants in ``torch.where``
    (gradient to a − b)."""

    def __init__(self):
        ste = (estimator("ste"), False)
        super().__init__(dict.fromkeys(("step", "sign", "round", "argmax"), ste))
        names = ("floor", "ceil", "trunc", "fix")
        self.handle([f for f, n in HARD_OPS.items() if n in names], self.straight)
        self.handle([f for f, n in HARD_OPS.items() if n in COMPARISONS], self.compare)
        self.handle(WHERE, self.where)
        self.diffs = WeakTensorKeyDictionary()  # comparison result -> a - b

    def straight(self, func, args, kwargs):
        return self.scalar(ROUND, "round", func, args, kwargs)

    def compare(self, func, args, kwargs):
        out = func(*args, **kwargs)
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        if grad_inputs(args, kwargs) and all(is_real(t) or not torch.is_tensor(t) for t in (a, b)):
            mask = out.detach()  # a new reference: the weak maps' keys stay weak

            def diff():
                return a - b

            self.diffs[out] = diff
            self.values[out] = lambda dtype: self.straight_to(mask.shape, diff, mask.to(dtype))
        return out

    def where(self, func, args, kwargs):
        out = func(*args, **kwargs)
        cond = condition(func, args, kwargs)
        diff = self.diffs.get(cond) if isinstance(cond, torch.Tensor) else None
        if diff is None or not constant(out) or not torch.is_grad_enabled():
            return out
        return self.straight_to(out.shape, diff, out.clone())

    def straight_to(self, shape, diff, exact):
        """``exact``, with the gradient passed straight on to ``diff()`` (broadcast to shape)."""
        est = self.ops["step"][0]
        return SurrogateFunction.apply(diff().expand(shape), STEP, est, False, lambda: exact, 1.0)

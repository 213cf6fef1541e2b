"""The autograd functions behind ``surrogate.intercept``: PyTorch's forward, a surrogate backward.

``SurrogateFunction`` gives a hard op's exact output the estimator's backward; ``HeavisideFunction``
does so for ``torch.heaviside`` and its ``values``; ``Attach`` joins a step (or a one-hot) to a
result computed from it: out keeps its values and its own gradient, and the step s receives
``to_s(g)``, the derivative of out in s applied to g (for out = b + s·(a − b), g·(a − b)).
"""

from __future__ import annotations

import torch

from surrogate.hardops import STEP
from surrogate.torch_calls import bypass


class SurrogateFunction(torch.autograd.Function):
    """Forward ``exact()`` (PyTorch's own output) or, if None, the estimator's; backward the
    estimator's ``grad``. ``scale`` runs the op on x·scale and divides the output by it
    (``torch.round(x, decimals=d)`` is round(x·10^d)/10^d, whose derivative is p at x·10^d)."""

    @staticmethod
    def forward(ctx, x, op, est, relaxed, exact, scale):
        with bypass():
            out, saved = est.forward(op, x if scale == 1 else x * scale, relaxed)
            if exact is not None:
                out = exact()
            elif scale != 1:
                out = out / scale
        ctx.save_for_backward(*saved)
        ctx.op, ctx.est, ctx.dtype = op, est, x.dtype
        return out

    @staticmethod
    def backward(ctx, g):
        grad = ctx.est.grad(ctx.op, g, *ctx.saved_tensors).to(ctx.dtype)
        return grad, None, None, None, None, None


class HeavisideFunction(torch.autograd.Function):
    """``torch.heaviside(x, values)`` (or step's relaxed forward) with step's backward for x and
    the exact 1[x = 0] for ``values``; x and values come broadcast to one shape."""

    @staticmethod
    def forward(ctx, x, values, est, relaxed):
        with bypass():
            out, saved = est.forward(STEP, x, relaxed)
            if not relaxed:
                out = torch.heaviside(x, values)
        at_zero = (x == 0,) if ctx.needs_input_grad[1] and not relaxed else ()
        ctx.save_for_backward(*at_zero, *saved)
        ctx.est, ctx.dtype, ctx.has_zero = est, x.dtype, bool(at_zero)
        return out

    @staticmethod
    def backward(ctx, g):
        saved = ctx.saved_tensors
        at_zero, saved = (saved[0], saved[1:]) if ctx.has_zero else (None, saved)
        gx = ctx.est.grad(STEP, g, *saved).to(ctx.dtype) if ctx.needs_input_grad[0] else None
        gv = torch.where(at_zero, g, 0.0) if at_zero is not None else None
        return gx, gv, None, None


class Attach(torch.autograd.Function):
    """A copy of ``out`` (its values bit for bit); backward: g to ``out``, ``to_s(g)`` to ``s``.

    ``out`` is a result PyTorch computed from a step or one-hot s, with its own gradient to the
    other inputs; ``to_s(g)`` = (∂out/∂s)ᵀ·g adds the path through s, which PyTorch cuts.
    """

    @staticmethod
    def forward(ctx, out, s, to_s):
        ctx.to_s = to_s
        with bypass():
            return out.clone()

    @staticmethod
    def backward(ctx, g):
        with bypass():
            gs = ctx.to_s(g) if ctx.needs_input_grad[1] else None
        return g, gs, None


def jump_to(s: torch.Tensor, jump: torch.Tensor):
    """``to_s`` for out = b + s·jump elementwise, s broadcast to out: g·jump summed to s."""
    return lambda g: (g * jump).sum_to_size(s.shape).to(s.dtype)


def attach_jump(out: torch.Tensor, s: torch.Tensor, jump: torch.Tensor) -> torch.Tensor:
    """``out`` = b + s·jump by value, with ∂out/∂s = jump added to out's own gradient."""
    return Attach.apply(out, s, jump_to(s, jump.detach()))

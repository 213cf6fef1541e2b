"""A LIF layer's whole time loop as one autograd node: the fast path of ``surrogate.LIF``.

Autograd run step by step records a node per op per step and keeps every intermediate alive for
backward. ``LIFScan`` runs the same dynamics (``surrogate.neurons``) without a graph and writes
backward's recurrence by hand. Its forward keeps, per step, only what the estimator's backward
needs (the bump's input z_t = v_t − θ for a smooth bump, a one-byte mask for ``clipped_ste``,
nothing for ``ste`` and ``none``), plus the spikes as one byte each where the reset needs them.
With g_t the gradient reaching s_t from above, m_t the one reaching u_t (``return_membrane``), and
e_t = ∂L/∂u_t, backward runs t = T … 1 (e_T = m_T):

    subtract:  ∂L/∂s_t = g_t − θ·e_t              ∂u_t/∂v_t = 1
    zero:      ∂L/∂s_t = g_t − v_t·e_t            ∂u_t/∂v_t = 1 − s_t
    none:      ∂L/∂s_t = g_t                      ∂u_t/∂v_t = 1
    ∂L/∂v_t = est.grad(∂L/∂s_t, z_t) + e_t·∂u_t/∂v_t  =  ∂L/∂x_t
    e_{t−1} = β·∂L/∂v_t + m_{t−1}

(``detach_reset`` drops the reset's term in ∂L/∂s_t.) The spikes are the estimator's hard forward
of z_t, as the step-by-step path computes them, so both paths give the same spikes bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from surrogate.estimators import Estimator
from surrogate.hardops import STEP

Tensor = torch.Tensor


def scan_applies(est: Estimator, relaxed: bool) -> bool:
    """Whether ``LIFScan`` computes what the step-by-step loop computes with ``est``: a hard
    forward without sampling, so each step's spike and saved tensors come from ``est.forward``
    alone."""
    return not relaxed and not est.stochastic


class LIFScan(torch.autograd.Function):
    """``(spikes, membranes or None) = LIFScan.apply(x, est, beta, threshold, reset, detach,
    keep_membrane)`` with β and θ fixed numbers; see the module docstring."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, est: Estimator, beta: float, threshold: float, reset: str,
                detach: bool, keep_membrane: bool):  # fmt: skip
        steps = x.shape[0]
        spikes = torch.empty_like(x)
        membranes = torch.empty_like(x) if keep_membrane else None
        saved: list[Tensor] = []  # the estimator's tensors, per_step of them per step
        zs: list[Tensor] = []  # z_t, kept for the zero reset's ∂L/∂s_t (shared with saved's)
        u = torch.zeros_like(x[0])
        v = torch.empty_like(u)  # v and u live in two buffers, reused every step
        plain = type(est).forward is Estimator.forward  # the hard step, then est.save
        for t in range(steps):
            torch.add(x[t], u, alpha=beta, out=v)  # as the step-by-step loop rounds β·u + x
            z = v - threshold
            if plain:  # STEP.exact, written straight into the output
                s = torch.clamp(z, 0, 1, out=spikes[t]).ceil_().abs_()
                saved += est.save(STEP, z)
            else:
                s, kept = est.forward(STEP, z, False)
                saved += kept
                spikes[t] = s
            if reset == "subtract":
                torch.sub(v, s, alpha=threshold, out=u)  # θ·s is exact: s is 0 or 1
            elif reset == "zero":
                torch.addcmul(v, v, s, value=-1.0, out=u)
                zs.append(z)
            else:
                u, v = v, u
            if membranes is not None:
                membranes[t] = u
        fired = [spikes.to(torch.bool)] if reset == "zero" else []
        if detach or reset != "zero":
            zs = []
        ctx.save_for_backward(*saved, *fired, *zs)
        ctx.config = (est, beta, threshold, reset, detach, steps, len(saved) // max(steps, 1))
        return spikes, membranes

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spikes: Tensor, grad_membranes: Tensor | None):
        est, beta, threshold, reset, detach, steps, per_step = ctx.config
        tensors = ctx.saved_tensors
        saved, rest = tensors[: per_step * steps], tensors[per_step * steps :]
        fired = rest[0] if reset == "zero" else None
        zs = rest[1:]
        grad_x = torch.empty_like(grad_spikes)
        g_buffer, e_buffer = torch.empty_like(grad_spikes[0]), torch.empty_like(grad_spikes[0])
        e = None if grad_membranes is None else grad_membranes[-1]  # ∂L/∂u_t; None: zero
        for t in reversed(range(steps)):
            g = grad_spikes[t]
            if e is not None and not detach and reset == "subtract":
                g = torch.sub(g, e, alpha=threshold, out=g_buffer)
            elif e is not None and not detach and reset == "zero":
                g = torch.addcmul(g, zs[t] + threshold, e, value=-1.0, out=g_buffer)
            dv = est.grad(STEP, g, *saved[t * per_step : (t + 1) * per_step])
            if e is None:
                grad_x[t] = dv
            else:
                kept = e.masked_fill(fired[t], 0.0) if fired is not None else e
                dv = torch.add(dv, kept, out=grad_x[t])
            if t:
                e = torch.mul(dv, beta, out=e_buffer)
                if grad_membranes is not None:
                    e.add_(grad_membranes[t - 1])
        return grad_x, None, None, None, None, None, None

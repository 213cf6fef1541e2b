"""Per-layer diagnostics of a network's hard ops, measured on a fixed probe batch.

For every hard-op layer (each ``surrogate.Step``/``Sign``/``Round``/``ArgMax`` module, named by its
path in the network, so a layer keeps its name whatever its op: ``features.3``), with the network in
eval mode (batch-norm
statistics, no sampling):

- ``dead_fraction``: the share of the layer's inputs where the estimator's derivative is below
  ``DEAD_LEVEL`` (1e-3) of its peak. For step, sign and round the derivative is the backward of a
  unit upstream gradient, J·p(offset(x)), and its peak is its largest value over x (``ste``: 1
  everywhere, so never dead; ``none``: 0 everywhere, so every input is dead). For argmax it is
  the diagonal of the estimator's Jacobian, ∂y_i/∂x_i, one value per logit, its peak that of two
  tied logits (softmax: p_i(1 − p_i)/τ, peak 1/(4τ)).
- ``flip_ratio``: the share of the layer's hard decisions (its hard forward of the input; for
  argmax, the index chosen in each group) that changed since the previous measurement: larq's flip
  ratio, applied to activations. Not defined at the first measurement.
- ``grad_norm``: the L2 norm of the gradient of the probe's loss (the task's: the mean
  cross-entropy for classification) with respect to the layer's input, through the network as it
  trains.
- ``grad_cosine``: the cosine between the gradient of that loss with respect to the layer's own
  parameters (those created after the previous hard-op layer, up to this one) through the hard
  network and through the same network relaxed: every hard op running its estimator's smooth
  forward (an estimator without one, such as ``ste``, ``clipped_ste`` or ``none``, is measured
  against ``sigmoid`` for step, sign and round and ``softmax`` for argmax, at their defaults). The
  relaxed network is the reference: 1 means the estimator points where the relaxed network's exact
  gradient does. 0 where either gradient is zero. ``network/grad_cosine`` is the same over all
  parameters.
- ``firing_rate`` (spiking neurons: the ``spike`` of each ``surrogate.LIF``, ``RecurrentLIF``,
  ``ALIF``): the share of the layer's neurons that fire, over every time step and probe example.
  A neuron's spike runs once per time step; its input at every step counts in each measure above.
- ``saturated`` (binary layers): the share of latent weights at BinaryConnect's clip, |w| >= 1;
  ``step`` (quantizers): the step size s. Recorded under the path of the layer's hard op
  (``features.4.binarize/saturated``, ``features.4.weight_quantizer.round/step``), beside the flip
  ratio of its decisions: for weights, the share of signs (or quantized levels) that changed,
  larq's FlipRatio.

Measuring changes nothing in the run: gradients come from ``torch.autograd.grad`` (no ``.grad`` is
written), the global random state is restored, and every module's training flag and estimator are
put back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import surrogate
from surrogate import Estimator, HardOp, OpEstimator, estimator

Loss = Callable[..., torch.Tensor]  # loss(output, target) -> a scalar

DEAD_LEVEL = 1e-3
REFERENCE = {"step": "sigmoid", "sign": "sigmoid", "round": "sigmoid", "argmax": "softmax"}


@dataclass
class Layer:
    """A hard-op module, its path in the network and the parameters it owns."""

    name: str
    module: HardOp
    params: list[nn.Parameter] = field(default_factory=list)

    @property
    def dim(self) -> int | None:
        """The dim an argmax layer reduces (None for step, sign and round)."""
        return self.module.dim if self.module.op_name == "argmax" else None


def hard_layers(model: nn.Module) -> list[Layer]:
    """The hard-op modules of ``model`` in the order ``named_modules`` gives them, each owning the
    parameters of the modules seen since the previous one."""
    layers: list[Layer] = []
    pending: list[nn.Parameter] = []
    for path, module in model.named_modules():
        pending += [p for p in module.parameters(recurse=False) if p.requires_grad]
        if isinstance(module, HardOp):
            layers.append(Layer(path, module, pending))
            pending = []
    return layers


def derivative(op: str, est: Estimator, x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The derivative of ``est`` for the hard op ``op`` at each element of ``x``: the backward of
    a unit gradient, or for argmax (along ``dim``, no sampling) the diagonal of its Jacobian."""
    x = x.detach().requires_grad_()
    with torch.enable_grad():
        if op != "argmax":
            y = getattr(surrogate, op)(x, est)
            return torch.autograd.grad(y, x, torch.ones_like(y))[0]
        y = surrogate.argmax(x, est, dim=dim, training=False)
    diagonal = torch.empty_like(x)
    dim = dim % x.dim()
    for c in range(x.shape[dim]):
        unit = torch.zeros_like(x)
        unit.narrow(dim, c, 1).fill_(1.0)
        (grad,) = torch.autograd.grad(y, x, unit, retain_graph=True)
        diagonal.narrow(dim, c, 1).copy_(grad.narrow(dim, c, 1))
    return diagonal.detach()


@functools.lru_cache(maxsize=256)
def _peak(op: str, est: Estimator, classes: int) -> float:
    """The largest derivative of ``est`` for ``op``: over x in [-8, 8] for step, sign and round;
    at two tied logits out of ``classes`` for argmax (along the last dim)."""
    if op == "argmax":
        x = torch.full((1, classes), -50.0, dtype=torch.float64)
        x[0, :2] = 0.0
        return float(derivative(op, est, x, -1).abs().max())
    x = torch.linspace(-8.0, 8.0, 32001, dtype=torch.float64)
    return float(derivative(op, est, x).abs().max())


def peak(layer: Layer, x: torch.Tensor) -> float:
    """The largest value the layer's derivative takes (for argmax, at two tied logits)."""
    op, est = layer.module.op_name, layer.module.estimator
    return _peak(op, est, x.shape[layer.dim] if op == "argmax" else 0)


def dead_fraction(layer: Layer, x: torch.Tensor) -> float:
    """The share of ``x`` where the derivative is below ``DEAD_LEVEL`` of its peak (all of it
    when the peak is 0, as for ``none``)."""
    d = derivative(layer.module.op_name, layer.module.estimator, x, layer.dim).abs()
    if not d.numel():
        return 0.0
    top = peak(layer, x)
    return float((d < DEAD_LEVEL * top).double().mean()) if top > 0 else 1.0


def decisions(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    """The layer's hard decisions on ``x``: its hard forward, or the chosen index for argmax."""
    if layer.module.op_name == "argmax":
        return x.argmax(layer.module.dim)
    with torch.no_grad():
        return getattr(surrogate, layer.module.op_name)(x, "none")


def cosine(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> float:
    """cos(a, b) of two gradients given as lists of pieces (None: zero); 0 if either is zero."""
    pairs = [(u, v) for u, v in zip(a, b, strict=True) if u is not None and v is not None]
    dot = sum(float((u.double() * v.double()).sum()) for u, v in pairs)
    na = sum(float(u.double().square().sum()) for u in a if u is not None) ** 0.5
    nb = sum(float(v.double().square().sum()) for v in b if v is not None) ** 0.5
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def _set_all(layers: list[Layer], relaxed: bool) -> None:
    for layer in layers:
        module = layer.module
        module.relaxed = False
        if relaxed and not module.estimator.relaxable:
            module.estimator = estimator(REFERENCE[module.op_name])
        module.relaxed = relaxed


def _pass(net: nn.Module, layers: list[Layer], x, y, loss_fn: Loss, relaxed: bool):
    """One forward and backward of the probe's loss: (each layer's input, the gradient reaching
    it, each parameter's gradient by ``id``). A layer called several times in one forward (a
    neuron's spike, once per time step) has its inputs, and their gradients, concatenated along
    the first dim."""
    _set_all(layers, relaxed)
    calls: dict[str, list[torch.Tensor]] = {}
    hooks = [
        layer.module.register_forward_hook(
            lambda m, args, out, name=layer.name: calls.setdefault(name, []).append(args[0])
        )
        for layer in layers
    ]
    try:
        loss = loss_fn(net(x), y)
    finally:
        for hook in hooks:
            hook.remove()
    seen = [(name, t) for name, ts in calls.items() for t in ts if t.requires_grad]
    params = [p for p in net.parameters() if p.requires_grad]
    targets = [t for _, t in seen] + params
    grads = torch.autograd.grad(loss, targets, allow_unused=True) if targets else ()
    pieces: dict[str, list[torch.Tensor | None]] = {}
    for (name, t), g in zip(seen, grads[: len(seen)], strict=True):
        pieces.setdefault(name, []).append(g if g is not None else torch.zeros_like(t))
    inputs = {name: _joined(ts) for name, ts in calls.items()}
    input_grads = {name: _joined(gs) for name, gs in pieces.items()}
    param_grads = dict(zip(map(id, params), grads[len(seen) :], strict=True))
    return inputs, input_grads, param_grads


def _joined(tensors):
    """One tensor from a layer's calls: the only one, or all concatenated along the first dim."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def _layer_values(layer, inp, grad, hard, relaxed, previous, spiking) -> tuple[dict, torch.Tensor]:
    values = {f"{layer.name}/dead_fraction": dead_fraction(layer, inp)}
    now = decisions(layer, inp)
    if layer.name in spiking:
        values[f"{layer.name}/firing_rate"] = float(now.double().mean())
    before = (previous or {}).get(layer.name)
    if before is not None and before.shape == now.shape:
        changed = (before.to(now.device) != now).double().mean()
        values[f"{layer.name}/flip_ratio"] = float(changed)
    values[f"{layer.name}/grad_norm"] = 0.0 if grad is None else float(grad.double().norm())
    own = [id(p) for p in layer.params]
    values[f"{layer.name}/grad_cosine"] = cosine([hard[i] for i in own], [relaxed[i] for i in own])
    return values, now


def measure(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    previous: dict[str, torch.Tensor] | None = None,
    loss: Loss = F.cross_entropy,
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """The diagnostics of ``net`` on the probe ``(x, y)`` and its ``loss(net(x), y)`` (the task's;
    cross-entropy by default): ``({"features.3/dead_fraction": ..., "network/grad_cosine": ...},
    decisions)``; pass the returned decisions back as ``previous`` at the next measurement to get
    the flip ratios."""
    layers = hard_layers(net)
    spiking = spike_paths(net)
    state = [OpEstimator(layer.module.estimator, layer.module.relaxed) for layer in layers]
    modes = [(m, m.training) for m in net.modules()]
    devices = [x.device] if x.device.type == "cuda" else []
    values: dict[str, float] = {}
    now: dict[str, torch.Tensor] = {}
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            net.eval()
            inputs, input_grads, hard = _pass(net, layers, x, y, loss, relaxed=False)
            _, _, relaxed = _pass(net, layers, x, y, loss, relaxed=True)
            _restore(layers, state)
            for layer in layers:
                if layer.name in inputs:
                    inp, grad = inputs[layer.name].detach(), input_grads.get(layer.name)
                    found, now[layer.name] = _layer_values(
                        layer, inp, grad, hard, relaxed, previous, spiking
                    )
                    values.update(found)
    finally:
        _restore(layers, state)
        for module, training in modes:
            module.training = training
    values["network/grad_cosine"] = cosine(list(hard.values()), list(relaxed.values()))
    values.update(statistics(net))
    return values, now


def spike_paths(net: nn.Module) -> set[str]:
    """The paths of the spiking neurons' spikes (``surrogate.LIF`` and its kinds):
    ``{"neurons.0.spike", ...}``."""
    return {f"{path}.spike" if path else "spike" for path, module in net.named_modules()
            if isinstance(module, surrogate.LIF)}  # fmt: skip


def statistics(net: nn.Module) -> dict[str, float]:
    """The weight statistics of every module that has them (``statistics()``: binary layers,
    quantizers), each under the path of the module's hard op: ``{"features.4.binarize/saturated":
    0.02, ...}``."""
    values = {}
    for path, module in net.named_modules():
        own = getattr(module, "statistics", None)
        hard = [name for name, child in module.named_children() if isinstance(child, HardOp)]
        if callable(own) and len(hard) == 1:
            where = f"{path}.{hard[0]}" if path else hard[0]
            values.update({f"{where}/{key}": value for key, value in own().items()})
    return values


def _restore(layers: list[Layer], state: list[OpEstimator]) -> None:
    for layer, (est, relaxed) in zip(layers, state, strict=True):
        layer.module.relaxed = False
        layer.module.estimator = est
        layer.module.relaxed = relaxed

"""The app's convolutional spiking network (``model=csnn``) against the same network written with
snnTorch: the same function (checked first), trained alike on Fashion-MNIST, on CPU.

    python benchmarks/csnn_snntorch.py --check-only
    python benchmarks/csnn_snntorch.py --json benchmarks/results/csnn_snntorch_cpu.json
    python benchmarks/csnn_snntorch.py --epochs 2 --train 2000 --seeds 0

The network is ``SpikingCNN`` with ``configs/model/csnn.yaml``'s defaults on Fashion-MNIST: channels
[16, 32], T = 4 steps, direct encoding (the first conv and batch norm run once, their output shown
at every step), conv3x3 (no bias) – BN – LIF – maxpool2 (ceil_mode) blocks with β = 0.5, θ = 1,
subtract reset (not detached), the arctan surrogate p(r) = (α/2)/(1 + (π·α·r/2)²) with α = 2
(``op=atan``), and the membrane readout: the mean over time of m_t = β·m_{t−1} + W·s_t + b.

- ``ours``: ``surrogate.training.models.csnn.SpikingCNN`` as the app builds it; each
  ``surrogate.LIF`` runs its time loop as one autograd node.
- ``snntorch``: plain PyTorch layers and ``snn.Leaky`` stepped as snnTorch's tutorials step it,
  ``mem = lif.init_leaky()`` then ``for t in range(T): spk, mem = lif(cur[t], mem)``, one loop per
  spiking layer (each batch norm normalizes over all T·B maps at once, as ours does: a batch norm
  inside a per-step loop would take per-step statistics, another function). The readout is
  ``snn.Leaky(beta=0.5, reset_mechanism="none")`` stepped on W·s_t + b, its membrane averaged.
  The hidden layers are ``snn.Leaky(beta=0.5, threshold=1.0, spike_grad=surrogate.atan(alpha=2.0),
  reset_mechanism="none")`` with the subtraction written in the loop, ``mem = mem − spk·θ``:
  snnTorch's own ``reset_mechanism="subtract"`` is other dynamics. With its default
  ``reset_delay=True`` the reset of step t lands at step t + 1, undecayed and detached; with
  ``reset_delay=False`` a neuron whose membrane is still above θ after its reset (v_t > 2θ, which
  batch-normalized currents reach) has θ subtracted again before the next step's threshold test.
  Both are checked below, and differ from ours; the written subtraction is ours exactly.

Before anything is timed: snnTorch's ``atan`` derivative against ours (``surrogate.step(z, "atan",
alpha=2)``) on a grid of z in [−3, 3], float64; then, in float64 on 16 test images, the snnTorch
network with the weights (and batch-norm buffers) of a ``SpikingCNN`` must give its spikes exactly,
its logits (``LOGIT_TOLERANCE``) and the gradients of the cross-entropy for every parameter, in
training mode (batch statistics), and its logits in eval mode. The batch norms' affine parameters
are drawn at random first (γ in [0.5, 2], shift N(0, 0.5²)) so that many neurons fire and some
membranes pass 2θ. snnTorch's ``ATan`` returns float32 spikes whatever its input's dtype, so the
gradient reaching each spike is rounded to float32 (relative 2⁻²⁴ ≈ 6e-8) before the surrogate
scales it: the gradients agree to ``GRAD_TOLERANCE``, not to float64's rounding; the check is run
again with ``ATan`` patched to return its input's dtype (``loop, float64 spikes``), where they
should agree bit for bit. snnTorch's own subtract reset (both ``reset_delay``) is checked alike and
reported, not required to agree.

Training, each implementation from the same initial weights per seed (a ``SpikingCNN`` built after
``torch.manual_seed(seed)``, copied into the snnTorch network) on the same batches: a stratified
sample of ``--train`` training images (scikit-learn's ``train_test_split``, random_state 0, the
same for every seed), standardized with its mean and std; batch 128 reshuffled each epoch (drawn
from the seed); Adam, lr 1e-3, cosine to 0 over the epochs (stepped once per epoch, as the app);
test accuracy on the 10,000 test images after the last epoch, in eval mode. A step is
``zero_grad``, forward, cross-entropy, backward and ``optimizer.step``, timed with
``time.perf_counter``; an implementation's step time is the median over its full batches of 128
(the last, short batch of an epoch left out) over all its seeds. The implementations alternate per
seed (ours first for seeds 0 and 2, snnTorch first for seed 1), so a shared machine's drift falls
on both; each run records the 1-minute load average before and after it.

snnTorch is a benchmark-only dependency (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py, before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402
from speed_tables import csnn_snntorch_table  # benchmarks/speed_tables.py, beside this script
from torch import nn
from torch.nn import functional as F

import surrogate
from surrogate.training.data import dataset
from surrogate.training.models.csnn import SpikingCNN
from surrogate.training.report.significance import welch_p

CHANNELS, STEPS, BETA, THRESHOLD, ALPHA = (16, 32), 4, 0.5, 1.0, 2.0
LR, BATCH = 1e-3, 128
EVAL_BATCH = 256  # (1000 runs 5x slower per image here: memory)
DATA_ROOT = "/usr/share/datasets/fashion-mnist"
SUBSET_SEED = 0
CHECK_IMAGES = 16
LOGIT_TOLERANCE = dict(rtol=1e-12, atol=1e-12)
# Gradients: torch.allclose(rtol, atol = atol_of_max × max |ours|), per parameter; float32
# spikes in snnTorch: see the docstring.
GRAD_TOLERANCE = dict(rtol=1e-6, atol_of_max=1e-6)
IMPLEMENTATIONS = ("ours", "snntorch")
# A parameter (or batch-norm buffer) of SpikingCNN -> its name in SnnTorchCSNN.
NAMES = {
    "convs.0.weight": "conv1.weight",
    "norms.0.weight": "bn1.weight",
    "norms.0.bias": "bn1.bias",
    "norms.0.running_mean": "bn1.running_mean",
    "norms.0.running_var": "bn1.running_var",
    "norms.0.num_batches_tracked": "bn1.num_batches_tracked",
    "convs.1.weight": "conv2.weight",
    "norms.1.weight": "bn2.weight",
    "norms.1.bias": "bn2.bias",
    "norms.1.running_mean": "bn2.running_mean",
    "norms.1.running_var": "bn2.running_var",
    "norms.1.num_batches_tracked": "bn2.num_batches_tracked",
    "head.linear.weight": "fc.weight",
    "head.linear.bias": "fc.bias",
}


def ours() -> SpikingCNN:
    """``model=csnn`` on Fashion-MNIST with ``op=atan``: every LIF's estimator atan, α = 2."""
    net = SpikingCNN((1, 28, 28), 10, CHANNELS, STEPS, "direct", "membrane", BETA, THRESHOLD,
                     "subtract", detach_reset=False)  # fmt: skip
    for lif in net.neurons:
        lif.estimator = surrogate.estimator("atan", alpha=ALPHA)
    return net


class SnnTorchCSNN(nn.Module):
    """The same network in plain PyTorch and snnTorch (see the module docstring). ``reset``:
    ``"loop"`` subtracts θ·spike in the loop (ours' dynamics); ``"subtract"`` and
    ``"subtract, no delay"`` use snnTorch's own subtract reset (``reset_delay`` True, False):
    checked against ours, never trained."""

    def __init__(self, reset: str = "loop"):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate as snn_surrogate

        self.reset = reset
        if reset == "loop":
            options = dict(reset_mechanism="none")
        else:
            options = dict(reset_mechanism="subtract", reset_delay=reset == "subtract")
        spike_grad = snn_surrogate.atan(alpha=ALPHA)
        first, second = CHANNELS
        self.conv1 = nn.Conv2d(1, first, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(first)
        self.lif1 = snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=spike_grad, **options)
        self.conv2 = nn.Conv2d(first, second, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(second)
        self.lif2 = snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=spike_grad, **options)
        self.fc = nn.Linear(second * 7 * 7, 10)
        self.readout = snn.Leaky(beta=BETA, reset_mechanism="none")
        self.spikes: list[torch.Tensor] = []  # each hidden layer's, of the last forward

    def run(self, lif, current: torch.Tensor) -> torch.Tensor:
        """``lif`` stepped over the T steps of ``current`` (T, B, ...): its spikes, stacked."""
        mem = lif.init_leaky()
        spk_rec = []
        for t in range(current.shape[0]):
            spk, mem = lif(current[t], mem)
            if self.reset == "loop":
                mem = mem - spk * THRESHOLD
            spk_rec.append(spk)
        return torch.stack(spk_rec).to(current.dtype)  # ATan's spikes are float32: a no-op there

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        cur1 = self.bn1(self.conv1(x))  # the same image each step: once
        spk1 = self.run(self.lif1, cur1.unsqueeze(0).expand(STEPS, -1, -1, -1, -1))
        x = F.max_pool2d(spk1.flatten(0, 1), 2, ceil_mode=True)
        cur2 = self.bn2(self.conv2(x)).unflatten(0, (STEPS, batch))
        spk2 = self.run(self.lif2, cur2)
        x = F.max_pool2d(spk2.flatten(0, 1), 2, ceil_mode=True).unflatten(0, (STEPS, batch))
        self.spikes = [spk1, spk2]
        cur3 = self.fc(x.flatten(2))
        mem = self.readout.init_leaky()
        mem_rec = []
        for t in range(STEPS):
            _, mem = self.readout(cur3[t], mem)
            mem_rec.append(mem)
        return torch.stack(mem_rec).mean(0)


def snntorch_like(net: SpikingCNN, reset: str = "loop") -> SnnTorchCSNN:
    """An ``SnnTorchCSNN`` holding ``net``'s weights and batch-norm buffers, in its dtype."""
    theirs = SnnTorchCSNN(reset).to(next(net.parameters()).dtype)
    state = net.state_dict()
    theirs.load_state_dict({NAMES[k]: v for k, v in state.items()}, strict=False)
    missing = set(theirs.state_dict()) - set(NAMES.values())
    assert all(k.startswith(("lif", "readout")) for k in missing), missing  # snnTorch's buffers
    return theirs


def versions() -> dict:
    from importlib.metadata import version

    found = {"torch": torch.__version__, "numpy": np.__version__}
    for name in ("snntorch", "scikit-learn"):
        try:
            found[name] = version(name)
        except Exception:
            found[name] = None
    return found


def surrogate_check() -> dict:
    """snnTorch's atan derivative against ours on a grid of z = v − θ, float64."""
    from snntorch import surrogate as snn_surrogate

    z = torch.linspace(-3, 3, 6001, dtype=torch.float64)

    def derivative(fn) -> torch.Tensor:
        x = z.clone().requires_grad_(True)
        fn(x).sum().backward()
        return x.grad

    mine = derivative(lambda x: surrogate.step(x, "atan", alpha=ALPHA))
    formula = (ALPHA / 2) / (1 + (math.pi * ALPHA * z / 2) ** 2)
    theirs = derivative(snn_surrogate.atan(alpha=ALPHA))
    steps_equal = torch.equal(surrogate.step(z, "atan", alpha=ALPHA).double(),
                              snn_surrogate.atan(alpha=ALPHA)(z).double())  # fmt: skip
    return {
        "grid": [-3.0, 3.0, 6001],
        "ours_at_0": float(mine[3000]),
        "ours_max_abs_difference_from_formula": float((mine - formula).abs().max()),
        "snntorch_max_abs_difference": float((theirs - mine).abs().max()),
        "forward_steps_equal": steps_equal,
        "passed": bool(steps_equal and (theirs - mine).abs().max() < 1e-12),
    }


def randomize_norms(net: nn.Module, generator: torch.Generator) -> None:
    """Batch-norm affine parameters away from (1, 0), so many neurons fire and some pass 2θ."""
    with torch.no_grad():
        for norm in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
            norm.weight.copy_(0.5 + 1.5 * torch.rand(norm.weight.shape, generator=generator))
            norm.bias.copy_(0.5 * torch.randn(norm.bias.shape, generator=generator))


class Recorder:
    """The outputs of ``SpikingCNN``'s LIF layers in the next forward."""

    def __init__(self, net: SpikingCNN):
        self.spikes: list[torch.Tensor] = []
        for lif in net.neurons:
            lif.register_forward_hook(lambda _m, _i, out: self.spikes.append(out.detach()))


def logits_and_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor, names: dict[str, str]):
    net.zero_grad(set_to_none=True)
    logits = net(x)
    F.cross_entropy(logits, y).backward()
    found = dict(net.named_parameters())
    grads = {mine: found[name].grad for mine, name in names.items()}
    return logits.detach(), grads


def grads_close(theirs: torch.Tensor, mine: torch.Tensor) -> bool:
    atol = GRAD_TOLERANCE["atol_of_max"] * float(mine.abs().max())
    return bool(torch.allclose(theirs, mine, rtol=GRAD_TOLERANCE["rtol"], atol=atol))


@contextlib.contextmanager
def spikes_in_input_dtype():
    """snnTorch's ``ATan`` returning its input's dtype instead of float32: for the check only."""
    from snntorch import surrogate as snn_surrogate

    original = snn_surrogate.ATan.forward

    def forward(ctx, input_, alpha):
        ctx.save_for_backward(input_)
        ctx.alpha = alpha
        return (input_ > 0).to(input_.dtype)

    snn_surrogate.ATan.forward = staticmethod(forward)
    try:
        yield
    finally:
        snn_surrogate.ATan.forward = original


def equivalence_check(x: torch.Tensor, y: torch.Tensor) -> dict:
    """The snnTorch network against ours, float64, on ``x`` (see the module docstring)."""
    x, y = x.double(), y
    torch.manual_seed(0)
    net = ours().double()
    randomize_norms(net, torch.Generator().manual_seed(1))
    recorder = Recorder(net)
    params = {k: v for k, v in NAMES.items() if k in dict(net.named_parameters())}
    found: dict = {"images": len(y), "dtype": "float64", "logit_tolerance": LOGIT_TOLERANCE,
                   "grad_tolerance": GRAD_TOLERANCE, "variants": {}}  # fmt: skip
    variants = ("loop", "loop, float64 spikes", "subtract", "subtract, no delay")
    for variant in variants:
        reset = variant.removesuffix(", float64 spikes")
        theirs = snntorch_like(net, reset).train()
        net.train()
        recorder.spikes.clear()
        mine_logits, mine_grads = logits_and_grads(net, x, y, {k: k for k in params})
        with spikes_in_input_dtype() if variant != reset else contextlib.nullcontext():
            their_logits, their_grads = logits_and_grads(theirs, x, y, params)
        spikes = recorder.spikes[-2:]
        differing = sum(int((a != b).sum()) for a, b in zip(spikes, theirs.spikes, strict=True))
        total = sum(a.numel() for a in spikes)
        errors = {k: float((their_grads[k] - g).abs().max()) for k, g in mine_grads.items()}
        relative = {k: errors[k] / max(float(g.abs().max()), 1e-300) for k, g in mine_grads.items()}
        entry = {
            "spikes_differing": differing,
            "spikes": total,
            "ours_spike_rates": [float(s.mean()) for s in spikes],
            "logits_max_abs_difference": float((their_logits - mine_logits).abs().max()),
            "logits_allclose": bool(torch.allclose(their_logits, mine_logits, **LOGIT_TOLERANCE)),
            "grads_allclose": all(grads_close(their_grads[k], g) for k, g in mine_grads.items()),
            "grad_max_abs_difference": max(errors.values()),
            "grad_max_relative_difference": max(relative.values()),
        }
        net.eval()
        theirs.eval()
        with torch.no_grad():
            difference = (theirs(x) - net(x)).abs().max()
        entry["eval_logits_max_abs_difference"] = float(difference)
        entry["eval_logits_allclose"] = bool(difference <= LOGIT_TOLERANCE["atol"])
        found["variants"][variant] = entry
    # How many first-layer currents pass 2θ (membranes there after a spike: where snnTorch's
    # reset_delay=False differs).
    net.train()
    with torch.no_grad():
        cur = net.norms[0](net.convs[0](x))
    found["first_layer_currents_over_2_theta"] = float((cur > 2 * THRESHOLD).double().mean())
    loop = found["variants"]["loop"]
    found["passed"] = bool(loop["spikes_differing"] == 0 and loop["logits_allclose"]
                           and loop["grads_allclose"] and loop["eval_logits_allclose"])  # fmt: skip
    return found


def load_data(train_size: int) -> dict[str, torch.Tensor]:
    """Fashion-MNIST through the app's reader: a stratified training sample and the test set,
    standardized with the sample's mean and std."""
    from sklearn.model_selection import train_test_split

    _, train, test = dataset("fashion_mnist").load(DATA_ROOT)
    x, y = train.x, train.y
    if train_size < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=train_size, stratify=y,
                                      random_state=SUBSET_SEED)  # fmt: skip
    x = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    mean, std = x.mean(), x.std()
    test_x = torch.as_tensor(np.ascontiguousarray(test.x), dtype=torch.float32)
    return {
        "x": (x - mean) / std,
        "y": torch.as_tensor(np.asarray(y), dtype=torch.long),
        "test_x": (test_x - mean) / std,
        "test_y": torch.as_tensor(np.asarray(test.y), dtype=torch.long),
        "mean": float(mean),
        "std": float(std),
    }


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), EVAL_BATCH):
            correct += int((net(x[i : i + EVAL_BATCH]).argmax(1) == y[i : i + EVAL_BATCH]).sum())
    net.train()
    return correct / len(y)


def train(name: str, seed: int, data: dict, epochs: int) -> dict:
    """One run: ``name``'s network from seed ``seed``'s initial weights; its test accuracy and
    step times."""
    torch.manual_seed(seed)
    net = ours()
    if name == "snntorch":
        net = snntorch_like(net)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    order_generator = torch.Generator().manual_seed(seed)
    x, y = data["x"], data["y"]
    full, short, losses = [], [], []
    load_before = load()
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=order_generator)
        total, count = 0.0, 0
        for i in range(0, len(y), BATCH):
            index = order[i : i + BATCH]
            xb, yb = x[index], y[index]
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            optimizer.step()
            took = time.perf_counter() - start
            (full if len(index) == BATCH else short).append(took)
            total, count = total + loss.item() * len(index), count + len(index)
        losses.append(total / count)
        schedule.step()
    wall = time.perf_counter() - started
    result = {
        "implementation": name,
        "seed": seed,
        "test_accuracy": accuracy(net, data["test_x"], data["test_y"]),
        "train_loss_per_epoch": [round(v, 4) for v in losses],
        "step_ms_median": 1e3 * statistics.median(full),
        "step_ms_quartiles": [1e3 * q for q in statistics.quantiles(full, n=4)[::2]],
        "full_steps": len(full),
        "train_wall_s": round(wall, 1),
        "load_before_after": [load_before[0], load()[0]],
        "step_ms": [round(1e3 * t, 2) for t in full],
    }
    print(f"  {name} seed {seed}: test accuracy {result['test_accuracy']:.4f}, step "
          f"{result['step_ms_median']:.1f} ms, {wall:.0f} s, load {load_before[0]:.1f} -> "
          f"{result['load_before_after'][1]:.1f}", flush=True)  # fmt: skip
    return result


def summarize(runs: list[dict]) -> dict:
    summary: dict = {}
    for name in IMPLEMENTATIONS:
        mine = [r for r in runs if r["implementation"] == name]
        accuracies = [r["test_accuracy"] for r in mine]
        steps = [t for r in mine for t in r["step_ms"]]
        summary[name] = {
            "test_accuracy_mean": statistics.fmean(accuracies),
            "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "test_accuracies": accuracies,
            "step_ms_median": statistics.median(steps),
        }
    a, b = summary["ours"], summary["snntorch"]
    b["step_ms_over_ours"] = b["step_ms_median"] / a["step_ms_median"]
    seeds = {r["seed"] for r in runs}
    per_seed = []
    for seed in sorted(seeds):
        pair = {r["implementation"]: r["step_ms_median"] for r in runs if r["seed"] == seed}
        per_seed.append(pair["snntorch"] / pair["ours"])
    b["step_ms_over_ours_per_seed"] = per_seed
    b["welch_p_accuracy"] = welch_p(b["test_accuracies"], a["test_accuracies"])
    return summary


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", type=int, default=10_000, help="training images (stratified)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--check-only", action="store_true", help="the checks, no training")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    text = shlex.join(["python", "benchmarks/csnn_snntorch.py", *argv])
    print(text, flush=True)
    started = time.perf_counter()
    data = load_data(args.train)
    report: dict = {
        "command": text,
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": versions(),
        "threads": torch.get_num_threads(),
        "sizing": {"train_images": len(data["y"]), "train_subset": f"stratified, random_state "
                   f"{SUBSET_SEED}", "test_images": len(data["test_y"]), "batch": BATCH,
                   "epochs": args.epochs, "steps_per_epoch": math.ceil(len(data["y"]) / BATCH),
                   "seeds": args.seeds, "lr": LR, "optimizer": "Adam",
                   "schedule": "cosine to 0 over the epochs, stepped per epoch",
                   "standardize": {"mean": data["mean"], "std": data["std"]}},
        "network": {"channels": list(CHANNELS), "time_steps": STEPS, "beta": BETA,
                    "threshold": THRESHOLD, "reset": "subtract", "estimator": "atan",
                    "alpha": ALPHA, "encoding": "direct", "readout": "membrane"},
        "load_at_start": load(),
    }  # fmt: skip
    report["surrogate_check"] = surrogate_check()
    print(f"surrogate check: {report['surrogate_check']}", flush=True)
    check = equivalence_check(data["test_x"][:CHECK_IMAGES], data["test_y"][:CHECK_IMAGES])
    report["equivalence_check"] = check
    print(json.dumps(check, indent=1), flush=True)
    if not (check["passed"] and report["surrogate_check"]["passed"]):
        print("the snnTorch network is not ours' function: not timed", file=sys.stderr)
        return 1
    if args.check_only:
        return 0
    runs = []
    for i, seed in enumerate(args.seeds):
        names = IMPLEMENTATIONS if i % 2 == 0 else IMPLEMENTATIONS[::-1]
        for name in names:
            runs.append(train(name, seed, data, args.epochs))
    report["runs"] = runs
    report["summary"] = summarize(runs)
    report["load_at_end"] = load()
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    print()
    print(csnn_snntorch_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

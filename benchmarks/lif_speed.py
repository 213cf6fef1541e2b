"""Forward plus backward time and saved memory of one ``surrogate.LIF`` layer against snnTorch's
``Leaky`` and SpikingJelly's ``LIFNode``, on CPU, in one process.

    python benchmarks/lif_speed.py
    python benchmarks/lif_speed.py --json benchmarks/results/lif_speed_cpu.json
    python benchmarks/lif_speed.py --steps 25 --rounds 10 --profile

One LIF layer, float32, input (T, B, N) with B = 128, N = 1024, T in ``--steps`` (25 and 100), the
same dynamics and the same surrogate in every arm: v_t = 0.9·u_{t−1} + x_t, s_t = step(v_t − 1),
u_t = v_t − s_t (subtract reset, the spike not detached in it), arctan surrogate
p(z) = (α/2) / (1 + (π·α·z/2)²) with α = 2 (p(0) = 1) in all three libraries. A call is one forward
and ``(spikes * w).sum().backward()`` with w fixed random weights of the spikes' shape, the input a
leaf requiring a gradient (reset to None between calls, outside the timing). Arms:

- ``ours``: ``surrogate.LIF(beta=0.9, threshold=1.0, reset="subtract", estimator="atan",
  alpha=2.0)(x)``: its fast path, the whole loop as one autograd node (``surrogate.lif_scan``).
- ``snntorch``: ``snn.Leaky(beta=0.9, threshold=1.0, spike_grad=surrogate.atan(alpha=2.0),
  reset_mechanism="subtract", reset_delay=False)`` stepped as snnTorch's tutorials write it:
  ``mem = lif.init_leaky()``, ``for t in range(T): spk, mem = lif(x[t], mem)``, ``torch.stack``.
  ``reset_delay=False``: with snnTorch's default (``True``) the reset of step t lands at step t + 1,
  undecayed and detached, which are other dynamics (other spikes, other gradients).
- ``snntorch unbind``: the same, looping ``for x_t in x.unbind(0)``.
- ``spikingjelly``: ``neuron.LIFNode(tau=1/(1 − 0.9), decay_input=False, v_reset=None,
  v_threshold=1.0, surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")``,
  ``functional.reset_net`` before each call. SpikingJelly 2.0 has no ``backend`` argument: it picks
  its implementation itself; on this CPU, in float32 and float64 alike, that is its torch reference
  run step by step (the output's ``grad_fn`` a ``StackBackward0`` over one surrogate-spike
  ``autograd.Function`` node per step, each saving v_t − θ).
- ``ours compiled``: ``torch.compile(fullgraph=True)`` of a module wrapping the same ``LIF``; under
  compile ``LIF`` runs its step-by-step path, which inductor unrolls over T. Compiled once per T
  before timing (the compile time is reported).

Each round calls every arm once in a rotated order, so a shared machine's drift falls on all; a
round during which other processes used more than 10% of its wall time in CPU (``/proc/stat``, as
``benchmarks/ops.py``) is timed again, up to twice. After ``--warmup`` rounds left out, an
arm's time is its median over ``--rounds`` rounds, and its ratio to ours the median (and
quartiles) over rounds of its time over ours in the same round.

Memory: the bytes each arm keeps for backward after one forward of the layer (the loss not
included), counted with ``torch.autograd.graph.saved_tensors_hooks`` as the sum of the sizes of the
unique storages packed and still held when the forward returns, in units of the bump's input once,
T·B·N·4 bytes; ours should keep at most that plus one byte per element.

Before timing, on a small input in float64 and again in float32 (the dtype timed), each peer must
give ours' spikes exactly and ours' input gradient to a stated tolerance. The input, there and
timed, is uniform in [−0.6, 1): then u_{t−1} < θ and v_t < 2θ always, where snnTorch's
``reset_delay=False`` (which fires on v_t − θ·H(u_{t−1} − θ)) is ours; no v_t is θ exactly, where
SpikingJelly's step gives 1 and ours (and snnTorch's) 0.

snnTorch and SpikingJelly are benchmark-only dependencies (``pip install -e .[bench]``); where one
cannot be imported or run, the report says why instead of a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py, before torch loads

import torch  # noqa: E402
from ops import Others  # benchmarks/ops.py: other processes' CPU time, from /proc/stat
from speed_tables import lif_speed_table  # benchmarks/speed_tables.py, beside this script
from torch import nn

import surrogate

BETA, THRESHOLD, ALPHA = 0.9, 1.0, 2.0
BATCH, FEATURES = 128, 1024
LOW, HIGH = -0.6, 1.0  # the input's range
TARGETS = {"snntorch": 3.0, "spikingjelly": 1.5}  # ours at least this many times faster
OURS_SAVED_LIMIT = 1.25  # bump inputs: T·B·N·4 bytes, plus one byte per element (1/4 of one)
ARMS = ("ours", "snntorch", "snntorch unbind", "spikingjelly", "ours compiled")
RETIMES = 2  # a round disturbed by another process is timed again, at most this many times
DISTURBED = 0.1  # ... disturbed: others used more CPU time than this fraction of the round's wall
CHECKED = ("snntorch", "snntorch unbind", "spikingjelly")  # against ours before timing
CHECK = dict(steps=20, batch=4, features=64)
TOLERANCE = {  # input gradient against ours: torch.allclose(rtol, atol)
    torch.float64: dict(rtol=1e-6, atol=1e-6),  # snnTorch's ATan returns fp32 spikes: g in fp32
    torch.float32: dict(rtol=1e-4, atol=1e-6),
}
Run = Callable[[torch.Tensor], torch.Tensor]


def ours_lif() -> surrogate.LIF:
    return surrogate.LIF(beta=BETA, threshold=THRESHOLD, reset="subtract", estimator="atan",
                         alpha=ALPHA)  # fmt: skip


def ours() -> Run:
    return ours_lif()


class Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.lif = ours_lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(x)


def ours_compiled() -> Run:
    return torch.compile(Wrapped(), fullgraph=True, dynamic=False)


def snntorch_leaky():
    import snntorch as snn
    from snntorch import surrogate as snn_surrogate

    return snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=snn_surrogate.atan(alpha=ALPHA),
                     reset_mechanism="subtract", reset_delay=False)  # fmt: skip


def snntorch_range() -> Run:
    """As snnTorch's tutorials write the loop."""
    lif = snntorch_leaky()

    def run(x: torch.Tensor) -> torch.Tensor:
        mem = lif.init_leaky()
        spk_rec = []
        for t in range(x.shape[0]):
            spk, mem = lif(x[t], mem)
            spk_rec.append(spk)
        return torch.stack(spk_rec)

    run.module = lif
    return run


def snntorch_unbind() -> Run:
    lif = snntorch_leaky()

    def run(x: torch.Tensor) -> torch.Tensor:
        mem = lif.init_leaky()
        spk_rec = []
        for x_t in x.unbind(0):
            spk, mem = lif(x_t, mem)
            spk_rec.append(spk)
        return torch.stack(spk_rec)

    run.module = lif
    return run


def spikingjelly() -> Run:
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based import surrogate as sj_surrogate

    node = neuron.LIFNode(tau=1 / (1 - BETA), decay_input=False, v_reset=None,
                          v_threshold=THRESHOLD, surrogate_function=sj_surrogate.ATan(alpha=ALPHA),
                          step_mode="m")  # fmt: skip

    def run(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(node)
        return node(x)

    run.module = node
    return run


BUILDERS = {"ours": ours, "snntorch": snntorch_range, "snntorch unbind": snntorch_unbind,
            "spikingjelly": spikingjelly, "ours compiled": ours_compiled}  # fmt: skip
WHAT = {
    "ours": 'surrogate.LIF(beta=0.9, threshold=1.0, reset="subtract", estimator="atan")',
    "snntorch": "snn.Leaky(..., reset_delay=False), for t in range(T): lif(x[t], mem)",
    "snntorch unbind": "snn.Leaky(..., reset_delay=False), for x_t in x.unbind(0)",
    "spikingjelly": 'neuron.LIFNode(tau=10, decay_input=False, v_reset=None, step_mode="m")',
    "ours compiled": "torch.compile(fullgraph=True) of a module wrapping the same LIF",
}


def versions() -> dict:
    from importlib.metadata import version

    found = {"torch": torch.__version__}
    for name in ("snntorch", "spikingjelly"):
        try:
            found[name] = version(name)
        except Exception:
            found[name] = None
    return found


def surrogate_derivatives() -> dict:
    """The three arctan surrogates' derivatives on a grid of z = v − θ, against ours."""
    z = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    found = {}

    def derivative(fn) -> torch.Tensor:
        x = z.clone().requires_grad_(True)
        fn(x).sum().backward()
        return x.grad

    ours_d = derivative(lambda x: surrogate.step(x, "atan", alpha=ALPHA))
    found["ours_at_0"] = float(ours_d[3000])
    peers = {}
    try:
        from snntorch import surrogate as snn_surrogate

        peers["snntorch"] = snn_surrogate.atan(alpha=ALPHA)
    except Exception as error:
        found["snntorch_error"] = f"{type(error).__name__}: {error}"
    try:
        from spikingjelly.activation_based import surrogate as sj_surrogate

        peers["spikingjelly"] = sj_surrogate.ATan(alpha=ALPHA)
    except Exception as error:
        found["spikingjelly_error"] = f"{type(error).__name__}: {error}"
    for name, fn in peers.items():
        found[f"{name}_max_abs_difference"] = float((derivative(fn) - ours_d).abs().max())
    return found


def uniform(shape: list[int], generator: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    """The layer's input: uniform in [LOW, HIGH), HIGH < (1 + (1 − β))·θ (see the docstring)."""
    return torch.rand(shape, generator=generator, dtype=dtype) * (HIGH - LOW) + LOW


def check_input(steps: int, batch: int, features: int, dtype: torch.dtype, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    x = uniform([steps, batch, features], generator, torch.float64)
    w = torch.randn(steps, batch, features, generator=generator, dtype=torch.float64)
    return x.to(dtype), w.to(dtype)


def spikes_and_grad(run: Run, x: torch.Tensor, w: torch.Tensor):
    x = x.clone().requires_grad_(True)
    spikes = run(x)
    (spikes * w).sum().backward()
    return spikes.detach(), x.grad


def check_peers(builders: dict[str, Callable[[], Run]]) -> dict:
    """Each peer against ours on a small input, in float64 and float32."""
    found = {"input": [CHECK["steps"], CHECK["batch"], CHECK["features"]], "dtypes": {}}
    for dtype in (torch.float64, torch.float32):
        x, w = check_input(**CHECK, dtype=dtype)
        reference = ours()
        if dtype == torch.float64:
            reference = reference.double()
        spikes, grad = spikes_and_grad(reference, x, w)
        tolerance = TOLERANCE[dtype]
        entry = {"tolerance": tolerance, "spike_rate": float(spikes.mean()),
                 "at_threshold": int((x == THRESHOLD).sum()), "peers": {}}  # fmt: skip
        for name, build in builders.items():
            run = build()
            module = getattr(run, "module", run)
            if dtype == torch.float64 and isinstance(module, nn.Module):
                module.double()
            s, g = spikes_and_grad(run, x, w)
            entry["peers"][name] = {
                "spikes_equal": bool(torch.equal(s.to(spikes.dtype), spikes)),
                "spike_dtype": str(s.dtype).removeprefix("torch."),
                "grad_allclose": bool(torch.allclose(g, grad, **tolerance)),
                "grad_max_abs_difference": float((g - grad).abs().max()),
                "grad_max_abs": float(grad.abs().max()),
            }
        found["dtypes"][str(dtype).removeprefix("torch.")] = entry
    found["passed"] = all(
        p["spikes_equal"] and p["grad_allclose"]
        for entry in found["dtypes"].values()
        for p in entry["peers"].values()
    )
    return found


def saved_bytes(run: Run, x: torch.Tensor) -> dict:
    """What one forward keeps for backward: the unique storages autograd packed that are still held
    once the forward returns (a node freed within the forward, as snnTorch's detached reset
    signal's, keeps nothing)."""
    packed: list[weakref.ref] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        packed.append(weakref.ref(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run(x)
    gc.collect()
    held = [t for t in (ref() for ref in packed) if t is not None]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in held}
    del out
    total = sum(storages.values())
    return {"bytes": total, "bump_inputs": total / (x.numel() * 4), "packed": len(packed),
            "held": len(held), "storages": len(storages),
            "input_bytes": storages.get(x.untyped_storage().data_ptr(), 0)}  # fmt: skip


class Arm:
    """A built arm with its input and the loss weights: ``call`` times one forward and backward."""

    def __init__(self, run: Run, x: torch.Tensor, w: torch.Tensor):
        self.run, self.w = run, w
        self.x = x.detach().clone().requires_grad_(True)

    def call(self) -> float:
        self.x.grad = None
        start = time.perf_counter()
        (self.run(self.x) * self.w).sum().backward()
        return time.perf_counter() - start


def build(name: str, x: torch.Tensor, w: torch.Tensor) -> tuple[Arm | None, dict]:
    """The arm and what is known of it (its build and first call time), or None and why not."""
    info: dict = {"module": WHAT[name]}
    try:
        torch.manual_seed(0)
        run = BUILDERS[name]()
        arm = Arm(run, x, w)
        start = time.perf_counter()
        arm.call()
        info["first_call_s"] = round(time.perf_counter() - start, 2)
        info["saved"] = saved_bytes(run, arm.x)
        return arm, info
    except Exception as error:  # an optional peer or the compiler: record why, time the others
        why = f"{type(error).__name__}: {error}".strip().splitlines()[0][:300]
        print(f"  {name}: not run ({why})", flush=True)
        info["error"] = why
        return None, info


def measure(steps: int, arms: list[str], rounds: int, warmup: int) -> dict:
    shape = [steps, BATCH, FEATURES]
    generator = torch.Generator().manual_seed(2)
    x = uniform(shape, generator)
    w = torch.randn(shape, generator=generator)
    found: dict = {"input": shape, "arms": {}}
    built = {}
    for name in arms:
        arm, info = build(name, x, w)
        found["arms"][name] = info
        if arm is not None:
            built[name] = arm
            print(f"  {name}: first call {info['first_call_s']} s", flush=True)
    names = list(built)
    times: dict[str, list[float]] = {name: [] for name in names}
    others, disturbed = Others(), 0
    for i in range(warmup + rounds):
        shift = i % len(names)
        for attempt in range(RETIMES + 1):
            others.start()
            took = {name: built[name].call() for name in names[shift:] + names[:shift]}
            if others.seconds() <= DISTURBED * sum(took.values()) or attempt == RETIMES:
                break
            disturbed += 1
        if i >= warmup:
            for name, seconds in took.items():
                times[name].append(seconds)
    found["retimed_rounds"] = disturbed
    for name in names:
        entry = found["arms"][name]
        entry["ms"] = 1e3 * statistics.median(times[name])
        if "ours" in times:
            ratios = [t / o for t, o in zip(times[name], times["ours"], strict=True)]
            entry["over_ours"] = statistics.median(ratios)
            if rounds > 1 and name != "ours":
                quartiles = statistics.quantiles(ratios, n=4)
                entry["over_ours_quartiles"] = [quartiles[0], quartiles[2]]
        if name in TARGETS and "over_ours" in entry:
            entry["target"] = TARGETS[name]
            entry["met"] = entry["over_ours"] >= TARGETS[name]
        entry["runs_ms"] = [round(1e3 * t, 3) for t in times[name]]
    if "ours" in found["arms"] and "saved" in found["arms"]["ours"]:
        saved = found["arms"]["ours"]["saved"]
        saved["limit"] = OURS_SAVED_LIMIT
        saved["met"] = saved["bump_inputs"] <= OURS_SAVED_LIMIT
    return found


def profile_ours(steps: int, rows: int = 15) -> str:
    """torch.profiler's table of one call of ours (after a warm-up call), by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    shape = [steps, BATCH, FEATURES]
    generator = torch.Generator().manual_seed(2)
    arm = Arm(ours(), uniform(shape, generator),
              torch.randn(shape, generator=generator))  # fmt: skip
    arm.call()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        arm.call()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 100], help="T values")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per T")
    parser.add_argument("--warmup", type=int, default=3, help="rounds left out per T")
    parser.add_argument("--profile", action="store_true", help="also profile one call of ours")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    text = shlex.join(["python", "benchmarks/lif_speed.py", *argv])
    print(text, flush=True)
    started = time.perf_counter()
    report = {
        "command": text,
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": versions(),
        "threads": torch.get_num_threads(),
        "dtype": "float32",
        "rounds": args.rounds,
        "warmup": args.warmup,
        "load_at_start": load(),
        "surrogate_derivative": surrogate_derivatives(),
    }  # fmt: skip
    peers = {name: BUILDERS[name] for name in args.arms if name in CHECKED}
    report["check"] = check_peers(peers)
    print(f"peers against ours: {'passed' if report['check']['passed'] else 'FAILED'}", flush=True)
    report["steps"] = {}
    for steps in args.steps:
        print(f"T = {steps}:", flush=True)
        report["steps"][str(steps)] = measure(steps, args.arms, args.rounds, args.warmup)
    if args.profile:
        report["profile"] = {str(s): profile_ours(s) for s in args.steps}
    report["load_at_end"] = load()
    report["seconds"] = round(time.perf_counter() - started, 1)
    print()
    print(lif_speed_table(report))
    for steps, table in report.get("profile", {}).items():
        print(f"\nours, T = {steps}, one call:\n{table}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

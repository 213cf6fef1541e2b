"""Forward plus backward time of every scalar op with every estimator, as a ratio to torch.relu.

    python benchmarks/ops.py                          # 16M fp32 elements, CPU (and CUDA if present)
    python benchmarks/ops.py --ops step --modes eager --repeats 9 --json ops.json

Modes: ``eager`` is the library as users call it (fused kernels for large tensors); ``fallback``
the eager formulas alone, which is what runs where no compiler is available; ``compile`` the
caller's function under ``torch.compile(fullgraph=True)``, against a compiled relu. Within a mode,
each round times relu and then each candidate (relu again before every one), after two warm-up
calls each; a candidate's ratio is the median over rounds of its time over the relu time just
before it, so load from other processes cancels as far as it can. Also reported: bytes kept for
backward per element (``saved_tensors_hooks``), the fused kernels' compile times, and the same
shapes from snnTorch and SpikingJelly and the one-liner ``x + (hard(x) - x).detach()`` (install
them with ``pip install -e .[bench]``; a missing one is skipped with a note).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import surrogate
from surrogate import fused

MODULES = {"step": surrogate.Step, "sign": surrogate.Sign, "round": surrogate.Round}
MODES = ("eager", "fallback", "compile")
RETIMES = 6  # a pair disturbed by another process is timed again, at most this many times
DISTURBED = 0.1  # ... disturbed: others used more CPU time than this fraction of the pair's wall


@dataclass
class Candidate:
    """One row: ``fn`` maps the input to an output; ``shape`` names our estimator of the same
    shape for a peer (compared with step, the op every peer implements)."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    shape: str | None = None


def ours(ops: list[str]) -> list[Candidate]:
    return [
        Candidate(f"{op}/{name}", MODULES[op](name))
        for op in ops
        for name in surrogate.available(op)
    ]


def peers() -> tuple[list[Candidate], list[str]]:
    """snnTorch's and SpikingJelly's step surrogates (their defaults) and the one-liner STE."""
    found = [
        Candidate(
            "one-liner x + ((x > 0) - x).detach()",
            lambda x: x + ((x > 0).to(x.dtype) - x).detach(),
            "ste",
        )
    ]
    notes = []
    try:
        from snntorch import surrogate as snn
    except Exception as exc:  # not installed, or broken on this torch
        notes.append(f"snnTorch skipped: {type(exc).__name__}: {exc}")
    else:
        found += [
            Candidate("snnTorch atan", snn.atan(), "atan"),
            Candidate("snnTorch sigmoid", snn.sigmoid(), "sigmoid"),
            Candidate("snnTorch fast_sigmoid", snn.fast_sigmoid(), "fast_sigmoid"),
            Candidate("snnTorch straight_through_estimator", snn.straight_through_estimator(),
                      "ste"),
        ]  # fmt: skip
    try:
        from spikingjelly.activation_based import surrogate as sj
    except Exception as exc:
        notes.append(f"SpikingJelly skipped: {type(exc).__name__}: {exc}")
    else:
        found += [
            Candidate("SpikingJelly ATan", sj.ATan(), "atan"),
            Candidate("SpikingJelly Sigmoid", sj.Sigmoid(), "sigmoid"),
            Candidate("SpikingJelly SoftSign", sj.SoftSign(), "fast_sigmoid"),
            Candidate("SpikingJelly Erf", sj.Erf(), "gaussian"),
            Candidate("SpikingJelly PiecewiseExp", sj.PiecewiseExp(), "exponential"),
            Candidate("SpikingJelly PiecewiseQuadratic", sj.PiecewiseQuadratic(), "triangle"),
        ]
    return found, notes


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


class Timer:
    """Forward plus backward of ``fn`` on ``x`` with incoming gradient ``g``, in seconds."""

    def __init__(self, x: torch.Tensor, g: torch.Tensor):
        self.x, self.g = x, g
        self.sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def __call__(self, fn) -> float:
        self.sync()
        start = time.perf_counter()
        torch.autograd.grad(fn(self.x), self.x, self.g)
        self.sync()
        return time.perf_counter() - start


def saved_bytes(fn, x: torch.Tensor) -> float:
    """Bytes the autograd graph of ``fn(x)`` keeps for backward, per element of ``x``."""
    sizes = []

    def pack(t):
        sizes.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(sizes) / x.numel()


class Others:
    """CPU seconds that other processes used since ``start`` (Linux; 0 elsewhere), from the
    machine's busy time in /proc/stat less this process's own: a pair timed while another job
    ran is timed again."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self):
        self.available = Path("/proc/stat").exists()

    def _now(self) -> tuple[float, float]:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))  # not idle/iowait
        own = os.times()
        return busy / self.TICK, own.user + own.system

    def start(self) -> None:
        self.mark = self._now() if self.available else (0.0, 0.0)

    def seconds(self) -> float:
        if not self.available:
            return 0.0
        busy, own = self._now()
        return (busy - self.mark[0]) - (own - self.mark[1])


def measure(candidates: list[Candidate], baseline, timer: Timer, repeats: int) -> dict:
    """Interleaved timing; returns per candidate its ratio to ``baseline``, ms, first-call s, and
    how many of its pairs had to be timed again because another process used the CPU."""
    results, live = {}, []
    for c in candidates:
        try:
            first = timer(c.fn)
            timer(c.fn)
        except Exception as exc:  # e.g. a peer that torch.compile cannot trace
            results[c.name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
            continue
        results[c.name] = {"first_call_s": first, "ratios": [], "times": [], "retimed": 0}
        live.append(c)
    timer(baseline)
    others = Others()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for c in live:
                for attempt in range(RETIMES + 1):
                    others.start()
                    base = timer(baseline)
                    t = timer(c.fn)
                    if others.seconds() <= DISTURBED * (base + t) or attempt == RETIMES:
                        break
                    results[c.name]["retimed"] += 1
                results[c.name]["ratios"].append(t / base)
                results[c.name]["times"].append(t)
    finally:
        gc.enable()
    for c in live:
        r = results[c.name]
        r["ratio"] = statistics.median(r.pop("ratios"))
        r["ms"] = statistics.median(r.pop("times")) * 1e3
    return results


def compiled(c: Candidate) -> Candidate:
    return Candidate(c.name, torch.compile(c.fn, fullgraph=True, dynamic=False), c.shape)


def run_device(device: str, args, save: Callable[[dict], None]) -> dict:
    """Every mode on ``device``; ``save`` gets the report after each mode (a run cut short by a
    time limit keeps what it measured)."""
    torch.manual_seed(0)
    x = torch.randn(args.numel, device=device, dtype=getattr(torch, args.dtype))
    x.requires_grad_(True)
    g = torch.randn_like(x)
    timer = Timer(x, g)
    our_rows = ours(args.ops)
    peer_rows, notes = peers() if not args.no_peers else ([], ["peers not measured (--no-peers)"])
    baseline = Candidate("relu (torch)", relu)
    report = {"device": device, "numel": args.numel, "dtype": args.dtype, "notes": notes}
    report["peer_shapes"] = {c.name: c.shape for c in peer_rows}
    kernels_before = len(fused.kernels())
    everything = [baseline, *our_rows, *peer_rows]
    report["saved_bytes"] = {c.name: saved_bytes(c.fn, x) for c in everything}
    save(report)
    if "eager" in args.modes:
        report["eager"] = measure(everything, relu, timer, args.repeats)
        built = fused.kernels()[kernels_before:]
        report["fused_kernels"] = {
            "count": len(built),
            "compile_s": [round(k.compile_seconds or 0.0, 2) for k in built],
            "failure": fused.failure,
        }
        save(report)
    if "fallback" in args.modes:
        fused.enabled, was = False, fused.enabled
        try:
            report["fallback"] = measure([baseline, *our_rows], relu, timer, args.repeats)
        finally:
            fused.enabled = was
        save(report)
    if "compile" in args.modes:
        torch._dynamo.config.recompile_limit = 1024  # one module class, many estimators
        torch._dynamo.config.accumulated_recompile_limit = 4096
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        rows = [c for c in our_rows if c.name.split("/")[0] in args.compile_ops] + peer_rows
        compiled_rows = [compiled(c) for c in [baseline, *rows]]
        report["compile"] = measure(compiled_rows, relu, timer, args.repeats)
        report["compile_saved_bytes"] = {c.name: saved_bytes(c.fn, x) for c in compiled_rows}
        report["compile_graphs"] = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs
        save(report)
    return report


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    info = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def cell(result: dict | None, ms: bool = False) -> str:
    if result is None:
        return "—"
    if "error" in result:
        return "failed"
    return f"{result['ratio']:.2f}x" + (f" ({result['ms']:.3g} ms)" if ms else "")


def markdown(report: dict) -> str:
    dev = report
    lines = [
        f"### {dev['device']}: {dev['numel']:,} {dev['dtype']} elements",
        "",
        "| op/estimator | eager | eager formulas only | torch.compile | saved B/elem | "
        "saved, compiled |",
        "|---|---|---|---|---|---|",
    ]
    for name, saved in dev["saved_bytes"].items():
        if name.split("/")[0] not in MODULES and name != "relu (torch)":
            continue
        row = [cell(dev.get(m, {}).get(name), ms=m == "eager") for m in MODES]
        saved_compiled = dev.get("compile_saved_bytes", {}).get(name)
        row += [f"{saved:g}", "—" if saved_compiled is None else f"{saved_compiled:g}"]
        lines.append(f"| {name} | {' | '.join(row)} |")
    peer_names = list(dev["peer_shapes"])
    if peer_names:
        lines += [
            "",
            "| peer (step) | eager | torch.compile | saved B/elem | ours, same shape | "
            "ours faster by |",
            "|---|---|---|---|---|---|",
        ]
    for name in peer_names:
        ours_name = f"step/{dev['peer_shapes'][name]}"
        peer, mine = dev.get("eager", {}).get(name), dev.get("eager", {}).get(ours_name)
        faster = (
            f"{peer['ratio'] / mine['ratio']:.1f}x"
            if peer and mine and "ratio" in peer and "ratio" in mine
            else "—"
        )
        lines.append(
            f"| {name} | {cell(peer)} | {cell(dev.get('compile', {}).get(name))} | "
            f"{dev['saved_bytes'][name]:g} | {ours_name} {cell(mine)} | {faster} |"
        )
    lines.append("")
    kernels = dev.get("fused_kernels")
    if kernels:
        secs = kernels["compile_s"] or [0.0]
        lines.append(
            f"Fused kernels compiled in this run: {kernels['count']}, "
            f"{statistics.median(secs):.1f} s each (median; {min(secs):.1f} to {max(secs):.1f} s); "
            f"compile failure: {kernels['failure'] or 'none'}."
        )
    comp = dev.get("compile")
    if comp:
        firsts = [r["first_call_s"] for r in comp.values() if "first_call_s" in r]
        lines.append(
            f"torch.compile: {len(firsts)} functions, {dev['compile_graphs']} graphs, first call "
            f"{statistics.median(firsts):.1f} s (median); ratios to eager relu (the relu row is "
            "torch.compile(relu))."
        )
    for mode in MODES:
        rows = [r for r in dev.get(mode, {}).values() if "retimed" in r]
        if rows:
            lines.append(
                f"{mode}: {sum(r['retimed'] for r in rows)} pairs timed again because another "
                "process used the CPU meanwhile."
            )
    lines += [f"Note: {n}" for n in dev["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=16 * 2**20)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--ops", default="step,sign,round")
    parser.add_argument("--compile-ops", default=None, help="ops for the compile mode (--ops)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    args.modes = args.modes.split(",")
    args.ops = args.ops.split(",")
    args.compile_ops = args.compile_ops.split(",") if args.compile_ops else args.ops
    if not set(args.modes) <= set(MODES) or args.repeats < 1:
        parser.error(f"--modes: choose from {', '.join(MODES)}; --repeats >= 1")
    info = machine()
    command = "python benchmarks/ops.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"{command}\n{json.dumps(info)}", flush=True)
    done: list[dict] = []

    def save(current: dict) -> None:
        reports = [*done, current]
        info["load_average_after"] = os.getloadavg()
        if args.json:
            everything = {"command": command, "machine": info, "devices": reports}
            args.json.write_text(json.dumps(everything, indent=1))
        if args.markdown:
            args.markdown.write_text("".join(markdown(r) for r in reports))

    for device in args.devices.split(","):
        done.append(run_device(device, args, save))
        print(markdown(done[-1]), flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Forward plus backward time of the binary and low-bit layers against the float layer of the same
shape, on CPU, in one process.

    python benchmarks/binary_layers.py
    python benchmarks/binary_layers.py --json benchmarks/results/binary_layers_cpu.json
    python benchmarks/binary_layers.py --threads 2 --rounds 20

Groups, each against its float layer on the same input:

- ``conv``: ``nn.Conv2d(128, 128, 3, padding=1)`` on a (64, 128, 14, 14) input (a conv block of a
  binary CNN on 28×28 images) against ``surrogate.BinaryConv2d`` of the same shape with
  ``scale=False`` and ``scale=True``, ``surrogate.QuantConv2d(..., bits=4, learn_step=True)`` (LSQ
  steps for the input and the weight), and Brevitas' ``brevitas.nn.QuantIdentity(bit_width=4)``
  (the input at 4 bits with a learned scale) followed by ``brevitas.nn.QuantConv2d(...,
  weight_bit_width=4)`` (its default weight quantizer: the scale is max|w|, computed each call).
- ``linear``: ``nn.Linear(1024, 1024)`` on a (256, 1024) input against ``surrogate.BinaryLinear``
  with ``scale=False`` and ``scale=True``.

A call is one forward and one backward with a fixed output gradient, the input requiring a gradient
as inside a network; gradients are reset (to None) between calls, outside the timing. Each round
calls every contender of a group once, the order rotated each round, so a shared machine's drift
falls on all of them; after ``--warmup`` rounds left out, a contender's time is its median over
``--rounds`` rounds and its ratio the median (and quartiles) over rounds of its time over the float
layer's of the same round. Brevitas' input quantizer collects statistics over its first training
calls (300 by default) before its scale becomes a learned parameter: those calls run before timing
(forwards only, on 8 samples of the input), so the rounds time the learned-scale steady state.
Brevitas is a benchmark-only dependency (``pip install -e .[bench]``); where it cannot be imported
or run, the report says why instead of a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py, before torch loads

import torch  # noqa: E402
from speed_tables import binary_layers_table  # benchmarks/speed_tables.py, beside this script
from torch import nn

import surrogate

BINARY_TARGET = 1.3  # a binary layer's forward plus backward over the float layer's
GROUPS = ("conv", "linear")


def conv_contenders() -> tuple[list[int], dict[str, tuple[str, Callable[[], nn.Module]]]]:
    """The conv group's input shape and its contenders: name -> (what it is, a builder)."""
    shape = dict(in_channels=128, out_channels=128, kernel_size=3, padding=1)
    return [64, 128, 14, 14], {
        "float": ("nn.Conv2d(128, 128, 3, padding=1)", lambda: nn.Conv2d(**shape)),
        "binary": ("surrogate.BinaryConv2d(128, 128, 3, padding=1)",
                   lambda: surrogate.BinaryConv2d(**shape)),
        "binary scale": ("surrogate.BinaryConv2d(128, 128, 3, padding=1, scale=True)",
                         lambda: surrogate.BinaryConv2d(**shape, scale=True)),
        "quant": ("surrogate.QuantConv2d(128, 128, 3, padding=1, bits=4, learn_step=True)",
                  lambda: surrogate.QuantConv2d(**shape, bits=4, learn_step=True)),
        "brevitas": ("brevitas.nn.QuantIdentity(bit_width=4), then brevitas.nn.QuantConv2d(128, "
                     "128, 3, padding=1, weight_bit_width=4)", brevitas_conv),
    }  # fmt: skip


def linear_contenders() -> tuple[list[int], dict[str, tuple[str, Callable[[], nn.Module]]]]:
    """The linear group's input shape and its contenders."""
    return [256, 1024], {
        "float": ("nn.Linear(1024, 1024)", lambda: nn.Linear(1024, 1024)),
        "binary": ("surrogate.BinaryLinear(1024, 1024)",
                   lambda: surrogate.BinaryLinear(1024, 1024)),
        "binary scale": ("surrogate.BinaryLinear(1024, 1024, scale=True)",
                         lambda: surrogate.BinaryLinear(1024, 1024, scale=True)),
    }  # fmt: skip


def brevitas_conv() -> nn.Module:
    import brevitas.nn as qnn

    return nn.Sequential(
        qnn.QuantIdentity(bit_width=4),
        qnn.QuantConv2d(128, 128, 3, padding=1, weight_bit_width=4),
    )


def brevitas_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("brevitas")
    except Exception:
        return None


def collecting(module: nn.Module) -> list[nn.Module]:
    """The submodules of ``module`` still collecting statistics for a scale (Brevitas'
    ``ParameterFromRuntimeStatsScaling``: a ``counter`` up to ``collect_stats_steps``)."""
    return [
        m
        for m in module.modules()
        if hasattr(m, "collect_stats_steps") and m.counter <= m.collect_stats_steps
    ]


def settle(module: nn.Module, x: torch.Tensor) -> int:
    """Run forwards (training mode, no gradient, 8 samples of ``x``) until no scale of ``module``
    collects statistics any more; how many it took."""
    calls = 0
    with torch.no_grad():
        while collecting(module):
            module(x[:8])
            calls += 1
            if calls > 10_000:
                raise RuntimeError("the scales still collect statistics after 10,000 calls")
    return calls


class Contender:
    """A layer with its input and output gradient: ``call`` times one forward plus backward."""

    def __init__(self, module: nn.Module, x: torch.Tensor):
        self.module = module.train()
        self.x = x.detach().clone().requires_grad_(True)
        with torch.no_grad():
            self.g = torch.randn_like(module(self.x))

    def call(self) -> float:
        self.module.zero_grad(set_to_none=True)
        self.x.grad = None
        start = time.perf_counter()
        self.module(self.x).backward(self.g)
        return time.perf_counter() - start


def build(name: str, what: str, make: Callable[[], nn.Module], x: torch.Tensor):
    """``(Contender, None)``, or ``(None, why)`` where it cannot be built or run."""
    try:
        torch.manual_seed(0)
        module = make()
        calls = settle(module, x)
        contender = Contender(module, x)
        contender.call()
        if calls:
            print(f"  {name}: {calls} statistics-collecting forwards before timing", flush=True)
        return contender, None
    except Exception as error:  # an optional peer: record why, time the others
        why = f"{type(error).__name__}: {error}".strip()
        print(f"  {name}: not run ({why})", flush=True)
        return None, why


def measure_group(group: str, rounds: int, warmup: int) -> dict:
    shape, table = {"conv": conv_contenders, "linear": linear_contenders}[group]()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    found: dict = {"input": shape, "rounds": rounds, "warmup": warmup, "contenders": {}}
    contenders = {}
    for name, (what, make) in table.items():
        contender, why = build(name, what, make, x)
        found["contenders"][name] = {"module": what}
        if contender is None:
            found["contenders"][name]["error"] = why
        else:
            contenders[name] = contender
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + rounds):
        shift = i % len(names)
        took = {name: contenders[name].call() for name in names[shift:] + names[:shift]}
        if i >= warmup:
            for name, seconds in took.items():
                times[name].append(seconds)

    def ratios(top: str, bottom: str) -> list[float]:
        return [t / b for t, b in zip(times[top], times[bottom], strict=True)]

    def ratio(top: str, bottom: str) -> float:
        return statistics.median(ratios(top, bottom))

    for name in names:
        entry = found["contenders"][name]
        entry["ms"] = 1e3 * statistics.median(times[name])
        entry["over_float"] = ratio(name, "float")
        if rounds > 1:
            quartiles = statistics.quantiles(ratios(name, "float"), n=4)
            entry["over_float_quartiles"] = [quartiles[0], quartiles[2]]
        if name.startswith("binary"):
            entry["target"] = BINARY_TARGET
            entry["met"] = entry["over_float"] <= BINARY_TARGET
        entry["runs_ms"] = [round(1e3 * t, 3) for t in times[name]]
    if "quant" in contenders and "brevitas" in contenders:
        found["contenders"]["quant"]["over_brevitas"] = ratio("quant", "brevitas")
    return found


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--rounds", type=int, default=80, help="timed rounds per group")
    parser.add_argument("--warmup", type=int, default=3, help="rounds left out per group")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    text = shlex.join(["python", "benchmarks/binary_layers.py", *argv])
    print(text, flush=True)
    started = time.perf_counter()
    report = {
        "command": text,
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "torch": torch.__version__,
        "brevitas": brevitas_version(),
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "warmup": args.warmup,
        "load_at_start": load(),
        "groups": {},
    }  # fmt: skip
    for group in args.groups:
        print(f"{group}:", flush=True)
        report["groups"][group] = measure_group(group, args.rounds, args.warmup)
    report["load_at_end"] = load()
    report["seconds"] = round(time.perf_counter() - started, 1)
    print()
    print(binary_layers_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""The cost of ``import surrogate`` against ``import torch``, each in a fresh interpreter.

    python benchmarks/import_time.py [--pairs 7]

The two commands run in turn, ``--pairs`` times, so the load of a shared machine falls on both
alike; printed are each side's median wall time and the median of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {"torch": "import torch", "surrogate": "import surrogate"}


def seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args()
    seconds(COMMANDS["surrogate"])  # warm the file cache for both
    times = {name: [] for name in COMMANDS}
    for _ in range(args.pairs):
        for name, code in COMMANDS.items():
            times[name].append(seconds(code))
    ratios = [s / t for s, t in zip(times["surrogate"], times["torch"], strict=True)]
    for name, values in times.items():
        print(f"import {name:<9} median {statistics.median(values):.3f} s "
              f"(min {min(values):.3f}, max {max(values):.3f})")  # fmt: skip
    print(f"ratio surrogate/torch: median {statistics.median(ratios):.2f}x over {args.pairs} pairs")


if __name__ == "__main__":
    main()

"""Where the fused kernels start to pay: forward plus backward time through ``surrogate.fused``'s
compiled kernels over the time of the eager formulas, by tensor size.

    python benchmarks/fused_threshold.py                  # CPU
    python benchmarks/fused_threshold.py --device cuda
    python benchmarks/fused_threshold.py --min-log2 17 --max-log2 23 --saved   # ms saved per call

A compiled kernel reads and writes each element once, the eager formulas once per elementwise op,
but a compiled call costs a fixed overhead (dynamo's guards, the AOT wrapper, the launcher). Each
size times both paths in interleaved pairs, after warm-up, and reports the median ratio per
estimator; ``surrogate.fused.thresholds[device]`` should sit where the ratios drop below 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from ops import MODULES, Timer  # benchmarks/ops.py, beside this script

from surrogate import fused

CASES = [("step", "sigmoid"), ("step", "atan"), ("sign", "clipped_ste"), ("round", "gaussian")]


def measure(n: int, device: str, repeats: int, dtype: torch.dtype) -> dict[str, tuple]:
    """Per case: the median ratio fused/eager and the median milliseconds each path saves."""
    x = torch.randn(n, device=device, dtype=dtype).requires_grad_(True)
    timer = Timer(x, torch.randn_like(x))
    found = {}
    for op, name in CASES:
        fn = MODULES[op](name)
        pairs = []
        for i in range(repeats + 2):
            fused.enabled = True
            compiled = timer(fn)
            fused.enabled = False
            eager = timer(fn)
            if i >= 2:  # warm-up: compiles, caches
                pairs.append((compiled, eager))
        fused.enabled = True
        ratio = statistics.median(c / e for c, e in pairs)
        found[f"{op}/{name}"] = (ratio, 1e3 * statistics.median(e - c for c, e in pairs))
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--min-log2", type=int, default=12)
    parser.add_argument("--max-log2", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--saved", action="store_true", help="also the ms a compiled call saves")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if not fused.enabled:
        sys.exit(f"the fused path is off here: {fused.failure or 'SURROGATE_FUSED=0'}")
    fused.thresholds = dict.fromkeys(fused.thresholds, 1)  # every size through the kernels
    names = [f"{op}/{name}" for op, name in CASES]
    print(f"fused / eager formulas, forward plus backward, {args.device}, {args.dtype}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} pairs (below 1: the "
          "fused kernels are faster" + ("; in brackets the ms a call saves" if args.saved else "")
          + ")\n")  # fmt: skip
    print("| elements | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for log2 in range(args.min_log2, args.max_log2 + 1):
        found = measure(2**log2, args.device, args.repeats, dtype)
        cells = [f"{r:.2f}" + (f" ({ms:.2f})" if args.saved else "") for r, ms in found.values()]
        print(f"| 2^{log2} | " + " | ".join(cells) + " |", flush=True)
    if fused.failure:
        print(f"\nnote: compiling failed ({fused.failure}); the ratios above are eager/eager")


if __name__ == "__main__":
    main()

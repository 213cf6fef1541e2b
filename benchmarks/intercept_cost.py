"""Per-step time of ``model=plain_cnn`` under ``surrogate.intercept``, as a ratio to the same
network built from surrogate's modules (``model=cnn``'s ``HardCNN`` with the same activations).

    python benchmarks/intercept_cost.py                        # digits-sized CNN, batch 64
    python benchmarks/intercept_cost.py --size 28 --channels 16,32 --groups 32 --rounds 15

A step is one forward, cross-entropy, backward and Adam update on a fixed batch. Candidates:

* ``intercept``: ``PlainCNN`` with every step under ``surrogate.intercept(sign=..., argmax=...)``;
* ``scoped``: the same under ``surrogate.intercept(..., only=surrogate.audit(model, x, loss=fn))``
  (the audit runs once, before timing; skipped where ``intercept`` takes no ``only``).

Each round times the baseline (``HardCNN`` with ``surrogate.swap``'s estimators) and then a
candidate, ``--steps`` steps each after one warm-up step; a candidate's ratio is the median over
rounds of its time over the baseline time just before it, so load from other processes on a
shared CPU cancels as far as it can.
"""

from __future__ import annotations

import argparse
import inspect
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import surrogate
from surrogate.training.models.cnn import HardCNN
from surrogate.training.models.plain_cnn import PlainCNN


def networks(args) -> tuple[HardCNN, PlainCNN]:
    """The two networks, with the same initial parameters (the same seed)."""
    config = dict(
        input_shape=(1, args.size, args.size),
        num_classes=10,
        channels=args.channels,
        activations=("sign", "sign"),
        groups=args.groups,
        categories=8,
    )
    torch.manual_seed(0)
    hard = HardCNN(**config)
    surrogate.swap(hard, sign=args.sign, argmax=args.argmax)
    torch.manual_seed(0)
    plain = PlainCNN(**config)
    return hard, plain


def stepper(model, x, y, mode=None):
    """One training step of ``model`` on (x, y), under ``mode`` if given."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        if mode is None:
            loss = F.cross_entropy(model(x), y)
        else:
            with mode:
                loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def seconds(step, steps: int) -> float:
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8, help="image side (digits: 8)")
    parser.add_argument("--channels", type=lambda s: [int(c) for c in s.split(",")],
                        default=[64, 128])  # fmt: skip
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--sign", default="atan")
    parser.add_argument("--argmax", default="softmax")
    parser.add_argument("--steps", type=int, default=5, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write what it prints to this file (a report)")
    args = parser.parse_args(argv)
    lines: list[str] = []

    def say(line: str) -> None:
        print(line)
        lines.append(line)

    torch.set_num_threads(args.threads)
    say("$ python benchmarks/intercept_cost.py " + " ".join(sys.argv[1:] if argv is None
                                                              else argv))  # fmt: skip
    say(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} thread(s)")  # fmt: skip
    hard, plain = networks(args)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 1, args.size, args.size, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    keywords = dict(sign=args.sign, argmax=args.argmax)
    candidates = {"intercept": stepper(plain, x, y, surrogate.intercept(**keywords))}
    if "only" in inspect.signature(surrogate.intercept).parameters:
        report = surrogate.audit(plain, x, loss=lambda out: F.cross_entropy(out, y))
        scoped = surrogate.intercept(**keywords, only=report)
        candidates["scoped"] = stepper(plain, x, y, scoped)
    baseline = stepper(hard, x, y)
    ratios: dict[str, list[float]] = {name: [] for name in candidates}
    base_times: list[float] = []
    for _ in range(args.rounds):
        for name, step in candidates.items():
            base = seconds(baseline, args.steps)
            base_times.append(base)
            ratios[name].append(seconds(step, args.steps) / base)
    base_ms = statistics.median(base_times) * 1e3
    say(f"baseline HardCNN (surrogate modules): {base_ms:.2f} ms/step")
    for name, values in ratios.items():
        q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        say(f"{name:10s} ratio to baseline: median {statistics.median(values):.3f} "
              f"(quartiles {q[0]:.3f}-{q[2]:.3f}, {len(values)} rounds)")  # fmt: skip
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

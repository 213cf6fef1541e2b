"""What the hard-op diagnostics cost a training run, as a share of its training time.

    python benchmarks/diagnostics.py                    # the default config (digits), CPU
    python benchmarks/diagnostics.py data=fashion_mnist \
        data.root=/usr/share/datasets/fashion-mnist --no-runs   # the measurement alone
    python benchmarks/diagnostics.py --json benchmarks/results/diagnostics_cpu.json

Two measurements, both in one process:

- per measurement: the median time of one ``diagnostics.measure`` on the probe, against the median
  time of one training step (forward, cross-entropy, backward, Adam step on a training batch),
  both on the network the config builds; the cost per step at the config's cadence (one
  measurement every ``callbacks.diagnostics_every`` epochs) is
  measure / (diagnostics_every × steps per epoch × step);
- whole runs: ``surrogate.training.run.run`` with ``callbacks.diagnostics`` true and false,
  interleaved ``--repeats`` times, and the median ratio of their wall seconds (the whole run:
  data, fit with its validations and checkpoints, test).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

QUIET = ["callbacks.progress_refresh_rate=0", "trainer.enable_model_summary=false", "logger=none"]


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_validation(config: dict, repeats: int) -> dict:
    """Median seconds of one measurement and of one training step, and steps per epoch."""
    from surrogate.training.callbacks.diagnostics import measure
    from surrogate.training.config.op import HardOpConfig
    from surrogate.training.run import build

    with tempfile.TemporaryDirectory() as out:
        data, module, _, _ = build(config, Path(out), HardOpConfig.parse(config["op"]))
    net = module.net
    optimizer = torch.optim.Adam(net.parameters(), lr=config["model"]["optimizer"]["lr"])
    x, y = next(iter(data.train_dataloader()))
    probe = [t[: config["callbacks"]["probe_size"]] for t in next(iter(data.val_dataloader()))]

    def step():
        net.train()
        optimizer.zero_grad()
        F.cross_entropy(net(x), y).backward()
        optimizer.step()

    def measurement():
        measure(net, *probe)

    for _ in range(3):  # warm-up
        step(), measurement()
    step_s = _median_seconds(step, repeats * 10)
    measure_s = _median_seconds(measurement, repeats * 10)
    steps = len(data.train_dataloader())
    every = config["callbacks"]["diagnostics_every"]
    return {
        "step_ms": round(step_s * 1e3, 3),
        "measure_ms": round(measure_s * 1e3, 3),
        "probe_size": len(probe[1]),
        "steps_per_epoch": steps,
        "diagnostics_every": every,
        "cost_per_step_percent": round(100 * measure_s / (every * steps * step_s), 2),
    }


def whole_runs(overrides: list[str], repeats: int) -> dict:
    """Wall seconds of whole runs with and without diagnostics, interleaved, and the median of
    their ratios."""
    from surrogate.training.config.compose import compose_config
    from surrogate.training.run import run

    seconds: dict[str, list[float]] = {"true": [], "false": []}
    for _ in range(repeats):
        for on in seconds:
            with tempfile.TemporaryDirectory() as out:
                args = [*QUIET, *overrides, f"callbacks.diagnostics={on}"]
                metrics = run(compose_config(args, ROOT / "configs", out), out)
                seconds[on].append(metrics["wall_seconds"])
    ratios = [a / b for a, b in zip(seconds["true"], seconds["false"], strict=True)]
    return {
        "wall_seconds_on": seconds["true"],
        "wall_seconds_off": seconds["false"],
        "median_ratio_on_over_off": round(statistics.median(ratios), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. op=atan")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-runs", action="store_true", help="skip the whole-run comparison")
    args = parser.parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    from surrogate.training.config.compose import compose_config

    with tempfile.TemporaryDirectory() as out:
        config = compose_config([*QUIET, *args.overrides], ROOT / "configs", out)
    torch.set_num_threads(
        max(config["threads"], 1) if config["threads"] else torch.get_num_threads()
    )
    result = {
        "command": " ".join(["python benchmarks/diagnostics.py", *sys.argv[1:]]),
        "overrides": args.overrides,
        "threads": torch.get_num_threads(),
        "per_validation": per_validation(config, args.repeats),
    }
    if not args.no_runs:
        result["whole_runs"] = whole_runs(args.overrides, args.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

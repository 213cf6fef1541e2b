"""Training throughput, whole process: images per second of each shipped network's training step
through the app and through a plain PyTorch loop, fused kernels on and off, and the wall time of
``python train.py`` on a warm and a cold compile cache, one run alone and two started at once.

    python benchmarks/throughput.py                        # every case and section
    python benchmarks/throughput.py --cases cnn/fashion_mnist --sections process --repeats 3
    python benchmarks/throughput.py --json benchmarks/results/throughput_cpu.json

Every figure comes from a process of its own, started the way a user starts one, and the variants
of a case run interleaved (each repeat runs every variant once, in a rotated order), so a shared
machine's drift falls on all of them; ratios are taken within a repeat and their median reported.
Variants:

- ``default``: as shipped; ``eager``: ``SURROGATE_FUSED=0``; ``fused``: the compiled kernels from
  ``--fused-threshold`` elements up (``surrogate.fused.thresholds["cpu"]`` set before the script
  runs; 2^17, the CPU threshold before the default changed);
- ``cold``: the default with ``TORCHINDUCTOR_CACHE_DIR`` a fresh folder (a first run on a new
  machine); ``fused cold``: the same for ``fused``;
- ``spin``: OpenMP's own wait policy (threads spin a while before they sleep) instead of the
  passive one ``train.py`` sets: torch is loaded before the script runs; ``threads=1``,
  ``threads=2``: the default with that override.

Sections:

- ``steps``: ``benchmarks/train.py --mode lightning`` (the app's training step, timed from the end
  of one step to the end of the next) and ``--mode plain`` (the plain loop) per variant; images per
  second over the epochs after the first.
- ``process``: ``python train.py`` per variant: wall seconds, CPU seconds, and its own
  ``train_seconds`` (training and validation); ratios to ``default`` of the same repeat.
- ``concurrent``: each ``--concurrent`` variant run alone and as two processes started at once;
  each of the two's wall time over the lone run's of the same repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FASHION = "/usr/share/datasets/fashion-mnist"
SHORT_FASHION = ["data=fashion_mnist", f"data.root={FASHION}", "data.train_subset=10000",
                 "trainer.max_epochs=2"]  # fmt: skip
# Each case: the overrides of its whole-process run (``process``, ``concurrent``), and the extra
# ones and epoch count of its step measurement (``steps``: a few epochs, limited batches).
CASES = {
    "cnn/digits": ([], [], 4),
    "plain_cnn/digits": (["model=plain_cnn"], [], 4),
    "cnn/fashion_mnist": (SHORT_FASHION, ["trainer.limit_train_batches=30"], 3),
    "plain_cnn/fashion_mnist": (
        ["model=plain_cnn", *SHORT_FASHION],
        ["trainer.limit_train_batches=30"],
        3,
    ),  # fmt: skip
    "cat_vae/fashion_mnist": (
        ["model=cat_vae", *SHORT_FASHION],
        ["trainer.limit_train_batches=30"],
        3,
    ),  # fmt: skip
}
SECTIONS = ("steps", "process", "concurrent")


@dataclass(frozen=True)
class Variant:
    env: dict[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    fused: bool = False  # the compiled kernels from --fused-threshold up
    cold: bool = False  # a fresh compile cache
    spin: bool = False  # OpenMP's own wait policy: torch loads before train.py sets one

    @property
    def launched(self) -> bool:
        """Whether the script runs under ``launch`` (which loads torch first)."""
        return self.fused or self.spin


VARIANTS = {
    "default": Variant(),
    "eager": Variant(env={"SURROGATE_FUSED": "0"}),
    "fused": Variant(fused=True),
    "cold": Variant(cold=True),
    "fused cold": Variant(fused=True, cold=True),
    "spin": Variant(spin=True),
    "threads=1": Variant(overrides=("threads=1",)),
    "threads=2": Variant(overrides=("threads=2",)),
}


def command(script: str, args: list[str], variant: Variant, threshold: int) -> list[str]:
    """The command line that runs ``script`` with ``args`` as ``variant`` says."""
    if variant.launched:
        threshold = threshold if variant.fused else 0
        return [sys.executable, __file__, "--launch", str(threshold), script, *args]
    return [sys.executable, script, *args]


def environment(variant: Variant, scratch: Path) -> dict[str, str]:
    env = {**os.environ, **variant.env}
    if variant.spin:
        env.pop("OMP_WAIT_POLICY", None)
    elif variant.launched:  # torch loads before the script: give it the policy train.py sets
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if variant.cold:
        env["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="cold_cache_", dir=scratch)
    return env


def start(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, float]:
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    return process, time.perf_counter()


def finish(process: subprocess.Popen, started: float) -> dict:
    """Wait for ``process``: its wall and CPU seconds and what it printed last."""
    out, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"{' '.join(process.args)} failed:\n{err[-3000:]}")
    return {"wall_s": wall, "stdout": out.strip().splitlines()[-1] if out.strip() else ""}


def cpu_seconds_of_children() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def run_process(case: str, name: str, threshold: int, scratch: Path, copies: int = 1) -> list[dict]:
    """``python train.py`` of ``case`` as variant ``name``, ``copies`` started at once."""
    variant = VARIANTS[name]
    runs = []
    cpu = cpu_seconds_of_children()
    for _ in range(copies):
        folder = Path(tempfile.mkdtemp(prefix="run_", dir=scratch))
        args = [*CASES[case][0], *variant.overrides, f"hydra.run.dir={folder}"]
        runs.append((folder, *start(command("train.py", args, variant, threshold),
                                    environment(variant, scratch))))  # fmt: skip
    results = []
    for folder, process, started in runs:
        result = finish(process, started)
        metrics = json.loads((folder / "metrics.json").read_text())
        result.update(train_s=metrics["train_seconds"], steps=metrics["steps"])
        results.append(result)
    for result in results:
        result["cpu_s"] = (cpu_seconds_of_children() - cpu) / copies
    return results


def run_steps(case: str, name: str, mode: str, threshold: int, scratch: Path) -> dict:
    """``benchmarks/train.py --mode MODE`` of ``case`` as variant ``name``: images per second over
    the epochs after the first."""
    variant = VARIANTS[name]
    overrides, extra, epochs = CASES[case]
    args = ["--mode", mode, "--epochs", str(epochs), *overrides, *extra, *variant.overrides]
    cmd = command("benchmarks/train.py", args, variant, threshold)
    result = finish(*start(cmd, environment(variant, scratch)))
    report = json.loads(result["stdout"])
    steps = report["lightning_step_s" if mode == "lightning" else "plain_step_s"]
    seconds = sum(sum(epoch) for epoch in steps[1:])  # the first epoch is warm-up
    return {"wall_s": result["wall_s"], "images_per_s": sum(report["images"][1:]) / seconds,
            "threads": report["threads"]}  # fmt: skip


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure_case(case: str, args, scratch: Path) -> dict:
    found: dict = {"overrides": CASES[case][0]}
    if "steps" in args.sections:
        rows = [(mode, name) for mode in ("lightning", "plain") for name in args.step_variants]
        runs: dict[str, list[dict]] = {f"{m} {n}": [] for m, n in rows}
        for repeat in range(args.repeats):
            shift = repeat % len(rows)
            for mode, name in rows[shift:] + rows[:shift]:
                result = run_steps(case, name, mode, args.fused_threshold, scratch)
                runs[f"{mode} {name}"].append(result)
                print(f"  {case} steps {mode} {name}: {result['images_per_s']:.0f} images/s",
                      flush=True)  # fmt: skip
        found["steps"] = {
            key: {"images_per_s": median([r["images_per_s"] for r in rs]), "runs": rs}
            for key, rs in runs.items()
        }
    if "process" in args.sections:
        names = args.process_variants
        runs = {name: [] for name in names}
        for repeat in range(args.repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                (result,) = run_process(case, name, args.fused_threshold, scratch)
                runs[name].append(result)
                print(f"  {case} process {name}: {result['wall_s']:.1f} s", flush=True)
        found["process"] = {
            name: {
                "wall_s": median([r["wall_s"] for r in rs]),
                "train_s": median([r["train_s"] for r in rs]),
                "over_default": median(
                    [r["wall_s"] / d["wall_s"] for r, d in zip(rs, runs["default"], strict=True)]
                ),
                "runs": rs,
            }  # fmt: skip
            for name, rs in runs.items()
        }
    if "concurrent" in args.sections and case in (args.concurrent_cases or args.cases):
        found["concurrent"] = {}
        for name in args.concurrent:
            alone, pairs = [], []
            for repeat in range(args.repeats):
                order = ("alone", "pair") if repeat % 2 == 0 else ("pair", "alone")
                for kind in order:
                    if kind == "alone":
                        alone.append(run_process(case, name, args.fused_threshold, scratch)[0])
                    else:
                        pairs.append(run_process(case, name, args.fused_threshold, scratch, 2))
                print(
                    f"  {case} concurrent {name}: alone {alone[-1]['wall_s']:.1f} s, two at "
                    f"once {' and '.join(format(r['wall_s'], '.1f') for r in pairs[-1])} s",
                    flush=True,
                )
            ratios = [r["wall_s"] / a["wall_s"] for a, pair in zip(alone, pairs, strict=True)
                      for r in pair]  # fmt: skip
            found["concurrent"][name] = {
                "alone_wall_s": median([a["wall_s"] for a in alone]),
                "pair_wall_s": median([r["wall_s"] for pair in pairs for r in pair]),
                "pair_over_alone": median(ratios),
                "pair_over_alone_max": max(ratios),
                "alone": alone,
                "pairs": pairs,
            }
    return found


def launch(threshold: int, script: str, args: list[str]) -> None:
    """Run ``script`` in this process, torch loaded first, with the compiled kernels from
    ``threshold`` elements up on every device (0: the shipped thresholds)."""
    from surrogate import fused

    if threshold:
        fused.thresholds = dict.fromkeys(fused.thresholds, threshold)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--launch"]:
        launch(int(argv[1]), argv[2], argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--step-variants", nargs="+", choices=list(VARIANTS),
                        default=["default", "eager", "fused"])  # fmt: skip
    parser.add_argument("--process-variants", nargs="+", choices=list(VARIANTS),
                        default=["default", "eager", "fused", "cold", "fused cold"])  # fmt: skip
    parser.add_argument("--concurrent", nargs="+", choices=list(VARIANTS), default=["default"])
    parser.add_argument("--concurrent-cases", nargs="+", choices=list(CASES),
                        help="the concurrent section's cases (default: every case)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fused-threshold", type=int, default=2**17)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if "process" in args.sections and "default" not in args.process_variants:
        parser.error("--process-variants needs default (the ratios are to it)")
    text = shlex.join(["python", "benchmarks/throughput.py", *argv])
    print(text, flush=True)
    report = {
        "command": text,
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_at_start": load(),
        "cases": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="throughput_") as scratch:
        for case in args.cases:
            report["cases"][case] = measure_case(case, args, Path(scratch))
            if args.json:  # what is done so far, in case a later case is cut short
                args.json.write_text(json.dumps({**report, "load_at_end": load()}, indent=1))
    report["load_at_end"] = load()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({case: {k: v for k, v in found.items() if k != "overrides"}
                      for case, found in report["cases"].items()}, default=str)[:4000])  # fmt: skip


if __name__ == "__main__":
    main()

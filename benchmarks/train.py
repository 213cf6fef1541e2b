"""Training steps per second and peak memory: the default CNN on digits through Lightning, against a
plain PyTorch loop with the same model, data, optimizer and threads.

    python benchmarks/train.py                        # op=ste (the default config), CPU
    python benchmarks/train.py op=atan --epochs 12 --rounds 5
    python benchmarks/train.py --accelerator gpu      # on CUDA

Both sides come from ``surrogate.training.build`` on the config ``train.py`` would run (composed
by ``tests/train_helpers.compose_config``). Lightning runs ``trainer.fit`` as configured
(validation and checkpoints each epoch, CSV logging). The plain loop takes the LightningModule's
network, the data module's training loader, and the configured optimizer and cosine schedule, and
runs forward, cross-entropy, backward and step. A training step is timed from the end of the one
before it (or the start of its epoch), so data loading and every per-step hook count and the
validation between epochs does not; the first epoch is warm-up. Each variant runs in a process of
its own (its peak resident memory is its own), alternating plain and Lightning for ``--rounds``
rounds; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
VARIANTS = ("plain", "lightning")


def config_for(overrides: list[str], epochs: int, accelerator: str, output_dir: Path) -> dict:
    from train_helpers import compose_config

    fixed = [
        f"trainer.max_epochs={epochs}",
        "callbacks.progress_refresh_rate=0",
        "trainer.enable_model_summary=false",
    ]
    if accelerator == "gpu":
        fixed += ["trainer.accelerator=gpu", "trainer.devices=1"]
    return compose_config([*fixed, *overrides], output_dir)


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Clock:
    """Step end times per epoch: ``start`` at an epoch's start, ``tick`` after each step. Keeps
    wall time and this process's CPU time (which other processes' load does not inflate)."""

    def __init__(self, sync):
        self.epochs: list[list[tuple[float, float]]] = []
        self.sync = sync

    def start(self) -> None:
        self.epochs.append([(time.perf_counter(), time.process_time())])

    def tick(self) -> None:
        self.sync()
        self.epochs[-1].append((time.perf_counter(), time.process_time()))

    def step_seconds(self, which: int) -> list[float]:
        """Every step's wall (0) or CPU (1) seconds, the first epoch left out."""
        pairs = [zip(times, times[1:], strict=False) for times in self.epochs[1:]]
        return [b[which] - a[which] for steps in pairs for a, b in steps]


def run_variant(variant: str, overrides: list[str], epochs: int, accelerator: str) -> dict:
    import pytorch_lightning as pl
    import torch
    import torch.nn.functional as F

    from surrogate.lit import OPTIMIZERS
    from surrogate.training import build

    output_dir = Path(tempfile.mkdtemp(prefix=f"bench_{variant}_"))
    config = config_for(overrides, epochs, accelerator, output_dir)
    if config["threads"] > 0:
        torch.set_num_threads(config["threads"])
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    data, module, trainer, _ = build(config, output_dir)
    cuda = accelerator == "gpu"
    clock = Clock(torch.cuda.synchronize if cuda else (lambda: None))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_start = resident_mb()
    if variant == "lightning":

        class Ticks(pl.Callback):
            def on_train_epoch_start(self, trainer, pl_module):
                clock.start()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                clock.tick()

        trainer.callbacks.append(Ticks())
        trainer.fit(module, datamodule=data)
    else:
        device = torch.device("cuda" if cuda else "cpu")
        data.setup("fit")
        loader = data.train_dataloader()
        net = module.net.to(device).train()
        opt = dict(config["model"]["optimizer"])  # as HardNetClassifier.configure_optimizers
        cls = OPTIMIZERS[opt.pop("name")]
        if cls is not torch.optim.SGD:
            opt.pop("momentum", None)
        optimizer = cls(net.parameters(), **opt)
        cosine = config["model"]["scheduler"]["name"] == "cosine"
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        for epoch in range(epochs):
            torch.manual_seed((config["seed"] * 1_000_003 + epoch) * 64)  # as the module does
            loader.sampler.set_epoch(epoch)
            clock.start()
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss = F.cross_entropy(net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                clock.tick()
            if cosine:
                schedule.step()
    steps, cpu = clock.step_seconds(0), clock.step_seconds(1)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "variant": variant,
        "steps_timed": len(steps),
        "step_ms": 1e3 * sum(steps) / len(steps),
        "cpu_ms": 1e3 * sum(cpu) / len(cpu),
        "peak_rss_mb": peak_rss,
        "peak_rss_growth_mb": peak_rss - rss_start,
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "threads": torch.get_num_threads(),
    }


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. op=atan")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.overrides, args.epochs, args.accelerator)))
        return
    command = "python benchmarks/train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(command, flush=True)
    runs = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--variant", variant, "--epochs", str(args.epochs),
                   "--accelerator", args.accelerator, *args.overrides]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
            runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[variant][-1]), flush=True)
    keys = ("step_ms", "cpu_ms", "peak_rss_mb", "peak_rss_growth_mb", "peak_cuda_mb")
    summary = {v: {k: median_of(runs[v], k) for k in keys} for v in VARIANTS}
    print(table(summary, args.accelerator))
    wall = summary["lightning"]["step_ms"] / summary["plain"]["step_ms"]
    cpu = summary["lightning"]["cpu_ms"] / summary["plain"]["cpu_ms"]
    steps = runs["plain"][0]["steps_timed"]
    print(f"Lightning / plain time per step: {wall:.2f}x wall, {cpu:.2f}x CPU (medians of "
          f"{args.rounds} rounds, {steps} steps each)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"command": command, "runs": runs, "summary": summary}))


def table(summary: dict, accelerator: str) -> str:
    lines = [
        f"\n| {accelerator} | ms/step | steps/s | CPU ms/step | peak RSS MB | RSS growth MB | "
        "peak CUDA MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, s in summary.items():
        cuda = f"{s['peak_cuda_mb']:.1f}" if s["peak_cuda_mb"] is not None else "—"
        lines.append(
            f"| {variant} | {s['step_ms']:.2f} | {1e3 / s['step_ms']:.0f} | {s['cpu_ms']:.2f} | "
            f"{s['peak_rss_mb']:.0f} | {s['peak_rss_growth_mb']:.0f} | {cuda} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

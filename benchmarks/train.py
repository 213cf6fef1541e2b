"""Training time per step and peak memory: the default CNN on digits through Lightning, against a
plain PyTorch loop with the same model, data, optimizer and threads.

    python benchmarks/train.py                        # op=ste (the default config), CPU
    python benchmarks/train.py op=atan --epochs 20
    python benchmarks/train.py --accelerator gpu      # on CUDA

Both sides come from ``surrogate.training.run.build`` on the config ``train.py`` would run
(composed by ``surrogate.training.config.compose.compose_config``).

Time per step is measured in pairs, in one process, so that the load of a shared machine falls on
both sides alike: Lightning runs ``trainer.fit`` as configured (validation and checkpoints each
epoch, CSV logging), and after each of its training steps a callback runs one step of a plain loop
on a copy of the network with its own optimizer, schedule and loader: next batch, forward,
cross-entropy, ``zero_grad``, backward, ``step``. A Lightning step is timed from the end of the
plain step before it (or the start of its epoch) to the end of its own, so data loading and every
per-step hook count and the validation between epochs does not. The ratio is taken per epoch
(Lightning's step time over the plain loop's, summed over the epoch's steps) and its median over
epochs reported; the first epoch is warm-up.

Peak memory comes from one process per side (Lightning alone, the plain loop alone), so each
peak is its own.

The plain loop takes the task's loss and runs a network without surrogate's modules
(``model=plain_cnn``) under ``surrogate.intercept`` as the app does; it is fp32 and plain
otherwise: it does not follow ``trainer.precision`` (autocast) or ``trainer.gradient_clip_val``,
and a validation inside an epoch (``trainer.val_check_interval`` < 1) falls inside the Lightning
step before it. Compare the defaults, or configs that leave those alone.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py, before torch loads
MODES = ("paired", "plain", "lightning")


def config_for(overrides: list[str], epochs: int, accelerator: str, output_dir: Path) -> dict:
    from surrogate.training.config.compose import compose_config

    fixed = [
        f"trainer.max_epochs={epochs}",
        "callbacks.progress_refresh_rate=0",
        "trainer.enable_model_summary=false",
    ]
    if accelerator == "gpu":
        fixed += ["trainer.accelerator=gpu", "trainer.devices=1"]
    return compose_config([*fixed, *overrides], ROOT / "configs", output_dir)


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class PlainLoop:
    """The plain PyTorch loop, one step at a time: the network, the configured optimizer and
    cosine schedule, and a training loader of its own."""

    def __init__(self, config: dict, net, loader, device, epochs: int, task):
        from surrogate.training.config.op import HardOpConfig
        from surrogate.training.optimization import build_optimizer, build_scheduler

        self.net, self.loader, self.device = net.to(device).train(), loader, device
        self.task, self.images = task, 0  # the task's loss; images trained on so far
        self.ops = HardOpConfig.parse(config["op"])
        self.intercept = config["model"]["apply_estimators"] != "swap"  # as ApplyEstimators does
        self.optimizer = build_optimizer(self.net, config["model"]["optimizer"])
        self.schedule = build_scheduler(self.optimizer, config["model"]["scheduler"], epochs)
        self.seed = config["seed"]
        self.batches = iter(())

    def start_epoch(self, epoch: int) -> None:
        import torch

        from surrogate.training.data.datamodule import epoch_seed

        torch.manual_seed(epoch_seed(self.seed, epoch, rank=0))  # as the module does
        self.loader.sampler.set_epoch(epoch)
        self.batches = iter(self.loader)

    def end_epoch(self) -> None:
        if self.schedule is not None:
            self.schedule.step()

    def step(self) -> bool:
        """One training step; False once the epoch's batches are used up."""
        import surrogate

        batch = next(self.batches, None)
        if batch is None:
            return False
        x, y = self.task.split([t.to(self.device, non_blocking=True) for t in batch])
        with surrogate.intercept(**self.ops.ops) if self.intercept else nullcontext():
            loss = self.task.loss(self.net(x), y)
        self.images += len(x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return True


def run(mode: str, overrides: list[str], epochs: int, accelerator: str) -> dict:
    import pytorch_lightning as pl
    import torch

    from surrogate.training.config.op import HardOpConfig
    from surrogate.training.run import build

    output_dir = Path(tempfile.mkdtemp(prefix=f"bench_{mode}_"))
    config = config_for(overrides, epochs, accelerator, output_dir)
    if config["threads"] > 0:
        torch.set_num_threads(config["threads"])
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    ops = HardOpConfig.parse(config["op"])
    data, module, trainer, _ = build(config, output_dir, ops)
    cuda = accelerator == "gpu"
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_start = resident_mb()
    lightning_s: list[list[float]] = []  # per epoch, per step
    plain_s: list[list[float]] = []
    images: list[int] = []  # per epoch, the images trained on (by Lightning; plain mode: plain)

    if mode == "plain":
        data.setup("fit")
        ops.apply(module.net)  # what the ApplyEstimators callback does at setup
        plain = PlainLoop(config, module.net, data.train_dataloader(), device, epochs, module.task)
        for epoch in range(epochs):
            plain.start_epoch(epoch)
            plain_s.append([])
            before = plain.images
            last = time.perf_counter()
            while plain.step():
                sync()
                now = time.perf_counter()
                plain_s[-1].append(now - last)
                last = now
            plain.end_epoch()
            images.append(plain.images - before)
    else:
        twin: PlainLoop | None = None

        class Pairs(pl.Callback):
            """Times each Lightning step and, in ``paired`` mode, runs a plain step after it."""

            images = 0

            def on_fit_start(self, trainer, pl_module):
                nonlocal twin
                if mode == "paired":
                    loader = trainer.datamodule.train_dataloader()
                    net = copy.deepcopy(pl_module.net)
                    twin = PlainLoop(config, net, loader, device, epochs, pl_module.task)

            def on_train_epoch_start(self, trainer, pl_module):
                self.before = self.images
                lightning_s.append([])
                plain_s.append([])
                if twin is not None:
                    twin.start_epoch(trainer.current_epoch)
                self.last = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                sync()
                now = time.perf_counter()
                lightning_s[-1].append(now - self.last)
                self.images += len(pl_module.task.split(batch)[0])
                if twin is not None and twin.step():
                    sync()
                    done = time.perf_counter()
                    plain_s[-1].append(done - now)
                    now = done
                self.last = now

            def on_train_epoch_end(self, trainer, pl_module):
                images.append(self.images - self.before)
                if twin is not None:
                    twin.end_epoch()

        trainer.callbacks.append(Pairs())  # last, so the other callbacks' step hooks count
        trainer.fit(module, datamodule=data)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "lightning_step_s": lightning_s,
        "plain_step_s": plain_s,
        "images": images,
        "peak_rss_mb": peak_rss,
        "peak_rss_growth_mb": peak_rss - rss_start,
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "threads": torch.get_num_threads(),
    }


def mean_ms(epochs: list[list[float]]) -> float:
    steps = [s for epoch in epochs[1:] for s in epoch]  # the first epoch is warm-up
    return 1e3 * sum(steps) / len(steps)


def summarize(paired: dict, alone: dict[str, dict]) -> dict:
    epochs = list(zip(paired["lightning_step_s"][1:], paired["plain_step_s"][1:], strict=True))
    ratios = [sum(light) / sum(plain) for light, plain in epochs if plain]
    steps = sum(len(plain) for _, plain in epochs)
    return {
        "ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "epochs_timed": len(ratios),
        "steps_timed": steps,
        "lightning_ms": mean_ms(paired["lightning_step_s"]),
        "plain_ms": mean_ms(paired["plain_step_s"]),
        "alone": {
            side: {
                "ms": mean_ms(r[f"{side}_step_s"]),
                **{k: r[k] for k in ("peak_rss_mb", "peak_rss_growth_mb", "peak_cuda_mb")},
            }
            for side, r in alone.items()
        },
    }


def table(summary: dict, accelerator: str) -> str:
    lines = [
        f"| {accelerator} | ms/step, paired | steps/s | ms/step, alone | peak RSS MB | "
        "RSS growth MB | peak CUDA MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for side in ("plain", "lightning"):
        ms = summary[f"{side}_ms"]
        alone = summary["alone"][side]
        cuda = "—" if alone["peak_cuda_mb"] is None else f"{alone['peak_cuda_mb']:.1f}"
        lines.append(
            f"| {side} | {ms:.2f} | {1e3 / ms:.0f} | {alone['ms']:.2f} | "
            f"{alone['peak_rss_mb']:.0f} | {alone['peak_rss_growth_mb']:.0f} | {cuda} |"
        )
    low, high = summary["ratio_range"]
    lines += [
        "",
        f"Lightning / plain time per step: {summary['ratio']:.2f}x (median of "
        f"{summary['epochs_timed']} epochs, {low:.2f}x to {high:.2f}x; "
        f"{summary['steps_timed']} paired steps)",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. op=atan")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (the first is warm-up), got {args.epochs}")
    if args.mode:
        print(json.dumps(run(args.mode, args.overrides, args.epochs, args.accelerator)))
        return
    command = "python benchmarks/train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(command, flush=True)
    runs = {}
    for mode in MODES:
        cmd = [sys.executable, __file__, "--mode", mode, "--epochs", str(args.epochs),
               "--accelerator", args.accelerator, *args.overrides]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            sys.exit(f"{mode} failed:\n{done.stderr[-3000:]}")
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    summary = summarize(runs["paired"], {m: runs[m] for m in ("plain", "lightning")})
    print(table(summary, args.accelerator))
    if args.json:
        args.json.write_text(json.dumps({"command": command, "summary": summary, "runs": runs}))


if __name__ == "__main__":
    main()

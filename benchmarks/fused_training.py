"""Where the fused kernels pay inside real training steps: each shipped network on each data set,
at its batch size, fused kernels on and off, in one process.

    python benchmarks/fused_training.py                                   # every case, fp32
    python benchmarks/fused_training.py --cases cnn/fashion_mnist --dtypes float32 bfloat16
    python benchmarks/fused_training.py --json benchmarks/results/fused_training_cpu.json
    python benchmarks/fused_training.py --cases cnn/fashion_mnist --dtypes bfloat16 \
        --json benchmarks/results/fused_training_cpu.json --append

Each case is a network and a data set composed as ``train.py`` would run them (``model=...
data=...``, the data config's batch size, threads and network width) with ``--op``'s estimators.
Two measurements, both as ratios of interleaved pairs so the load of a shared machine falls on both
sides alike:

- **layers**: every hard-op layer of the network (``surrogate.Sign``, ``Step``, ``Round``) on the
  input it sees in a real training batch: its forward plus backward through the compiled kernels
  (every tensor eligible: ``surrogate.fused.thresholds`` set to 1) over the same through the eager
  formulas (``surrogate.fused.enabled = False``).
- **steps**: whole training steps (next batch, forward, the task's loss, ``zero_grad``, backward,
  the optimizer's step) of copies of the network in turn, one step each per round, the order
  rotated each round: ``eager`` (no compiled kernel), ``fused`` (every eligible tensor compiled),
  ``default`` (``surrogate.fused`` as shipped) and, for the CNNs, ``float`` (``op=float``: relu and
  a softmax bottleneck, the same shape). Reported: each arm's median step time and the median over
  rounds of ``fused``/``eager``, ``default`` over the faster of the two (by median step time) and
  ``default``/``float``.

The first ``--warmup`` rounds compile the kernels (their compile seconds are reported, from
``surrogate.fused.kernels()``) and are left out. ``--dtypes bfloat16`` runs the forwards under
``torch.autocast`` (what ``trainer.precision=bf16-mixed`` does), so the hard ops see the dtype
users train in. ``model=plain_cnn`` runs its steps under ``surrogate.intercept`` as the app does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py, before torch loads

import torch  # noqa: E402
from speed_tables import fused_training_table  # benchmarks/speed_tables.py, beside this script
from torch import Tensor

import surrogate
from surrogate import fused

ROOT = Path(__file__).resolve().parent.parent
FASHION = "/usr/share/datasets/fashion-mnist"
CASES = {
    "cnn/digits": ["model=cnn", "data=digits"],
    "plain_cnn/digits": ["model=plain_cnn", "data=digits"],
    "cnn/fashion_mnist": ["model=cnn", "data=fashion_mnist", f"data.root={FASHION}"],
    "plain_cnn/fashion_mnist": ["model=plain_cnn", "data=fashion_mnist", f"data.root={FASHION}"],
    "cat_vae/fashion_mnist": ["model=cat_vae", "data=fashion_mnist", f"data.root={FASHION}"],
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def compose(overrides: list[str]) -> dict:
    from surrogate.training.config.compose import compose_config

    return compose_config(overrides, ROOT / "configs", tempfile.mkdtemp(prefix="bench_fused_"))


class Arm:
    """One side of the comparison: a copy of the network with its optimizer, and how its steps
    run (fused kernels on or off, every tensor eligible or the shipped thresholds)."""

    def __init__(self, name: str, config: dict, shape, mode: str):
        from surrogate.training.config.op import HardOpConfig
        from surrogate.training.module import HardOpModule
        from surrogate.training.optimization import build_optimizer

        torch.manual_seed(config["seed"])
        module = HardOpModule(config["model"], config["task"], list(shape.input_shape),
                              shape.num_classes, config["seed"])  # fmt: skip
        self.name, self.mode, self.task, self.net = name, mode, module.task, module.net.train()
        self.ops = HardOpConfig.parse(config["op"])
        self.intercept = config["model"]["apply_estimators"] != "swap"
        if config["model"]["apply_estimators"] != "intercept":
            self.ops.apply(self.net)
        self.optimizer = build_optimizer(self.net, config["model"]["optimizer"])

    def step(self, batch, dtype: torch.dtype) -> float:
        with Fused(self.mode):
            start = time.perf_counter()
            x, target = self.task.split(batch)
            with autocast(dtype), self.mode_context():
                loss = self.task.loss(self.net(x), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            return time.perf_counter() - start

    def mode_context(self):
        if not self.intercept:
            return nullcontext()
        return surrogate.intercept(**self.ops.ops, training=True)


class Fused:
    """``surrogate.fused`` as an arm runs it: ``eager`` (off), ``fused`` (every tensor eligible)
    or ``default`` (as shipped)."""

    def __init__(self, mode: str):
        self.mode = mode

    def __enter__(self):
        self.saved = fused.enabled, dict(fused.thresholds)
        fused.enabled = self.saved[0] and self.mode != "eager"
        if self.mode == "fused":
            fused.thresholds = dict.fromkeys(fused.thresholds, 1)

    def __exit__(self, *exc):
        fused.enabled, fused.thresholds = self.saved


def autocast(dtype: torch.dtype):
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast("cpu", dtype=dtype)


def layer_inputs(arm: Arm, batch, dtype: torch.dtype) -> list[tuple[str, torch.nn.Module, Tensor]]:
    """Each hard-op module of ``arm``'s network with the input it sees on ``batch``."""
    from surrogate.training.config.op import hard_op_modules

    seen = []
    hooks = [
        module.register_forward_pre_hook(
            lambda m, args, path=path: seen.append((path, m, args[0].detach()))
        )
        for path, module in hard_op_modules(arm.net)
        if module.op_name != "argmax"  # argmax has no fused kernel
    ]
    with torch.no_grad(), autocast(dtype), Fused("eager"):
        arm.net(arm.task.split(batch)[0])
    for hook in hooks:
        hook.remove()
    return seen


def time_layer(module, x: torch.Tensor, mode: str) -> float:
    x = x.detach().requires_grad_(True)
    g = torch.ones_like(x)
    with Fused(mode):
        start = time.perf_counter()
        module(x).backward(g)
        return time.perf_counter() - start


def measure_layers(arm: Arm, batch, dtype, rounds: int, warmup: int) -> list[dict]:
    rows = []
    for path, module, x in layer_inputs(arm, batch, dtype):
        pairs = []
        for i in range(warmup + rounds):
            order = ("fused", "eager") if i % 2 else ("eager", "fused")
            times = {mode: time_layer(module, x, mode) for mode in order}
            if i >= warmup:
                pairs.append((times["fused"], times["eager"]))
        rows.append({
            "layer": path,
            "op": module.op_name,
            "shape": list(x.shape),
            "dtype": str(x.dtype).removeprefix("torch."),
            "elements": x.numel(),
            "fused_us": 1e6 * statistics.median(f for f, _ in pairs),
            "eager_us": 1e6 * statistics.median(e for _, e in pairs),
            "ratio": statistics.median(f / e for f, e in pairs),
        })  # fmt: skip
    return rows


def measure_steps(arms: list[Arm], batches: list, dtype, rounds: int, warmup: int) -> dict:
    times: dict[str, list[float]] = {arm.name: [] for arm in arms}
    for i in range(warmup + rounds):
        batch = batches[i % len(batches)]
        shift = i % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            took = arm.step(batch, dtype)
            if i >= warmup:
                times[arm.name].append(took)
    per_round = [{name: t[i] for name, t in times.items()} for i in range(rounds)]

    def ratio(top, bottom) -> float:
        return statistics.median(top(r) / bottom(r) for r in per_round)

    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    best = min(("fused", "eager"), key=ms.__getitem__)  # the faster of the two, by median
    summary = {
        "ms": ms,
        "fused_over_eager": ratio(lambda r: r["fused"], lambda r: r["eager"]),
        "best": best,
        "default_over_best": ratio(lambda r: r["default"], lambda r: r[best]),
        "rounds": rounds,
    }
    if "float" in times:
        summary["default_over_float"] = ratio(lambda r: r["default"], lambda r: r["float"])
    return summary


def run_case(case: str, op: str, dtype_name: str, rounds: int, warmup: int) -> dict:
    from surrogate.training.data.datamodule import DataModule
    from surrogate.training.tasks import task_class

    overrides = [*CASES[case], f"op={op}"]
    config = compose(overrides)
    if config["threads"] > 0:
        torch.set_num_threads(config["threads"])
    scale = task_class(config["task"]["name"]).scale
    data = DataModule(**config["data"], shuffle_seed=config["seed"], scale=scale)
    data.prepare_data()
    data.setup()
    loader = iter(data.train_dataloader())
    batches = [next(loader) for _ in range(min(8, len(data.train_dataloader()) - 1))]
    arms = [Arm(mode, config, data.shape, mode) for mode in ("eager", "fused", "default")]
    if config["model"]["name"] in ("cnn", "plain_cnn"):
        arms.append(Arm("float", compose([*overrides, "op=float"]), data.shape, "default"))
    dtype = DTYPES[dtype_name]
    before = len(fused.kernels())
    steps = measure_steps(arms, batches, dtype, rounds, warmup)
    compiled = fused.kernels()[before:]
    layers = measure_layers(arms[0], batches[0], dtype, rounds, warmup)
    return {
        "case": case,
        "op": op,
        "dtype": dtype_name,
        "batch_size": config["data"]["batch_size"],
        "threads": torch.get_num_threads(),
        "overrides": overrides,
        "layers": layers,
        "steps": steps,
        "kernels_compiled": len(compiled),
        "compile_seconds": [round(k.compile_seconds or 0.0, 3) for k in compiled],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--ops", nargs="+", default=["atan", "ste"])
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=["float32"])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--append", action="store_true", help="add to the --json report's rows")
    args = parser.parse_args(argv)
    command = " ".join(
        ["python benchmarks/fused_training.py", *(sys.argv[1:] if argv is None else argv)]
    )
    print(command, flush=True)
    results = []
    for case in args.cases:
        for op in args.ops:
            for dtype in args.dtypes:
                results.append(run_case(case, op, dtype, args.rounds, args.warmup))
                print(fused_training_table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(fused_training_table(results))
    if fused.failure:
        print(f"note: compiling failed ({fused.failure}); the fused arms ran eagerly")
    if args.json:
        report = {"commands": [], "results": []}
        if args.append and args.json.is_file():
            report = json.loads(args.json.read_text())
        report["commands"].append(command)
        report["machine"] = {
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
        report["thresholds"] = dict(fused.thresholds)
        report["results"] += results
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

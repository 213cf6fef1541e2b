"""Train a network whose hard ops take their backward from the config group ``op`` (by default
the small hard-op CNN on scikit-learn's digits).

python train.py op=ste                            # one run
python train.py op=atan op.step.alpha=4           # one knob changed
python train.py -m op=none,ste,sigmoid seed=0,1,2 # a sweep
"""

import os
import sys

# OpenMP threads that finish their share of an op sleep instead of spinning for the next one: a run
# beside another busy process (a second run, a test suite) otherwise burns the cores that process
# needs, and both crawl. Torch's OpenMP reads this once, as torch loads: so here, before anything
# imports torch. A value in the environment wins. Measured on a 2-core CPU (docs/benchmarks.md,
# benchmarks/throughput.py): two runs started at once take 1.15-1.24x one alone with it; beside a
# test suite, digits' run took 79 s alone and 104-139 s as a pair with spinning threads, 15-29 s
# with it. A lone run with small ops (digits) pays 1.27x for it, Fashion-MNIST's does not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hydra  # noqa: E402 (after the wait policy; none of these imports torch before it is set)
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from surrogate.training.config.schema import store_schema, to_plain

store_schema()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    from surrogate.training.config.hydra_callbacks import settle_failed_run
    from surrogate.training.run import RUN_ERRORS, run  # Lightning: only once the config is valid

    hydra_cfg = HydraConfig.get()
    runtime = hydra_cfg.runtime
    try:
        metrics = run(
            to_plain(cfg),
            runtime.output_dir,
            runtime.choices.get("op"),
            list(hydra_cfg.overrides.task),
        )
    except Exception as err:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the sweep records the run as failed and goes on
        settle_failed_run(runtime.output_dir, err, hydra_cfg.overrides.task)  # no husk folder
        if not isinstance(err, RUN_ERRORS):
            raise  # a bug: its traceback
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(1)
    name = metrics["headline"]["metric"].removeprefix("test_")  # the task's metric: acc
    print(
        f"op={metrics['op']} seed={metrics['seed']}: test {name} {metrics[f'test_{name}']:.4f}, "
        f"best val {name} {metrics[f'best_val_{name}']:.4f}, {metrics['epochs']} epochs in "
        f"{metrics['wall_seconds']:.1f} s; outputs in {runtime.output_dir}"
    )
    return metrics[cfg.optimized_metric or f"best_val_{name}"]


if __name__ == "__main__":
    main()

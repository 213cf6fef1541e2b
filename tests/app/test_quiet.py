"""No dependency noise: a Fashion-MNIST-like run of train.py and a user's own script with the app's
callbacks print neither torch's CUDA toolkit note nor Lightning's advertisements."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import surrogate.training.callbacks  # noqa: F401  (installs the filter, as in a user's script)
from surrogate.training.quiet import LIGHTNING_LOGGERS, DropLightningNoise
from tests.app.helpers import FAST, ROOT, write_tiny_mnist

NOISE = ("No CUDA runtime is found", "💡 Tip:", "LeafSpec")


def run_python(args: list[str], cwd: Path) -> str:
    """stdout and stderr of ``python ARGS``. CUDA_HOME names a folder, so a CPU-only torch would
    log its note wherever it imports torch.utils.cpp_extension (on a GPU it never does)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0", CUDA_HOME=str(cwd))
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_a_fashion_mnist_run_prints_no_dependency_noise(tmp_path):
    """Validation and test batches are large enough for the fused kernels, whose first compile
    imports torch.utils.cpp_extension."""
    write_tiny_mnist(tmp_path / "idx", gz=True)
    output = run_python(
        [str(ROOT / "train.py"), "data=fashion_mnist", f"data.root={tmp_path / 'idx'}", *FAST,
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
    )  # fmt: skip
    assert "test acc" in output
    assert not [noise for noise in NOISE if noise in output], output


USER_SCRIPT = """
    import pytorch_lightning as pl
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    import surrogate
    from surrogate.training.callbacks.apply_estimators import ApplyEstimators


    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 6), surrogate.Sign(), nn.Linear(6, 2))

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self.net(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", F.cross_entropy(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)


    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=8)
    trainer = pl.Trainer(max_epochs=1, log_every_n_steps=1,
                         callbacks=[ApplyEstimators({"sign": {"name": "atan"}})])
    trainer.fit(Net(), data, data)
    print("fitted")
"""


def test_a_users_script_with_the_callbacks_prints_no_dependency_noise(tmp_path):
    (tmp_path / "script.py").write_text(textwrap.dedent(USER_SCRIPT))
    output = run_python(["script.py"], cwd=tmp_path)
    assert "fitted" in output and "Trainer.fit" in output  # Lightning's own lines still print
    assert not [noise for noise in NOISE if noise in output], output


def test_the_gpu_precision_advice_is_dropped_and_other_advice_kept():
    """On a GPU with Tensor Cores Lightning advises a process-wide matmul precision (not testable
    on a CPU machine by output): the filter is on its loggers and drops that line alone."""
    assert all(
        any(isinstance(f, DropLightningNoise) for f in logging.getLogger(name).filters)
        for name in LIGHTNING_LOGGERS
    )

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord(LIGHTNING_LOGGERS[0], logging.INFO, __file__, 1, message, (), None)

    drop = DropLightningNoise()
    gpu = "You are using a CUDA device ('NVIDIA H100') that has Tensor Cores. To properly utilize"
    assert not drop.filter(record(gpu))
    assert drop.filter(record("The number of training batches (4) is smaller than the logging"))

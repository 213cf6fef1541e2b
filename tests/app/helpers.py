"""Shared helpers of the app's tests: composing configs, running train.py, writing IDX files."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from surrogate.training.config.compose import compose_config as compose_in

ROOT = Path(__file__).resolve().parents[2]
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_refresh_rate=0",
]


def compose_config(overrides: list[str], output_dir: Path) -> dict:
    """The plain config ``train.py`` would run with these overrides."""
    return compose_in(overrides, ROOT / "configs", output_dir)


def start_cli(*args: str, cwd: Path, pythonpath: Path | None = None) -> subprocess.Popen:
    """``python train.py ARGS`` started in ``cwd``, one torch thread, output piped;
    ``pythonpath`` is put on PYTHONPATH."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0")
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def train_cli(
    *args: str, cwd: Path, timeout: float = 300, pythonpath: Path | None = None
) -> subprocess.CompletedProcess:
    """``python train.py ARGS`` in ``cwd``, run to the end, output captured."""
    proc = start_cli(*args, cwd=cwd, pythonpath=pythonpath)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (gzipped if ``path`` ends in .gz), written from the format spec."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def write_tiny_mnist(folder: Path, gz: bool, n_train: int = 200, n_test: int = 50) -> None:
    """Four IDX files of 28x28 images whose class is a bright square's position (learnable)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 30, size=(n, 28, 28))
        for i, label in enumerate(labels):
            r, c = divmod(int(label), 5)
            images[i, 4 + 10 * r : 12 + 10 * r, 2 + 5 * c : 6 + 5 * c] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", labels)


# The real Fashion-MNIST (the four IDX files): SURROGATE_FASHION_MNIST names their folder, else
# Debian's dataset-fashion-mnist package's. Tests that need it skip only when neither is there.
FASHION_MNIST_ENV = "SURROGATE_FASHION_MNIST"
FASHION_MNIST_DEFAULT = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist_folder(
    environ: Mapping[str, str] = os.environ, default: Path = FASHION_MNIST_DEFAULT
) -> Path | None:
    """Where the real Fashion-MNIST is: ``$SURROGATE_FASHION_MNIST`` when set (a folder that is
    not there is an error, not a skip), else ``default`` when it exists, else None."""
    if environ.get(FASHION_MNIST_ENV):
        folder = Path(environ[FASHION_MNIST_ENV]).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"{FASHION_MNIST_ENV}={folder}: no such folder")
        return folder
    return default if default.is_dir() else None


SKIP_WITHOUT_FASHION_MNIST = (
    f"no Fashion-MNIST: set {FASHION_MNIST_ENV} to the folder of its four IDX files "
    f"(train-images-idx3-ubyte.gz, ...) to run this test; the default, {FASHION_MNIST_DEFAULT}, "
    "(Debian's dataset-fashion-mnist package) is absent"
)


def fashion_mnist_missing(
    environ: Mapping[str, str] = os.environ, default: Path = FASHION_MNIST_DEFAULT
) -> bool:
    """Whether the tests that need the real Fashion-MNIST skip: the variable unset (or empty) and
    ``default`` absent."""
    return not environ.get(FASHION_MNIST_ENV) and not default.is_dir()


# Marks a test that needs the real Fashion-MNIST (read it with fashion_mnist_folder()).
needs_fashion_mnist = pytest.mark.skipif(fashion_mnist_missing(), reason=SKIP_WITHOUT_FASHION_MNIST)

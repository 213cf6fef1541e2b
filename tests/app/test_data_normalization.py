"""The built-in data sets split and normalize exactly as they always have: for the same seed the
tensors equal, bit for bit, those of the original recipe (stratified splits with scikit-learn, then
each channel's mean and std over the training images' (N, H, W)), recomputed here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from surrogate.training.data import DataShape, dataset
from surrogate.training.data.cifar10 import CIFAR_FILES
from surrogate.training.data.datamodule import DataModule, load_splits
from surrogate.training.data.readers import read_idx
from tests.app.helpers import fashion_mnist_folder, needs_fashion_mnist, write_tiny_mnist


def original_recipe(arrays, val_fraction, test_fraction, seed, train_subset=None):
    """The splits as the app made them before data sets registered their readers."""
    x, y, test_x, test_y = arrays
    if test_x is None:
        x, test_x, y, test_y = train_test_split(
            x, y, stratify=y, random_state=seed, test_size=test_fraction
        )
    if train_subset is not None and train_subset < len(y):
        x, _, y, _ = train_test_split(x, y, stratify=y, random_state=seed, train_size=train_subset)
    x, val_x, y, val_y = train_test_split(
        x, y, stratify=y, random_state=seed, test_size=val_fraction
    )
    train = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True)
    return {
        split: ((torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32) - mean) / std, b)
        for split, a, b in (("train", x, y), ("val", val_x, val_y), ("test", test_x, test_y))
    }


def digits_arrays():
    digits = load_digits()
    return digits.images[:, None].astype(np.float32), digits.target, None, None


def assert_same(splits, expected) -> None:
    for split, (x, y) in expected.items():
        assert torch.equal(splits[split].tensors[0], x), split
        assert torch.equal(splits[split].tensors[1], torch.as_tensor(y, dtype=torch.long)), split


def idx_arrays(root: Path):
    stems = ["train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"]
    x, y, test_x, test_y = (read_idx(next(root.glob(f"{stem}-ubyte*"))) for stem in stems)
    return x[:, None], y, test_x[:, None], test_y


@pytest.mark.parametrize(
    ("args", "subset"), [((0.15, 0.15, 0), None), ((0.2, 0.3, 3), 500)], ids=["preset", "subset"]
)
def test_digits(args, subset):
    splits = load_splits("digits", "unused", *args, train_subset=subset)
    assert_same(splits, original_recipe(digits_arrays(), *args, subset))


@pytest.mark.parametrize("seed", [0, 7])
def test_idx_files(tmp_path, seed):
    write_tiny_mnist(tmp_path / "KMNIST" / "raw", gz=True)
    splits = load_splits("kmnist", tmp_path, 0.1, 0.0, seed, train_subset=150)
    assert_same(
        splits, original_recipe(idx_arrays(tmp_path / "KMNIST" / "raw"), 0.1, 0.0, seed, 150)
    )


def test_cifar_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = []
    for f in CIFAR_FILES:
        batch = {"data": rng.integers(0, 256, (30, 3072), np.uint8), "labels": list(range(10)) * 3}
        (folder / f).write_bytes(pickle.dumps(batch))
        batches.append((batch["data"].reshape(-1, 3, 32, 32), np.array(batch["labels"])))
    arrays = (
        np.concatenate([b[0] for b in batches[:5]]),
        np.concatenate([b[1] for b in batches[:5]]),
        *batches[5],
    )
    assert_same(load_splits("cifar10", tmp_path, 0.1, 0.0, 2), original_recipe(arrays, 0.1, 0.0, 2))


@needs_fashion_mnist
def test_real_fashion_mnist():
    folder = fashion_mnist_folder()
    splits = load_splits("fashion_mnist", folder, 0.1, 0.0, 1, train_subset=3000)
    assert_same(splits, original_recipe(idx_arrays(folder), 0.1, 0.0, 1, 3000))


def test_the_data_module_gives_the_shape_and_the_same_tensors():
    data = DataModule("digits", batch_size=32, val_fraction=0.2, test_fraction=0.1, split_seed=4)
    assert data.shape == dataset("digits").shape("unused") == DataShape((1, 8, 8), 10)
    data.prepare_data()
    data.setup()
    assert data.shape == DataShape((1, 8, 8), 10)
    assert_same(data.splits, original_recipe(digits_arrays(), 0.2, 0.1, 4))

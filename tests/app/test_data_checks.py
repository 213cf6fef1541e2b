"""Bad data files fail when loaded, with a DataError that names the file and what is wrong."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import sklearn.datasets
import torch

from surrogate.training.data import DataError
from surrogate.training.data.cifar10 import CIFAR_FILES
from surrogate.training.data.datamodule import load_splits
from tests.app.helpers import write_idx, write_tiny_mnist

IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


def load_mnist(root: Path) -> dict:
    return load_splits("mnist", root, val_fraction=0.1, test_fraction=0.0, seed=0)


def cut(n: int):
    return lambda data: data[:n]


def corrupt_deflate(data: bytes) -> bytes:
    return data[:20] + b"\xff" * 40 + data[60:]


# gzipped?, the file, how its bytes change, what the message says besides the file's name
BYTE_FAULTS = [
    pytest.param(False, IMAGES, cut(0), ["empty"], id="empty"),
    pytest.param(False, IMAGES, cut(10), ["too short", "16"], id="short header"),
    pytest.param(
        False, IMAGES, lambda d: b"\x00\x00\x0d\x03" + d[4:], ["magic 0x00000d03"], id="bad magic"
    ),
    pytest.param(
        False, IMAGES, cut(-100), ["truncated", "expected 156816", "156716"], id="truncated"
    ),
    pytest.param(False, LABELS, lambda d: d + b"xy", ["trailing", "expected 208"], id="trailing"),
    pytest.param(True, IMAGES, cut(300), ["truncated or corrupt gzip"], id="truncated gz"),
    pytest.param(True, IMAGES, corrupt_deflate, ["corrupt gzip"], id="corrupt gz"),
    pytest.param(True, IMAGES, lambda d: b"not gzip" + d[8:], ["gzip"], id="gzip header"),
]


@pytest.mark.parametrize(("gz", "stem", "change", "facts"), BYTE_FAULTS)
def test_a_damaged_idx_file_is_named(tmp_path, gz, stem, change, facts):
    write_tiny_mnist(tmp_path, gz=gz)
    path = tmp_path / (stem + (".gz" if gz else ""))
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    assert str(path) in str(err.value)
    for fact in facts:
        assert fact in str(err.value)


def test_more_images_than_labels_names_both_files_and_counts(tmp_path):
    write_tiny_mnist(tmp_path, gz=False, n_train=600)
    write_idx(tmp_path / LABELS, np.arange(500) % 10)
    with pytest.raises(DataError, match="600 images.*500 labels") as err:
        load_mnist(tmp_path)
    assert str(tmp_path / IMAGES) in str(err.value) and str(tmp_path / LABELS) in str(err.value)


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_a_label_out_of_range_is_named_with_its_index(tmp_path, split):
    write_tiny_mnist(tmp_path, gz=True)
    labels = np.arange(200 if split == "train" else 50) % 10
    labels[37] = 12
    path = tmp_path / f"{split}-labels-idx1-ubyte.gz"
    write_idx(path, labels)
    with pytest.raises(DataError, match=r"label 12 at index 37 .*0 to 9") as err:
        load_mnist(tmp_path)
    assert str(path) in str(err.value)


def test_images_of_the_wrong_size_are_named(tmp_path):
    write_tiny_mnist(tmp_path, gz=False)
    write_idx(tmp_path / IMAGES, np.zeros((200, 32, 32)))
    with pytest.raises(DataError, match="1x32x32 found, expected 1x28x28") as err:
        load_mnist(tmp_path)
    assert str(tmp_path / IMAGES) in str(err.value)


def test_a_split_without_images_is_named(tmp_path):
    write_tiny_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((0, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(0))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: no images"):
        load_mnist(tmp_path)


def test_digits_are_checked_too(monkeypatch):
    images, labels = np.zeros((20, 8, 8)), np.arange(20) % 10
    labels[3] = 12
    monkeypatch.setattr(
        sklearn.datasets, "load_digits", lambda: SimpleNamespace(images=images, target=labels)
    )
    with pytest.raises(DataError, match="scikit-learn digits.*label 12 at index 3"):
        load_splits("digits", "unused", 0.2, 0.2, seed=0)


def write_cifar(root: Path, n: int = 20) -> Path:
    """Six CIFAR-10 python batches of ``n`` images each, labels 0-9 in turn."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for f in CIFAR_FILES:
        batch = {"data": np.zeros((n, 3 * 32 * 32), np.uint8), "labels": [i % 10 for i in range(n)]}
        (folder / f).write_bytes(pickle.dumps(batch))
    return folder


CIFAR_FAULTS = [
    pytest.param(cut(-50), "truncated or corrupt pickle", id="truncated pickle"),
    pytest.param(
        lambda d: pickle.dumps({"data": pickle.loads(d)["data"]}), "no 'labels'", id="no labels"
    ),
    pytest.param(
        lambda d: pickle.dumps({**pickle.loads(d), "data": b"x" * 99}),
        "expected 61440",
        id="wrong size",
    ),
]


@pytest.mark.parametrize(("change", "fact"), CIFAR_FAULTS)
def test_a_broken_cifar_batch_is_named(tmp_path, change, fact):
    path = write_cifar(tmp_path) / "data_batch_3"
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(DataError, match=fact) as err:
        load_splits("cifar10", tmp_path, 0.1, 0.0, seed=0)
    assert str(path) in str(err.value)


def test_good_cifar_batches_load(tmp_path):
    write_cifar(tmp_path)
    splits = load_splits("cifar10", tmp_path, 0.1, 0.0, seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [90, 10, 20]
    assert splits["test"].tensors[0].shape[1:] == (3, 32, 32)


def write_labelled(folder: Path, gz: bool) -> dict[str, np.ndarray]:
    """IDX files whose images carry anchors (pixels 0 and 255), their label and their index."""
    labels = {}
    for split, n in (("train", 200), ("t10k", 50)):
        labels[split] = np.random.default_rng(len(split)).integers(0, 10, n)
        labels[split][:20] = np.arange(20) % 10  # every class at least twice
        images = np.full((n, 28, 28), 7)
        images[:, 0, :4] = np.stack([np.zeros(n), np.full(n, 255), labels[split], np.arange(n)], 1)
        ext = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", labels[split])
    return labels


@pytest.mark.parametrize("gz", [True, False])
def test_good_data_loads_with_every_image_keeping_its_label(tmp_path, gz):
    labels = write_labelled(tmp_path, gz)
    splits = load_mnist(tmp_path)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [180, 20, 50]
    indices = {}
    for split, data in splits.items():
        x, y = data.tensors
        assert x.shape[1:] == (1, 28, 28) and y.dtype == torch.long
        zero, top = x[:, 0, 0, 0:1], x[:, 0, 0, 1:2]
        raw = ((x[:, 0, 0, :4] - zero) / (top - zero) * 255).round().long()
        assert (raw[:, 2] == y).all()  # the label drawn in the image is the one paired with it
        indices[split] = raw[:, 3].tolist()
        original = labels["t10k" if split == "test" else "train"]
        assert (y.numpy() == original[indices[split]]).all()
    assert sorted(indices["train"] + indices["val"]) == list(range(200))
    assert sorted(indices["test"]) == list(range(50))


@pytest.mark.parametrize(
    ("key", "kwargs"),
    [
        ("data.val_fraction", {"val_fraction": 0.001}),
        ("data.test_fraction", {"test_fraction": 0.001}),
        ("data.train_subset", {"train_subset": 5}),
    ],
)
def test_a_split_too_small_for_every_class_names_its_key(key, kwargs):
    args = {"val_fraction": 0.15, "test_fraction": 0.15, "seed": 0, **kwargs}
    with pytest.raises(DataError, match=f"{key}=.*number of classes = 10"):
        load_splits("digits", "unused", **args)

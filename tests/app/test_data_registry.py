"""The data sets register their readers by name: ``dataset(name)`` finds one or lists them all,
each knows its shape, where its files are and whether it can download them."""

from __future__ import annotations

import pkgutil

import numpy as np
import pytest

from surrogate.training.data import (
    DATASETS,
    DataSet,
    DataShape,
    FixedShape,
    check_files,
    dataset,
    register_dataset,
)
from surrogate.training.data.datamodule import DataModule, load_splits
from surrogate.training.data.mnist import MNIST, FashionMNIST
from tests.app.helpers import write_tiny_mnist

BUILT_IN = {
    "digits": DataShape((1, 8, 8), 10),
    "mnist": DataShape((1, 28, 28), 10),
    "fashion_mnist": DataShape((1, 28, 28), 10),
    "kmnist": DataShape((1, 28, 28), 10),
    "cifar10": DataShape((3, 32, 32), 10),
}


def test_an_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError) as err:
        dataset("x")
    assert str(err.value) == (
        "data.name: unknown 'x'; choose one of: "
        "cifar10, digits, fashion_mnist, image_folder, kmnist, mnist, randman, shd"
    )
    with pytest.raises(ValueError, match="data.name: unknown 'svhn'"):
        DataModule("svhn")


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_built_in_set_knows_its_shape_without_its_files(tmp_path, name):
    reader = dataset(name)
    assert reader.name == name and not reader.shape_reads_files
    assert reader.shape(tmp_path / "nowhere") == BUILT_IN[name]


def test_a_name_is_registered_once_and_only_for_a_data_set():
    with pytest.raises(ValueError, match=r"'mnist' is taken by .*mnist.MNIST"):
        register_dataset("mnist")(MNIST)
    with pytest.raises(ValueError, match="must be an identifier, got 'my set'"):
        register_dataset("my set")
    with pytest.raises(TypeError, match="is not a DataSet subclass"):
        register_dataset("plain")(dict)
    assert "plain" not in DATASETS


def test_one_class_registered_under_two_names_knows_each(tmp_path):
    class Tiny(FixedShape):
        SHAPE = DataShape((2, 3), 2)

    for name in ("tiny_a", "tiny_b"):
        register_dataset(name)(Tiny)
    try:
        assert [dataset(n).name for n in ("tiny_a", "tiny_b")] == ["tiny_a", "tiny_b"]
    finally:
        del DATASETS["tiny_a"], DATASETS["tiny_b"]


@pytest.mark.parametrize("shape", [(28, 28, 1, 1), (28,), (0, 5), (1, 2.0, 3)])
def test_a_shape_must_be_images_or_sequences(shape):
    with pytest.raises(ValueError, match=r"\(C, H, W\) for images or \(T, F\) for sequences"):
        DataShape(shape, 10)


def test_a_shape_has_two_classes_at_least_and_its_dimensions_as_a_tuple():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        DataShape((3, 4), 1)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 2.0"):
        DataShape((3, 4), 2.0)
    shape = DataShape([1, np.int64(2), 3], np.int64(2))
    assert shape == DataShape((1, 2, 3), 2) and type(shape.num_classes) is int


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("mnist", ["data: mnist not found; looked in", "MNIST/raw", "t10k-labels-idx1-ubyte[.gz]"]),
        ("kmnist", ["KMNIST/raw"]),
        ("cifar10", ["CIFAR-10 not found in", "cifar-10-batches-py", "data_batch_1, "]),
    ],
)
def test_missing_files_are_named_unless_they_will_be_downloaded(tmp_path, name, facts):
    with pytest.raises(FileNotFoundError) as err:
        check_files(name, tmp_path)
    for fact in [*facts, "set data.root to the folder that holds", "or data.download=true"]:
        assert fact in str(err.value)
    check_files(name, tmp_path, download=True)
    check_files("digits", tmp_path)  # ships with scikit-learn


@pytest.mark.parametrize("layout", ["", "MNIST/raw", "MNIST"])
def test_idx_files_are_found_in_each_layout(tmp_path, layout):
    write_tiny_mnist(tmp_path / layout, gz=layout == "MNIST")
    check_files("mnist", tmp_path)
    splits = load_splits("mnist", tmp_path, 0.1, 0.0, seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [180, 20, 50]


def test_download_runs_only_for_missing_files(tmp_path, monkeypatch):
    fetched = []

    def download(self, root):
        fetched.append(root)
        write_tiny_mnist(tmp_path / "MNIST" / "raw", gz=True)

    monkeypatch.setattr(MNIST, "download", download)
    data = DataModule("mnist", str(tmp_path), download=True)
    data.prepare_data()
    data.prepare_data()  # found this time
    assert fetched == [str(tmp_path)]
    monkeypatch.setattr(FashionMNIST, "system_folder", str(tmp_path / "not-installed"))
    with pytest.raises(FileNotFoundError, match="fashion_mnist not found.*not-installed"):
        DataModule("fashion_mnist", str(tmp_path), download=False).prepare_data()


def test_a_data_set_that_cannot_download_checks_its_files_anyway(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.root: no folder"):
        DataModule("image_folder", str(tmp_path / "nowhere"), download=True).prepare_data()
    assert not DataSet.can_download and dataset("image_folder").shape_reads_files


def test_every_module_of_the_data_package_is_imported_with_it():
    """A new data set is a new file: the package imports every module that is not shared."""
    import surrogate.training.data as package

    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    registered_from = {cls.__module__.rsplit(".", 1)[1] for cls in DATASETS.values()}
    assert registered_from == modules - {"base", "readers", "datamodule"}

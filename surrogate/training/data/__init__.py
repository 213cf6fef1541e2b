"""The data sets, each registered by name (``data.name``) with the reader of its files.

A data set is a ``DataSet`` subclass in a module of its own, registered with
``@register_dataset("name")``; every module of this package is imported with it. It declares its
shape (``DataShape``: images ``(C, H, W)`` or sequences ``(T, F)``, and the number of classes),
finds its files under ``data.root``, downloads them if it can, and reads them into arrays that
``base.check_arrays`` checks; ``datamodule`` splits, normalizes and batches any of them.

Built in: ``digits`` (scikit-learn's, no files), ``mnist``, ``fashion_mnist``, ``kmnist`` (four IDX
files), ``cifar10`` (python batches), ``image_folder`` (a user's own images), and two of spike
trains: ``randman`` (Zenke & Vogels' random manifolds, generated from a seed, no files) and ``shd``
(the Spiking Heidelberg Digits, two HDF5 files). A data set of spike trains sets
``DataSet.spikes``: its 0/1 examples reach the model as they are, not standardized.

Imports no Lightning: the config check uses it before a run starts.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from surrogate.training.data.base import DataError, DataSet, DataShape, FixedShape, Part

__all__ = [
    "DATASETS",
    "DataError",
    "DataSet",
    "DataShape",
    "FixedShape",
    "Part",
    "check_files",
    "dataset",
    "register_dataset",
]

DATASETS: dict[str, type[DataSet]] = {}


def register_dataset(name: str):
    """Class decorator: register a ``DataSet`` subclass as ``data.name=<name>``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_dataset: the name must be an identifier, got {name!r}")

    def register(cls: type[DataSet]) -> type[DataSet]:
        if not (isinstance(cls, type) and issubclass(cls, DataSet)):
            raise TypeError(f"register_dataset({name!r}): {cls!r} is not a DataSet subclass")
        if name in DATASETS:
            taken = DATASETS[name]
            raise ValueError(
                f"register_dataset: {name!r} is taken by {taken.__module__}.{taken.__qualname__}"
            )
        DATASETS[name] = cls
        return cls

    return register


def dataset(name: str) -> DataSet:
    """The reader of data set ``name``; ValueError naming the registered ones if there is none."""
    if name not in DATASETS:
        choices = ", ".join(sorted(DATASETS))
        raise ValueError(f"data.name: unknown {name!r}; choose one of: {choices}")
    reader = DATASETS[name]()
    reader.name = name
    return reader


def check_files(name: str, root: str | Path, download: bool = False, **options) -> None:
    """Raise FileNotFoundError, naming what was looked for, if ``name`` cannot load from ``root``
    (files that will be downloaded count as there)."""
    reader = dataset(name)
    if not (download and reader.can_download):
        reader.check_files(root, **options)


# Every other module of this package is a data set (or a family of them) and registers itself, so
# a new data set is a new file and nothing else; datamodule (Lightning) is imported by the run.
_SHARED = ("base", "readers", "datamodule")
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _SHARED:
        importlib.import_module(f"{__name__}.{_module.name}")

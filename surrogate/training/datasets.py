"""The data sets' files: where they are, how they read, and what to download.

scikit-learn's 8x8 digits ship with scikit-learn (no files). MNIST, Fashion-MNIST and KMNIST are
read from their four IDX files (gzipped or not), found either flat in ``root`` (as Debian's
``dataset-fashion-mnist`` installs them) or in torchvision's layout ``root/<Name>/raw``; CIFAR-10
from ``root/cifar-10-batches-py``. Files are downloaded (by torchvision) only when missing and
``download=True``.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad data files or contents; its message is meant for the user as is."""


@dataclass(frozen=True)
class DataSet:
    """A data set's image shape (square images) and classes, and torchvision's folder name."""

    in_channels: int
    image_size: int
    num_classes: int
    folder: str = ""


DATASETS = {
    "digits": DataSet(1, 8, 10),
    "mnist": DataSet(1, 28, 10, "MNIST"),
    "fashion_mnist": DataSet(1, 28, 10, "FashionMNIST"),
    "kmnist": DataSet(1, 28, 10, "KMNIST"),
    "cifar10": DataSet(3, 32, 10),
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def check_name(name: str) -> DataSet:
    if name not in DATASETS:
        raise ValueError(f"data.name: unknown {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a numpy array.

    Raises DataError, naming the file, if it is empty, a truncated or corrupt gzip, not an
    unsigned-byte IDX file, or holds more or fewer bytes than its header declares.
    """
    data = path.read_bytes()
    if not data:
        raise DataError(f"{path}: file is empty")
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
            raise DataError(f"{path}: truncated or corrupt gzip file ({err})") from None
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(
            f"{path}: not an unsigned-byte IDX file (magic 0x{data[:4].hex()} found, "
            "expected 0x000008 then the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: too short for an IDX header of {ndim} dimensions "
            f"({len(data)} bytes, expected at least {header})"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape)
    if len(data) != expected:
        fault = "truncated" if len(data) < expected else "trailing data"
        raise DataError(
            f"{path}: {fault}: expected {expected} bytes (a {header}-byte header and shape "
            f"{'x'.join(map(str, shape))}), found {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _idx_folders(root: Path, folder: str) -> list[Path]:
    return [root, root / folder / "raw", root / folder]


def find_idx_files(name: str, root: str | Path) -> dict[str, Path] | None:
    """The four IDX files of ``name`` under ``root`` (either layout), or None if any is missing."""
    for base in _idx_folders(Path(root), DATASETS[name].folder):
        found = {}
        for stem in (*IDX_FILES["train"], *IDX_FILES["test"]):
            hits = [base / (stem + ext) for ext in ("", ".gz") if (base / (stem + ext)).is_file()]
            if hits:
                found[stem] = hits[0]
        if len(found) == 4:
            return found
    return None


def _cifar_folder(root: str | Path) -> Path:
    return Path(root) / "cifar-10-batches-py"


def check_files(name: str, root: str | Path, download: bool) -> None:
    """Raise FileNotFoundError, naming the folders and files looked for, if ``name`` cannot load."""
    spec = check_name(name)
    if name == "digits" or download:
        return
    if name == "cifar10":
        missing = [f for f in CIFAR_FILES if not (_cifar_folder(root) / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"data: CIFAR-10 not found in {_cifar_folder(root)} (looked for "
                f"{', '.join(CIFAR_FILES)}); set data.root to the folder that holds "
                "cifar-10-batches-py, or data.download=true"
            )
        return
    if find_idx_files(name, root) is None:
        folders = ", ".join(str(p) for p in _idx_folders(Path(root), spec.folder))
        stems = ", ".join(f"{s}[.gz]" for s in (*IDX_FILES["train"], *IDX_FILES["test"]))
        raise FileNotFoundError(
            f"data: {name} not found; looked in {folders} for {stems}; set data.root to the "
            "folder that holds them, or data.download=true"
        )


def download_files(name: str, root: str | Path) -> None:
    import torchvision

    if name == "cifar10":
        torchvision.datasets.CIFAR10(root, train=True, download=True)
    else:
        getattr(torchvision.datasets, DATASETS[name].folder)(root, train=True, download=True)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python batch as (images NCHW, labels); DataError, naming the file, if bad."""
    raw = path.read_bytes()
    try:
        batch = pickle.loads(raw, encoding="latin1")
    except Exception as err:
        raise DataError(
            f"{path}: not a readable CIFAR-10 batch (truncated or corrupt pickle: "
            f"{type(err).__name__}: {err})"
        ) from None
    missing = [k for k in ("data", "labels") if not isinstance(batch, dict) or k not in batch]
    if missing:
        raise DataError(f"{path}: not a CIFAR-10 batch (no {' or '.join(map(repr, missing))})")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if labels.ndim != 1:
        raise DataError(f"{path}: 'labels' of shape {labels.shape} found, expected a list")
    expected = len(labels) * 3 * 32 * 32
    if data.size != expected:
        raise DataError(
            f"{path}: 'data' holds {data.size} values; expected {expected} "
            f"({len(labels)} labels x 3x32x32)"
        )
    return data.reshape(-1, 3, 32, 32), labels


def check_arrays(name: str, arrays, files) -> None:
    """Raise DataError unless each split's images and labels fit ``DATASETS[name]``.

    ``arrays`` is (train images, train labels, test images, test labels), the test pair possibly
    None; ``files`` names where each came from, for the messages. Each split needs at least one
    image, as many labels as images, images of the declared shape and integer labels in
    [0, num_classes).
    """
    spec = DATASETS[name]
    shape = (spec.in_channels, spec.image_size, spec.image_size)
    for x, y, x_file, y_file in ((*arrays[:2], *files[:2]), (*arrays[2:], *files[2:])):
        if x is None:
            continue
        if len(x) == 0:
            raise DataError(f"{x_file}: no images")
        if x.shape[1:] != shape:
            raise DataError(
                f"{x_file}: images of shape {'x'.join(map(str, x.shape[1:]))} found, "
                f"expected {'x'.join(map(str, shape))} for {name}"
            )
        if y.ndim != 1:
            raise DataError(f"{y_file}: labels of shape {y.shape} found, expected one per image")
        if len(y) != len(x):
            raise DataError(f"{x_file} holds {len(x)} images but {y_file} holds {len(y)} labels")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{y_file}: labels must be integers, found {y.dtype}")
        bad = np.flatnonzero((y < 0) | (y >= spec.num_classes))
        if bad.size:
            raise DataError(
                f"{y_file}: label {y[bad[0]]} at index {bad[0]} is out of range; "
                f"{name} labels are 0 to {spec.num_classes - 1}"
            )


def load_arrays(name: str, root: str | Path):
    """(train images, train labels, test images, test labels) as uint8/int arrays, NCHW.

    Raises DataError, naming the file, if a file or the arrays it holds are bad (``check_arrays``).
    """
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        arrays = (digits.images[:, None].astype(np.float32), digits.target, None, None)
        files = ("scikit-learn digits (images)", "scikit-learn digits (labels)", None, None)
    elif name == "cifar10":
        folder = _cifar_folder(root)
        batches = [read_cifar_batch(folder / f) for f in CIFAR_FILES]
        train_x = np.concatenate([b[0] for b in batches[:5]])
        train_y = np.concatenate([b[1] for b in batches[:5]])
        arrays = (train_x, train_y, *batches[5])
        train = f"{folder / 'data_batch_1'} to data_batch_5"
        files = (train, train, folder / "test_batch", folder / "test_batch")
    else:
        found = find_idx_files(name, root)
        files = tuple(found[s] for s in (*IDX_FILES["train"], *IDX_FILES["test"]))
        x, y, test_x, test_y = (read_idx(f) for f in files)
        arrays = (x[:, None], y, test_x[:, None], test_y)
    check_arrays(name, arrays, files)
    return arrays

"""The data sets' files: where they are, how they read, and what to download.

scikit-learn's 8x8 digits ship with scikit-learn (no files). MNIST, Fashion-MNIST and KMNIST are
read from their four IDX files (gzipped or not), found either flat in ``root`` (as Debian's
``dataset-fashion-mnist`` installs them) or in torchvision's layout ``root/<Name>/raw``; CIFAR-10
from ``root/cifar-10-batches-py``. Files are downloaded (by torchvision) only when missing and
``download=True``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


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


def load_arrays(name: str, root: str | Path):
    """(train images, train labels, test images, test labels) as uint8/int arrays, NCHW."""
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images[:, None].astype(np.float32), digits.target, None, None
    if name == "cifar10":
        batches = []
        for f in CIFAR_FILES:
            with open(_cifar_folder(root) / f, "rb") as fh:
                batch = pickle.load(fh, encoding="latin1")
            batches.append((batch["data"].reshape(-1, 3, 32, 32), np.asarray(batch["labels"])))
        train_x = np.concatenate([b[0] for b in batches[:5]])
        train_y = np.concatenate([b[1] for b in batches[:5]])
        return train_x, train_y, batches[5][0], batches[5][1]
    files = find_idx_files(name, root)
    arrays = [read_idx(files[s]) for s in (*IDX_FILES["train"], *IDX_FILES["test"])]
    return arrays[0][:, None], arrays[1], arrays[2][:, None], arrays[3]

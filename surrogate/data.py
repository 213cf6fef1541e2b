"""Data: scikit-learn's 8x8 digits (the default, no download) and the torchvision image sets.

Every set is held in memory as normalized float tensors with fixed, stratified splits. MNIST,
Fashion-MNIST and KMNIST are read from their four IDX files (gzipped or not), found either flat in
``root`` (as Debian's ``dataset-fashion-mnist`` installs them) or in torchvision's layout
``root/<Name>/raw``; CIFAR-10 from ``root/cifar-10-batches-py``. Files are downloaded only when
missing and ``download=True``.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset


@dataclass(frozen=True)
class DataSet:
    in_channels: int
    num_classes: int
    folder: str = ""  # torchvision's folder name under root


DATASETS = {
    "digits": DataSet(1, 10),
    "mnist": DataSet(1, 10, "MNIST"),
    "fashion_mnist": DataSet(1, 10, "FashionMNIST"),
    "kmnist": DataSet(1, 10, "KMNIST"),
    "cifar10": DataSet(3, 10),
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


def _download(name: str, root: str | Path) -> None:
    import torchvision

    if name == "cifar10":
        torchvision.datasets.CIFAR10(root, train=True, download=True)
    else:
        getattr(torchvision.datasets, DATASETS[name].folder)(root, train=True, download=True)


def _load_arrays(name: str, root: str | Path):
    """(train images, train labels, test images, test labels) as uint8/int arrays, NCHW."""
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images[:, None].astype(np.float32), digits.target, None, None
    if name == "cifar10":
        import pickle

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


def load_splits(name: str, root: str | Path, val_fraction: float, test_fraction: float, seed: int):
    """Normalized ``{"train", "val", "test"}`` TensorDatasets with fixed, stratified splits.

    Digits has no test split: ``test_fraction`` of it is held out. Validation is ``val_fraction``
    of the training set. Normalization uses the training split's per-channel mean and std.
    """
    from sklearn.model_selection import train_test_split

    train_x, train_y, test_x, test_y = _load_arrays(name, root)
    if test_x is None:
        train_x, test_x, train_y, test_y = train_test_split(
            train_x, train_y, test_size=test_fraction, stratify=train_y, random_state=seed
        )
    train_x, val_x, train_y, val_y = train_test_split(
        train_x, train_y, test_size=val_fraction, stratify=train_y, random_state=seed
    )
    train = torch.as_tensor(np.ascontiguousarray(train_x), dtype=torch.float32)
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True)

    def tensors(x, y):
        x = (torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32) - mean) / std
        return TensorDataset(x, torch.as_tensor(np.asarray(y), dtype=torch.long))

    return {
        "train": tensors(train_x, train_y),
        "val": tensors(val_x, val_y),
        "test": tensors(test_x, test_y),
    }


class EpochSampler(Sampler[int]):
    """A random permutation drawn from (seed, epoch) alone, so a resumed run sees the same order."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


class ImageDataModule(pl.LightningDataModule):
    """One of ``DATASETS`` held in memory, with fixed splits and per-epoch seeded shuffling."""

    def __init__(
        self,
        name: str = "digits",
        root: str = "data",
        download: bool = False,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        shuffle_seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.spec = check_name(name)
        self.name, self.root, self.download = name, root, download
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.shuffle_seed = split_seed, shuffle_seed
        self.splits: dict[str, TensorDataset] | None = None

    def prepare_data(self) -> None:
        if self.download:
            try:
                check_files(self.name, self.root, download=False)
            except FileNotFoundError:
                _download(self.name, self.root)
        check_files(self.name, self.root, download=False)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = load_splits(
                self.name, self.root, self.val_fraction, self.test_fraction, self.split_seed
            )

    def _loader(self, split: str, sampler=None) -> DataLoader:
        # A generator of its own: creating an iterator then draws no number from the global RNG,
        # which stochastic estimators use, so when a loader starts does not change the noise.
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.shuffle_seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", EpochSampler(len(self.splits["train"]), self.shuffle_seed))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

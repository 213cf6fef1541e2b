"""The data module: a data set held in memory as normalized float tensors, with fixed stratified
splits and a shuffling order drawn per epoch from the seed (``datasets`` reads the files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from surrogate.training.datasets import (
    DataError,
    check_files,
    check_name,
    download_files,
    load_arrays,
)
from surrogate.training.seeding import epoch_seed


def load_splits(
    name: str,
    root: str | Path,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train_subset: int | None = None,
):
    """Normalized ``{"train", "val", "test"}`` TensorDatasets with fixed, stratified splits.

    Digits has no test split: ``test_fraction`` of it is held out. ``train_subset`` then keeps a
    stratified sample of that many training images (drawn with ``seed``; the test set stays
    whole). Validation is ``val_fraction`` of the training images. Normalization uses the
    training split's per-channel mean and std.
    """
    train_x, train_y, test_x, test_y = load_arrays(name, root)
    if test_x is None:
        train_x, test_x, train_y, test_y = _split(
            train_x, train_y, "data.test_fraction", test_fraction, seed, test_size=test_fraction
        )
    if train_subset is not None and train_subset < len(train_y):
        train_x, _, train_y, _ = _split(
            train_x, train_y, "data.train_subset", train_subset, seed, train_size=train_subset
        )
    train_x, val_x, train_y, val_y = _split(
        train_x, train_y, "data.val_fraction", val_fraction, seed, test_size=val_fraction
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


def _split(x, y, key: str, value, seed: int, **size):
    """scikit-learn's stratified ``train_test_split``; a split it cannot make (a part with fewer
    images than classes, a class with one image) raises DataError naming the config key."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(x, y, stratify=y, random_state=seed, **size)
    except ValueError as err:
        raise DataError(
            f"{key}={value} cannot split {len(y)} images into stratified parts: {err}"
        ) from None


class EpochSampler(Sampler[int]):
    """A random permutation drawn from (seed, epoch) alone, so a resumed run sees the same order."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
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
        train_subset: int | None = None,
    ):
        super().__init__()
        self.spec = check_name(name)
        self.name, self.root, self.download = name, root, download
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.shuffle_seed = split_seed, shuffle_seed
        self.train_subset = train_subset
        self.splits: dict[str, TensorDataset] | None = None

    def prepare_data(self) -> None:
        if self.download:
            try:
                check_files(self.name, self.root, download=False)
            except FileNotFoundError:
                download_files(self.name, self.root)
        check_files(self.name, self.root, download=False)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = load_splits(
                self.name,
                self.root,
                self.val_fraction,
                self.test_fraction,
                self.split_seed,
                self.train_subset,
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

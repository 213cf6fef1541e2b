"""The data module: any registered data set held in memory as normalized float tensors (spike
trains as they are, 0/1), with fixed stratified splits and a shuffling order drawn per epoch from
the seed (the data set's reader, ``surrogate.training.data``, finds and reads the files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from surrogate.training.data import DataError, DataShape, Part, dataset
from surrogate.training.data.base import check_scale, check_unit

_SEED_STRIDE = 1_000_003  # a prime larger than any epoch count: (seed, epoch) pairs never collide
_RANKS = 64  # room for this many processes per (seed, epoch)


def epoch_seed(seed: int, epoch: int, rank: int | None = None) -> int:
    """The seed of ``epoch``. The shuffling order draws from ``epoch_seed(seed, epoch)``, the
    global RNG of process ``rank`` (stochastic estimators' noise) from
    ``epoch_seed(seed, epoch, rank)``."""
    base = seed * _SEED_STRIDE + epoch
    return base if rank is None else base * _RANKS + rank


def load_splits(
    name: str,
    root: str | Path,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train_subset: int | None = None,
    scale: str = "standard",
    **options,
) -> dict[str, TensorDataset]:
    """Data set ``name`` as normalized ``{"train", "val", "test"}`` TensorDatasets (``split``);
    ``options``: the data set's own config keys (``image_size``), the others ignored."""
    reader = dataset(name)
    check_scale(reader, scale)
    shape, train, test = reader.load(root, **options)
    pixel_max = reader.pixel_max if scale == "unit" else None
    return split(
        name,
        shape,
        train,
        test,
        val_fraction,
        test_fraction,
        seed,
        train_subset,
        pixel_max,
        reader.spikes,
    )


# The axes each example's statistics are taken over: per channel for images (N, C, H, W), per
# feature for sequences (N, T, F).
STATISTICS_OVER = {"image": (0, 2, 3), "sequence": (0, 1)}


def split(
    name: str,
    shape: DataShape,
    train: Part,
    test: Part | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train_subset: int | None = None,
    pixel_max: float | None = None,
    spikes: bool = False,
) -> dict[str, TensorDataset]:
    """Data set ``name``'s arrays in fixed, stratified ``{"train", "val", "test"}`` splits,
    normalized (unless ``spikes``).

    A data set without a test split (``test`` None) has ``test_fraction`` of it held out.
    ``train_subset`` then keeps a stratified sample of that many training examples (drawn with
    ``seed``; the test set stays whole). Validation is ``val_fraction`` of the training examples.
    Normalization uses the training split's mean and std per channel (images) or feature
    (sequences); with ``pixel_max`` it divides by that instead, and every value must then lie in
    [0, 1] (``DataError`` naming the split's file otherwise). With ``spikes`` (a data set of 0/1
    spike trains, ``DataSet.spikes``) the examples stay as they are, only made float32.
    """
    noun = f"{shape.kind}s"
    train_x, train_y = train.x, train.y
    if test is None:
        if not test_fraction:
            raise DataError(
                f"data.test_fraction={test_fraction}: {name} has no test split of its own; "
                "set it in (0, 1) to hold out that fraction as the test split"
            )
        train_x, test_x, train_y, test_y = _split(
            train_x,
            train_y,
            noun,
            "data.test_fraction",
            test_fraction,
            seed,
            test_size=test_fraction,
        )
    else:
        test_x, test_y = test.x, test.y
    if train_subset is not None and train_subset < len(train_y):
        train_x, _, train_y, _ = _split(
            train_x, train_y, noun, "data.train_subset", train_subset, seed, train_size=train_subset
        )
    train_x, val_x, train_y, val_y = _split(
        train_x, train_y, noun, "data.val_fraction", val_fraction, seed, test_size=val_fraction
    )
    if spikes:  # 0/1 as they are: standardizing would turn each spike into a unit's own number
        mean = std = None
    elif pixel_max is not None:
        sources = (train.x_source, train.x_source, (test or train).x_source)
        for x, source in zip((train_x, val_x, test_x), sources, strict=True):
            check_unit(x, pixel_max, source)
        mean, std = torch.zeros(()), torch.tensor(float(pixel_max))
    else:
        train = torch.as_tensor(np.ascontiguousarray(train_x), dtype=torch.float32)
        mean = train.mean(dim=STATISTICS_OVER[shape.kind], keepdim=True)
        std = train.std(dim=STATISTICS_OVER[shape.kind], keepdim=True)

    def tensors(x, y):
        x = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
        if mean is not None:
            x = (x - mean) / std
        return TensorDataset(x, torch.as_tensor(np.asarray(y), dtype=torch.long))

    return {
        "train": tensors(train_x, train_y),
        "val": tensors(val_x, val_y),
        "test": tensors(test_x, test_y),
    }


def _split(x, y, noun: str, key: str, value, seed: int, **size):
    """scikit-learn's stratified ``train_test_split``; a split it cannot make (a part with fewer
    examples than classes, a class with one example) raises DataError naming the config key."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(x, y, stratify=y, random_state=seed, **size)
    except ValueError as err:
        raise DataError(
            f"{key}={value} cannot split {len(y)} {noun} into stratified parts: {err}"
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


class DataModule(pl.LightningDataModule):
    """A registered data set held in memory, with fixed splits and per-epoch seeded shuffling.

    Takes the data config's keys; ``options`` are the data set's own (``image_size``), passed on
    to its reader, which ignores the others (``cnn_size`` is the model's). ``scale`` is the
    task's: ``standard`` (mean 0, std 1 per channel) or ``unit`` (pixel intensities in [0, 1]);
    a data set of spike trains (``DataSet.spikes``) is neither: its 0/1 values stay as they are.
    """

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
        scale: str = "standard",
        **options,
    ):
        super().__init__()
        self.dataset = dataset(name)
        self.name, self.root, self.download = name, root, download
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.shuffle_seed = split_seed, shuffle_seed
        self.train_subset, self.options = train_subset, options
        check_scale(self.dataset, scale)
        self.scale = scale
        self.splits: dict[str, TensorDataset] | None = None
        self._shape: DataShape | None = None

    @property
    def shape(self) -> DataShape:
        """One example's shape and the number of classes (from the data set, before loading)."""
        if self._shape is None:
            self._shape = self.dataset.shape(self.root, **self.options)
        return self._shape

    def prepare_data(self) -> None:
        self.dataset.prepare(self.root, self.download, **self.options)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self._shape, train, test = self.dataset.load(self.root, **self.options)
            self.splits = split(
                self.name,
                self._shape,
                train,
                test,
                self.val_fraction,
                self.test_fraction,
                self.split_seed,
                self.train_subset,
                self.dataset.pixel_max if self.scale == "unit" else None,
                self.dataset.spikes,
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

"""What a data set is to the app: its shape (``DataShape``), its arrays (``Part``) and the reader
that finds, downloads and reads its files (``DataSet``, registered by name in the package)."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np


class DataError(ValueError):
    """Bad data files or contents; its message is meant for the user as is."""


@dataclass(frozen=True)
class DataShape:
    """One example's shape and the number of classes (labels are 0 to num_classes - 1).

    ``input_shape`` is ``(C, H, W)`` for images (any size, any number of channels) or ``(T, F)``
    for sequences (T steps of F features, one label per sequence).
    """

    input_shape: tuple[int, ...]
    num_classes: int

    def __post_init__(self):
        shape = _integers(self.input_shape)
        if shape is None or len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(
                f"DataShape: input_shape must be (C, H, W) for images or (T, F) for sequences, "
                f"each an integer >= 1; got {self.input_shape!r}"
            )
        classes = _integers([self.num_classes])
        if classes is None or classes[0] < 2:
            raise ValueError(
                f"DataShape: num_classes must be an integer >= 2, got {self.num_classes!r}"
            )
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "num_classes", classes[0])

    @property
    def kind(self) -> str:
        """What one example is: "image" (C, H, W) or "sequence" (T, F)."""
        return "image" if len(self.input_shape) == 3 else "sequence"


def _integers(values) -> tuple[int, ...] | None:
    """``values`` as plain ints (numpy's included), or None if one is not an integer."""
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        return None


def dims(shape: tuple[int, ...]) -> str:
    """A shape as the messages write it: 1x28x28."""
    return "x".join(map(str, shape))


class Part(NamedTuple):
    """One split's examples and labels, and where each came from (named in error messages)."""

    x: np.ndarray
    y: np.ndarray
    x_source: str | Path
    y_source: str | Path


class DataSet:
    """A data set's reader. Subclasses say what the data set knows: its shape, where its files are
    under ``root``, how to download them (if it can) and how to read them; ``register_dataset``
    names them. Every method takes the data config's other keys as ``options`` and reads only the
    ones it knows (``data.image_size`` for image_folder, say)."""

    name = ""  # set by ``dataset(name)``
    # The brightest value an image can hold (255 for 8-bit images): ``data.scale=unit`` divides by
    # it. None: the data set has no such bound, and only standardizes.
    pixel_max: float | None = None
    # The examples are 0/1 spike trains (T, F): they reach the model as they are, neither
    # standardized nor rescaled (``datamodule.split``), and ``check_arrays`` refuses another value.
    spikes = False
    can_download = False  # ``download`` fetches the files
    shape_reads_files = False  # ``shape`` reads the files (else it is known without them)

    def shape(self, root: str | Path, **options) -> DataShape:
        raise NotImplementedError

    def check_files(self, root: str | Path, **options) -> None:
        """Raise FileNotFoundError, naming the folders and files looked for, if they are missing."""

    def download(self, root: str | Path) -> None:
        raise NotImplementedError(f"{self.name} cannot download")

    def read(self, root: str | Path, shape: DataShape, **options) -> tuple[Part, Part | None]:
        """The (train, test) arrays; test None if the data set has no test split of its own."""
        raise NotImplementedError

    def prepare(self, root: str | Path, download: bool = False, **options) -> None:
        """Download the files if they are missing and ``download`` is set, then check them."""
        if download and self.can_download:
            try:
                self.check_files(root, **options)
            except FileNotFoundError:
                self.download(root)
        self.check_files(root, **options)

    def load(self, root: str | Path, **options) -> tuple[DataShape, Part, Part | None]:
        """The shape and the (train, test) arrays, checked against it (``check_arrays``)."""
        shape = self.shape(root, **options)
        train, test = self.read(root, shape, **options)
        parts = [part for part in (train, test) if part is not None]
        check_arrays(self.name, shape, parts, spikes=self.spikes)
        return shape, train, test


class FixedShape(DataSet):
    """A data set whose shape is known without its files."""

    SHAPE: DataShape

    def shape(self, root: str | Path, image_size: int | None = None, **options) -> DataShape:
        if image_size is not None:
            size = dims(self.SHAPE.input_shape)
            raise ValueError(
                f"data.image_size: {self.name} examples are {size} already; image_size resizes "
                f"data=image_folder only: leave it null, got {image_size!r}"
            )
        return self.SHAPE


def required(name: str, **values):
    """``values`` as they are, or ValueError naming the first that is null: data set ``name``
    reads it (its YAML sets it; ``RANGES`` lets it be null for the data sets that do not)."""
    for key, value in values.items():
        if value is None:
            raise ValueError(f"data.{key}: data={name} reads it; set it, got null")
    return values.values()


def refuse_image_size(name: str, image_size) -> None:
    """``data.image_size`` resizes the images of image_folder; refuse it for data set ``name``."""
    if image_size is not None:
        raise ValueError(
            f"data.image_size: resizes data=image_folder only; {name} is not images: leave it "
            f"null, got {image_size!r}"
        )


def check_arrays(name: str, shape: DataShape, parts: Iterable[Part], spikes: bool = False) -> None:
    """Raise DataError, naming the file, unless every split's examples and labels fit ``shape``:
    at least one example, each of ``shape.input_shape``, one integer label per example in
    [0, num_classes), and, if ``spikes``, every value of the examples 0 or 1."""
    kind = shape.kind
    for x, y, x_source, y_source in parts:
        if len(x) == 0:
            raise DataError(f"{x_source}: no {kind}s")
        if x.shape[1:] != shape.input_shape:
            raise DataError(
                f"{x_source}: {kind}s of shape {dims(x.shape[1:])} found, "
                f"expected {dims(shape.input_shape)} for {name}"
            )
        if y.ndim != 1:
            raise DataError(f"{y_source}: labels of shape {y.shape} found, expected one per {kind}")
        if len(y) != len(x):
            raise DataError(
                f"{x_source} holds {len(x)} {kind}s but {y_source} holds {len(y)} labels"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{y_source}: labels must be integers, found {y.dtype}")
        bad = np.flatnonzero((y < 0) | (y >= shape.num_classes))
        if bad.size:
            raise DataError(
                f"{y_source}: label {y[bad[0]]} at index {bad[0]} is out of range; "
                f"{name} labels are 0 to {shape.num_classes - 1}"
            )
        if spikes:
            check_spikes(name, x, x_source)


def check_spikes(name: str, x: np.ndarray, source) -> None:
    """Raise DataError, naming ``source`` and the first bad example, unless every value of
    ``x`` (N, ...) is 0 or 1 (a thousand examples at a time: a large set is not copied whole)."""
    for start in range(0, len(x), 1000):
        chunk = x[start : start + 1000]
        bad = np.flatnonzero(((chunk != 0) & (chunk != 1)).reshape(len(chunk), -1).any(axis=1))
        if bad.size:
            values = np.unique(chunk[bad[0]])
            raise DataError(
                f"{source}: example {start + bad[0]} holds the values {values[:6].tolist()}; "
                f"{name} examples are spike trains, every value 0 or 1"
            )


SCALES = ("standard", "unit")


def check_scale(reader, scale: str) -> None:
    """Refuse a ``scale`` other than ``standard`` (each channel to mean 0, std 1) and ``unit``
    (pixel intensities in [0, 1], for a data set that declares its ``pixel_max``)."""
    if scale not in SCALES:
        raise ValueError(f"data scale: unknown {scale!r}; choose one of: {', '.join(SCALES)}")
    if scale == "unit" and reader.pixel_max is None:
        raise ValueError(
            f"data.name={reader.name}: the task reads pixel intensities in [0, 1], and "
            f"{reader.name} declares no pixel_max (its brightest value) to divide by; choose an "
            "image data set (digits, mnist, fashion_mnist, kmnist, cifar10, image_folder)"
        )


def check_unit(x: np.ndarray, pixel_max: float, source) -> None:
    """Raise DataError, naming ``source``, unless every value of ``x / pixel_max`` is in [0, 1]."""
    low, high = float(np.min(x)), float(np.max(x))
    if low < 0 or high > pixel_max:
        raise DataError(
            f"{source}: values from {low:g} to {high:g}, but the task reads pixel intensities "
            f"in [0, 1] as x / {pixel_max:g}: every value must lie in [0, {pixel_max:g}]"
        )

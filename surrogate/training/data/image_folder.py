"""A user's own images in torchvision's ``ImageFolder`` layout, read with PIL.

``root/<class>/<image>``, ``data.test_fraction`` of them held out as the test split; or, if root
holds ``train/`` and ``test/``, each in that layout, those are the splits. The classes are the
training folder's subfolders, sorted (as torchvision numbers them); an image is a file with one of
torchvision's image extensions anywhere under its class folder. Images are gray (one channel) if
every one is (PIL mode L), else RGB (three, converted). They keep their size if they share one;
``data.image_size=N`` resizes every image to NxN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogate.training.data import DataError, DataSet, DataShape, Part, register_dataset

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT = "root/<class>/<image> (or root/train/<class>/<image> and root/test/<class>/<image>)"


@dataclass(frozen=True)
class Listing:
    classes: list[str]  # the training folder's class folders, sorted: label i is classes[i]
    splits: dict[str, tuple[Path, list[Path], list[int]]]  # split: (folder, images, labels)


def root_folder(root: str | Path | None) -> Path:
    """``root`` as a folder; ValueError if it is not set, FileNotFoundError if it is no folder."""
    if root is None or str(root) in ("", "???"):
        raise ValueError(
            "data.root: not set; data=image_folder reads your images from "
            f"data.root=/path/to/images, laid out as {LAYOUT}"
        )
    if not Path(root).is_dir():
        raise FileNotFoundError(f"data.root: no folder {root}; data=image_folder reads {LAYOUT}")
    return Path(root)


def class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def images_under(folder: Path) -> list[Path]:
    """The image files anywhere under ``folder``, in a fixed order (links followed)."""
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        found += [Path(parent, f) for f in sorted(files) if f.lower().endswith(EXTENSIONS)]
    return found


def listing(root: str | Path | None) -> Listing:
    """The classes and every split's images and labels; DataError, naming the folder, if the
    layout is wrong: one of train/ and test/ alone, fewer than 2 classes, a class folder without
    images, a test class without training images."""
    root = root_folder(root)
    train, test = root / "train", root / "test"
    if train.is_dir() != test.is_dir():
        only = train if train.is_dir() else test
        raise DataError(
            f"{root}: holds {only.name}/ but no {(test if only == train else train).name}/; "
            f"image_folder reads {LAYOUT}"
        )
    folders = {"train": train, "test": test} if train.is_dir() else {"train": root}
    classes = class_folders(folders["train"])
    if len(classes) < 2:
        raise DataError(
            f"{folders['train']}: {len(classes)} class folder(s) found {classes}; image_folder "
            f"needs at least 2, laid out as {LAYOUT}"
        )
    splits = {}
    for split, folder in folders.items():
        unknown = sorted(set(class_folders(folder)) - set(classes))
        if unknown:
            raise DataError(
                f"{folder}: class folders {unknown} have no training images; the classes of "
                f"{folders['train']} are {classes}"
            )
        images, labels = [], []
        for label, name in enumerate(classes):
            if split == "test" and not (folder / name).is_dir():
                continue
            found = images_under(folder / name)
            if not found:
                raise DataError(
                    f"{folder / name}: no images (files ending in {', '.join(EXTENSIONS)})"
                )
            images += found
            labels += [label] * len(found)
        splits[split] = (folder, images, labels)
    return Listing(classes, splits)


def open_image(path: Path):
    from PIL import Image

    try:
        return Image.open(path)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: not a readable image ({err})") from None


def pixels(path: Path, shape: DataShape) -> np.ndarray:
    """The image at ``path`` as a uint8 (C, H, W) array of ``shape``: converted to gray or RGB,
    resized (bilinear) if its size differs."""
    from PIL import Image

    channels, height, width = shape.input_shape
    with open_image(path) as image:
        try:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(image)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: not a readable image ({err})") from None
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def check_image_size(image_size) -> None:
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"data.image_size: must be an integer >= 1 or null, got {image_size!r}")


@register_dataset("image_folder")
class ImageFolder(DataSet):
    shape_reads_files = True
    pixel_max = 255.0  # read as 8-bit gray or RGB

    def check_files(self, root, **options):
        root_folder(root)

    def shape(self, root, image_size: int | None = None, **options) -> DataShape:
        """From the listing and every image's header (size and mode), no pixels read."""
        check_image_size(image_size)
        found = listing(root)
        sizes, gray = {}, True
        for _, images, _ in found.splits.values():
            for path in images:
                with open_image(path) as image:
                    sizes.setdefault(image.size, path)
                    gray = gray and image.mode == "L"
        if image_size is not None:
            height = width = image_size
        elif len(sizes) > 1:
            (size, path), (other, other_path) = list(sizes.items())[:2]
            raise DataError(
                f"{root}: images differ in size ({path}: {size[1]}x{size[0]}, {other_path}: "
                f"{other[1]}x{other[0]}, height x width); set data.image_size=N to resize every "
                "image to NxN"
            )
        else:
            ((width, height),) = sizes
        return DataShape((1 if gray else 3, height, width), len(found.classes))

    def read(self, root, shape, **options):
        parts = {}
        for split, (folder, images, labels) in listing(root).splits.items():
            x = np.stack([pixels(path, shape) for path in images])
            parts[split] = Part(x, np.asarray(labels, dtype=np.int64), folder, folder)
        return parts["train"], parts.get("test")

"""data=image_folder: a user's own images in torchvision's ImageFolder layout, of any size, gray
or color, split by their train/ and test/ folders or by data.test_fraction; a layout it cannot
read stops with a message naming the folder or file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from surrogate.training.data import DataError, DataShape, check_files, dataset
from surrogate.training.data.datamodule import DataModule, load_splits

CLASSES = ["ant", "bee", "cat"]  # sorted: the labels are 0, 1, 2


def write_image(path: Path, label: int, index: int, size=(6, 5), mode="L") -> None:
    """A PNG of ``size`` (width, height) whose first row carries anchors (0 and 255), its label
    and its index, in every channel."""
    width, height = size
    pixels = np.full((height, width), 7, np.uint8)
    pixels[0, :4] = [0, 255, 20 * label, index]
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels, "L")
    image.convert(mode).save(path)


def write_folder(folder: Path, per_class: int, start: int = 0, **image) -> dict[int, int]:
    """``per_class`` images of each class under folder/<class>/, indices from ``start``; returns
    each index's label."""
    labels = {}
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            index = start + label * per_class + i
            write_image(folder / name / f"{index}.png", label, index, **image)
            labels[index] = label
    return labels


def raw_first_row(x: torch.Tensor) -> torch.Tensor:
    """The first row's values as written: normalization per channel is undone by the anchors."""
    zero, top = x[:, :, 0, 0:1], x[:, :, 0, 1:2]
    return ((x[:, :, 0, :4] - zero) / (top - zero) * 255).round().long()


def load(root: Path, **options) -> dict:
    options = {"val_fraction": 0.2, "test_fraction": 0.25, "seed": 0, **options}
    return load_splits("image_folder", root, **options)


def test_a_flat_folder_is_split_by_test_fraction_with_sorted_classes_as_labels(tmp_path):
    labels = write_folder(tmp_path, per_class=8)
    (tmp_path / "bee" / "notes.txt").write_text("not an image")  # skipped, as torchvision does
    write_image(tmp_path / "cat" / "more" / "24.PNG", 2, 24)  # nested, capital extension: read
    labels[24] = 2
    assert dataset("image_folder").shape(tmp_path) == DataShape((1, 5, 6), 3)
    splits = load(tmp_path)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [14, 4, 7]
    indices = []
    for x, y in (splits[s].tensors for s in ("train", "val", "test")):
        assert x.shape[1:] == (1, 5, 6)
        raw = raw_first_row(x)[:, 0]
        assert (raw[:, 2] == 20 * y).all()  # the label drawn in the image is the one paired
        assert [labels[i] for i in raw[:, 3].tolist()] == y.tolist()
        indices += raw[:, 3].tolist()
    assert sorted(indices) == sorted(labels)


def test_train_and_test_folders_are_the_splits(tmp_path):
    train = write_folder(tmp_path / "train", per_class=5, mode="RGB")
    test = write_folder(tmp_path / "test", per_class=2, start=100, mode="RGB")
    splits = load(tmp_path)
    assert dataset("image_folder").shape(tmp_path) == DataShape((3, 5, 6), 3)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [12, 3, 6]
    x, y = splits["test"].tensors
    assert x.shape[1:] == (3, 5, 6)
    raw = raw_first_row(x)
    assert sorted(raw[:, 0, 3].tolist()) == sorted(test)  # the test folder, all of it
    assert [test[i] for i in raw[:, 0, 3].tolist()] == y.tolist()
    seen = [raw_first_row(splits[s].tensors[0])[:, 0, 3] for s in ("train", "val")]
    assert sorted(torch.cat(seen).tolist()) == sorted(train)


def test_a_test_folder_may_lack_classes_and_keeps_the_training_labels(tmp_path):
    write_folder(tmp_path / "train", per_class=5)
    write_image(tmp_path / "test" / "cat" / "0.png", 2, 0)
    splits = load(tmp_path)
    assert dataset("image_folder").shape(tmp_path).num_classes == 3
    assert splits["test"].tensors[1].tolist() == [2]


def test_gray_and_color_images_together_load_as_rgb(tmp_path):
    write_folder(tmp_path, per_class=8)
    write_image(tmp_path / "ant" / "rgb.png", 0, 99, mode="RGB")
    write_image(tmp_path / "bee" / "palette.png", 1, 98, mode="P")
    assert dataset("image_folder").shape(tmp_path) == DataShape((3, 5, 6), 3)
    x = torch.cat([load(tmp_path)[s].tensors[0] for s in ("train", "val", "test")])
    raw = raw_first_row(x)
    assert (raw == raw[:, :1]).all()  # a gray image is the same in R, G and B
    assert 99 in raw[:, 0, 3].tolist() and 98 in raw[:, 0, 3].tolist()


def test_images_of_differing_sizes_name_two_sizes_and_data_image_size(tmp_path):
    write_folder(tmp_path, per_class=8)
    write_image(tmp_path / "bee" / "big.png", 1, 0, size=(10, 9))
    with pytest.raises(DataError, match=r"differ in size .*5x6.*9x10.*data.image_size") as err:
        dataset("image_folder").shape(tmp_path)
    assert str(tmp_path / "bee" / "big.png") in str(err.value)
    with pytest.raises(DataError, match="data.image_size"):
        load(tmp_path)


@pytest.mark.parametrize("sizes", [[(6, 5), (10, 9)], [(6, 5)]], ids=["differing", "shared"])
def test_data_image_size_resizes_every_image(tmp_path, sizes):
    write_folder(tmp_path, per_class=8, size=sizes[0], mode="RGB")
    write_image(tmp_path / "ant" / "other.png", 0, 0, size=sizes[-1], mode="RGB")
    assert dataset("image_folder").shape(tmp_path, image_size=4) == DataShape((3, 4, 4), 3)
    splits = load(tmp_path, image_size=4)
    assert all(splits[s].tensors[0].shape[1:] == (3, 4, 4) for s in splits)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
def test_a_bad_image_size_is_named(tmp_path, bad):
    write_folder(tmp_path, per_class=2)
    with pytest.raises(
        ValueError, match=f"data.image_size: must be an integer >= 1 or null, got {bad!r}"
    ):
        dataset("image_folder").shape(tmp_path, image_size=bad)


def test_the_data_module_reads_the_shape_and_batches(tmp_path):
    write_folder(tmp_path / "train", per_class=6, size=(7, 3))
    write_folder(tmp_path / "test", per_class=2, size=(7, 3))
    data = DataModule("image_folder", str(tmp_path), batch_size=4, image_size=None, cnn_size={})
    assert data.shape == DataShape((1, 3, 7), 3)  # before any image is loaded
    data.prepare_data()
    data.setup()
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (4, 1, 3, 7) and y.dtype == torch.long
    assert len(data.splits["test"]) == 6


def layout_fault(name: str):
    def one_class(root):
        write_image(root / "ant" / "0.png", 0, 0)

    def only_train(root):
        write_folder(root / "train", per_class=2)

    def unknown_test_class(root):
        write_folder(root / "train", per_class=2)
        write_image(root / "test" / "dog" / "0.png", 0, 0)

    def empty_class(root):
        write_folder(root, per_class=2)
        (root / "dog").mkdir()
        (root / "dog" / "notes.txt").write_text("")

    def broken_image(root):
        write_folder(root, per_class=2)
        (root / "bee" / "broken.png").write_bytes(b"\x89PNG not really")

    def truncated_image(root):
        write_folder(root, per_class=2, size=(60, 50), mode="RGB")
        path = root / "bee" / "2.png"
        path.write_bytes(path.read_bytes()[:100])  # the header whole, the pixels cut

    return locals()[name]


# the layout, what the message names (relative to root), what it says
LAYOUT_FAULTS = [
    pytest.param("one_class", "", ["1 class folder(s)", "['ant']", "at least 2"], id="one class"),
    pytest.param("only_train", "", ["holds train/ but no test/"], id="train without test"),
    pytest.param(
        "unknown_test_class",
        "test",
        ["['dog']", "no training images", str(CLASSES)],
        id="test class not in train",
    ),
    pytest.param("empty_class", "dog", ["no images", ".png"], id="class without images"),
    pytest.param("broken_image", "bee/broken.png", ["not a readable image"], id="broken image"),
    pytest.param("truncated_image", "bee/2.png", ["not a readable image"], id="truncated image"),
]


@pytest.mark.parametrize(("fault", "named", "facts"), LAYOUT_FAULTS)
def test_a_layout_it_cannot_read_is_named(tmp_path, fault, named, facts):
    layout_fault(fault)(tmp_path)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert f"{tmp_path / named if named else tmp_path}:" in str(err.value)
    for fact in facts:
        assert fact in str(err.value)


def test_a_flat_folder_needs_a_test_fraction(tmp_path):
    write_folder(tmp_path, per_class=4)
    with pytest.raises(DataError, match="data.test_fraction=0.0: image_folder has no test split"):
        load(tmp_path, test_fraction=0.0)


def test_a_root_not_set_or_missing_says_what_to_set(tmp_path):
    with pytest.raises(ValueError, match=r"data.root: not set; .*data.root=/path/to/images"):
        check_files("image_folder", "???")
    with pytest.raises(ValueError, match="data.root: not set"):
        assert DataModule("image_folder", "???").shape
    missing = tmp_path / "nowhere"
    with pytest.raises(
        FileNotFoundError, match=f"data.root: no folder {missing}; .*<class>/<image>"
    ):
        check_files("image_folder", missing)
    write_folder(tmp_path, per_class=2)
    check_files("image_folder", tmp_path, download=True)  # found; nothing to download


def test_the_other_data_sets_refuse_image_size():
    with pytest.raises(ValueError, match="data.image_size: mnist examples are 1x28x28 .*got 16"):
        dataset("mnist").shape("unused", image_size=16)
    assert dataset("digits").shape("unused", image_size=None) == DataShape((1, 8, 8), 10)

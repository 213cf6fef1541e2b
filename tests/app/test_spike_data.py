"""The spike data sets: data=randman (random manifolds generated from a seed) and data=shd (the
Spiking Heidelberg Digits' HDF5 files, here small ones written in their format). Both reach the
model as (B, T, F) float32 0/1, not standardized; SHD's bad files fail with a DataError naming the
file and what is valid."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from surrogate.training.data import DataError, check_files, dataset
from surrogate.training.data.base import DataShape, check_arrays
from surrogate.training.data.datamodule import DataModule, load_splits
from surrogate.training.ranges import check_ranges
from tests.app.helpers import compose_config

SMALL = {
    "units": 30,
    "classes": 4,
    "steps": 20,
    "manifold_dim": 2,
    "smoothness": 2.0,
    "samples_per_class": 25,
    "generator_seed": 7,
}


def randman(**changes) -> tuple[DataShape, np.ndarray, np.ndarray]:
    shape, train, test = dataset("randman").load("unused", **{**SMALL, **changes})
    assert test is None
    return shape, train.x, train.y


# ---- randman ---------------------------------------------------------------------------------


def test_randman_is_one_spike_per_unit_with_balanced_labels():
    shape, x, y = randman()
    assert shape == DataShape((20, 30), 4)
    assert x.shape == (100, 20, 30)
    assert set(np.unique(x).tolist()) == {0, 1}
    assert (x.sum(axis=1) == 1).all()  # each unit of each example: exactly one spike
    assert np.bincount(y).tolist() == [25, 25, 25, 25]


def test_randman_spike_times_span_the_steps_for_each_class_and_unit():
    """Each unit's values are scaled to [0, 1] over its class: its lowest spikes at step 0, its
    highest (value 1, floor(1 * steps) clipped) at the last step."""
    _, x, y = randman()
    times = x.argmax(axis=1)  # (examples, units): the step each unit spikes at
    for label in range(4):
        assert (times[y == label].min(axis=0) == 0).all()
        assert (times[y == label].max(axis=0) == 19).all()


def test_randman_is_the_same_for_a_seed_and_differs_between_seeds():
    _, x, y = randman()
    _, again, again_y = randman()
    assert np.array_equal(x, again) and np.array_equal(y, again_y)
    _, other, _ = randman(generator_seed=8)
    assert not np.array_equal(x, other)
    assert (x != other).any(axis=(1, 2)).mean() > 0.9  # nearly every example differs
    _, rougher, _ = randman(smoothness=0.0)
    assert not np.array_equal(x, rougher)


def test_a_null_key_randman_reads_is_refused():
    with pytest.raises(ValueError, match="data.units: data=randman reads it; set it, got null"):
        randman(units=None)
    with pytest.raises(ValueError, match="data.generator_seed: data=randman reads it"):
        randman(generator_seed=None)


def test_randman_reaches_the_model_as_float_spikes_not_standardized():
    _, x, _ = randman()
    splits = load_splits("randman", "unused", 0.2, 0.2, seed=0, **SMALL)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [64, 16, 20]
    generated = {row.tobytes() for row in x.astype(np.float32)}
    for data in splits.values():
        inputs, labels = data.tensors
        assert inputs.dtype == torch.float32 and inputs.shape[1:] == (20, 30)
        assert ((inputs == 0) | (inputs == 1)).all()
        assert all(row.numpy().tobytes() in generated for row in inputs)  # exactly as generated
        assert np.bincount(labels.numpy()).min() == np.bincount(labels.numpy()).max()


def test_the_randman_config_runs_as_composed(tmp_path):
    config = compose_config(["data=randman"], tmp_path)
    data = config["data"]
    assert data["name"] == "randman" and data["time_steps"] is None
    assert {k: data[k] for k in ("units", "classes", "steps", "samples_per_class")} == {
        "units": 100,
        "classes": 10,
        "steps": 50,
        "samples_per_class": 500,
    }
    check_ranges(config)
    with pytest.raises(ValueError, match="data.smoothness: must be a finite number >= 0"):
        check_ranges({"data": {**data, "smoothness": -1.0}})
    module = DataModule(**{**data, "samples_per_class": 20, "batch_size": 16}, shuffle_seed=0)
    assert module.shape == DataShape((50, 100), 10)
    module.prepare_data()
    module.setup()
    x, y = next(iter(module.train_dataloader()))
    assert x.shape == (16, 50, 100) and x.dtype == torch.float32
    assert (x.sum(dim=1) == 1).all() and y.dtype == torch.long


def test_the_digits_config_leaves_the_spike_keys_null(tmp_path):
    data = compose_config(["data=digits"], tmp_path)["data"]
    assert data["units"] is None and data["duration"] is None


def test_a_spike_data_set_with_a_value_other_than_0_or_1_is_refused():
    x = np.zeros((3, 4, 2), dtype=np.float32)
    x[2, 1, 0] = 2.0
    part = (x, np.array([0, 1, 0]), "spikes.npz", "labels.npz")
    check_arrays("toy", DataShape((4, 2), 2), [part])  # any value, unless spikes
    with pytest.raises(DataError, match=r"spikes.npz: example 2 holds the values \[0.0, 2.0\]"):
        check_arrays("toy", DataShape((4, 2), 2), [part], spikes=True)


# ---- SHD -------------------------------------------------------------------------------------

# Two examples and a third with no spikes: (time, unit) pairs, and their labels.
TIMES = [[0.0, 0.05, 0.07, 0.31, 0.999, 1.0, 1.2, 0.62], [0.45, 0.26, 0.13], []]
UNITS = [[3, 3, 3, 699, 0, 5, 5, 42], [10, 10, 11], []]
LABELS = [0, 19, 7]


def write_shd(path: Path, times=TIMES, units=UNITS, labels=LABELS, unit_dtype=np.uint16, drop=()):
    """An HDF5 file in SHD's format: spikes/times and spikes/units variable-length arrays,
    labels integers; ``drop`` leaves those keys out."""
    with h5py.File(path, "w") as f:
        for key, rows, dtype in (
            ("spikes/times", times, np.float32),
            ("spikes/units", units, unit_dtype),
        ):
            if key not in drop:
                data = f.create_dataset(key, (len(rows),), dtype=h5py.vlen_dtype(dtype))
                for i, row in enumerate(rows):
                    data[i] = np.asarray(row, dtype=dtype)
        if "labels" not in drop:
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))


def write_both(folder: Path, **train) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    write_shd(folder / "shd_train.h5", **train)
    write_shd(folder / "shd_test.h5", times=TIMES[:2], units=UNITS[:2], labels=[3, 4])
    return folder / "shd_train.h5", folder / "shd_test.h5"


def dense(steps: int, spikes: list[tuple[int, int]]) -> np.ndarray:
    x = np.zeros((steps, 700), dtype=np.uint8)
    for step, unit in spikes:
        x[step, unit] = 1
    return x


# Written by hand from the times above: steps of duration / time_steps seconds, step b holding
# [b, b + 1) steps' worth; times at or after duration dropped; repeats in a step count once.
BINNED = {
    (10, 1.0): [
        [(0, 3), (3, 699), (9, 0), (6, 42)],  # 0.0, 0.05, 0.07 in step 0; 1.0 and 1.2 dropped
        [(4, 10), (2, 10), (1, 11)],
        [],
    ],
    (4, 0.5): [  # steps of 0.125 s
        [(0, 3), (2, 699)],  # 0.62, 0.999, 1.0, 1.2 dropped
        [(3, 10), (2, 10), (1, 11)],
        [],
    ],
    (1, 2.0): [[(0, 3), (0, 699), (0, 0), (0, 5), (0, 42)], [(0, 10), (0, 11)], []],
}


@pytest.mark.parametrize(("time_steps", "duration"), sorted(BINNED))
def test_shd_spikes_are_binned_into_0_1_steps(tmp_path, time_steps, duration):
    write_both(tmp_path)
    shape, train, test = dataset("shd").load(tmp_path, time_steps=time_steps, duration=duration)
    assert shape == DataShape((time_steps, 700), 20)
    expected = np.stack([dense(time_steps, spikes) for spikes in BINNED[time_steps, duration]])
    assert train.x.shape == expected.shape
    assert np.array_equal(train.x, expected)
    assert train.y.tolist() == LABELS and test.y.tolist() == [3, 4]
    assert np.array_equal(test.x, expected[:2])
    assert train.x_source == tmp_path / "shd_train.h5"


def test_shd_reaches_the_model_as_float_spikes_not_standardized(tmp_path):
    times, units = TIMES[:2] * 5, UNITS[:2] * 5
    write_both(tmp_path / "shd", times=times, units=units, labels=[0, 1] * 5)
    splits = load_splits("shd", tmp_path, 0.4, 0.0, seed=0, time_steps=10, duration=1.0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [6, 4, 2]
    first, second = (
        torch.as_tensor(dense(10, s), dtype=torch.float32) for s in BINNED[10, 1.0][:2]
    )
    by_label = {0: first, 1: second, 3: first, 4: second}  # the test file's labels: 3, 4
    for data in splits.values():
        for x, y in zip(*data.tensors, strict=True):
            assert x.dtype == torch.float32 and torch.equal(x, by_label[int(y)])


def test_missing_shd_files_name_every_path_looked_for(tmp_path):
    (tmp_path / "shd").mkdir()
    write_shd(tmp_path / "shd" / "shd_train.h5")  # one of two: not enough
    with pytest.raises(FileNotFoundError) as err:
        check_files("shd", tmp_path)
    for folder in (tmp_path, tmp_path / "shd"):
        for name in ("shd_train.h5", "shd_test.h5"):
            assert str(folder / name) in str(err.value)
    assert "data.download=true" in str(err.value)


def test_shd_downloads_only_when_asked_and_unzips_atomically(tmp_path, monkeypatch):
    source = tmp_path / "source"
    served = dict(zip(("shd_train.h5", "shd_test.h5"), write_both(source), strict=True))
    fetched = []

    def urlopen(url, timeout):
        fetched.append(url)
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        return io.BytesIO(gzip.compress(served[name].read_bytes()))

    monkeypatch.setattr("surrogate.training.data.shd.urlopen", urlopen)
    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError):
        DataModule("shd", str(root), time_steps=10, duration=1.0).prepare_data()
    assert fetched == []
    check_files("shd", root, download=True)  # the files to be downloaded count as there
    DataModule("shd", str(root), download=True, time_steps=10, duration=1.0).prepare_data()
    assert fetched == [
        "https://zenkelab.org/datasets/shd_train.h5.gz",
        "https://zenkelab.org/datasets/shd_test.h5.gz",
    ]
    assert sorted(p.name for p in (root / "shd").iterdir()) == ["shd_test.h5", "shd_train.h5"]
    for name, path in served.items():
        assert (root / "shd" / name).read_bytes() == path.read_bytes()


def test_a_broken_download_leaves_no_file(tmp_path, monkeypatch):
    def urlopen(url, timeout):
        whole = gzip.compress(np.random.default_rng(0).bytes(10000))
        return io.BytesIO(whole[:2000])  # truncated

    monkeypatch.setattr("surrogate.training.data.shd.urlopen", urlopen)
    with pytest.raises(OSError, match="could not fetch https://zenkelab.org/datasets/shd_train"):
        dataset("shd").prepare(tmp_path, download=True)
    assert list((tmp_path / "shd").iterdir()) == []


BAD_FILES = [
    pytest.param(
        {"drop": ("spikes/units",)},
        "no spikes/units; an SHD file holds spikes/times, spikes/units, labels",
        id="missing key",
    ),
    pytest.param(
        {"drop": ("labels", "spikes/times")},
        "no spikes/times, labels; an SHD file holds spikes/times, spikes/units, labels",
        id="missing keys",
    ),
    pytest.param(
        {"units": [UNITS[0], UNITS[1][:2], []]},
        "ragged: example 1 has 3 spike times but 2 spike units; an example's spikes/times and "
        "spikes/units are of one length",
        id="ragged example",
    ),
    pytest.param(
        {"labels": [0, 1]},
        "ragged: spikes/times 3, spikes/units 3, labels 2 entries; spikes/times, spikes/units "
        "and labels hold one entry per example",
        id="labels count",
    ),
    pytest.param(
        {"units": [UNITS[0], [10, 700, 11], []]},
        "example 1: unit 700 (spike 1) is out of range; SHD units are 0 to 699",
        id="unit 700",
    ),
    pytest.param(
        {"units": [UNITS[0], UNITS[1], [-1]], "times": [*TIMES[:2], [0.5]], "unit_dtype": "i4"},
        "example 2: unit -1 (spike 0) is out of range; SHD units are 0 to 699",
        id="unit -1",
    ),
    pytest.param(
        {"times": [TIMES[0], [0.45, -0.01, 0.13], []]},
        "example 1: spike time -0.01",
        id="negative time",
    ),
    pytest.param(
        {"times": [TIMES[0], [0.45, 0.2, float("nan")], []]},
        "example 1: spike time nan (spike 2) is invalid; spike times are seconds from the "
        "example's start, >= 0",
        id="nan time",
    ),
    pytest.param(
        {"labels": [0, 20, 7]},
        "label 20 at index 1 is out of range; shd labels are 0 to 19",
        id="label 20",
    ),
]


@pytest.mark.parametrize(("train", "expected"), BAD_FILES)
def test_a_bad_shd_file_is_named_with_what_is_valid(tmp_path, train, expected):
    path, _ = write_both(tmp_path, **train)
    with pytest.raises(DataError) as err:
        dataset("shd").load(tmp_path, time_steps=10, duration=1.0)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


def test_a_file_that_is_not_hdf5_is_named(tmp_path):
    _, test = write_both(tmp_path)
    test.write_bytes(b"not an HDF5 file")
    with pytest.raises(DataError, match="not a readable HDF5 file") as err:
        dataset("shd").load(tmp_path, time_steps=10, duration=1.0)
    assert str(test) in str(err.value)


def test_shd_refuses_image_size_and_a_null_time_steps():
    with pytest.raises(ValueError, match="data.image_size: resizes data=image_folder only"):
        dataset("shd").shape("unused", time_steps=10, image_size=28)
    with pytest.raises(ValueError, match="data.time_steps: data=shd reads it"):
        dataset("shd").shape("unused", time_steps=None)

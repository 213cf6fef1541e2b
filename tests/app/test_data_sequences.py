"""A data set of sequences, registered here, loads like the built-in image sets: (T, F) examples,
one label each, stratified splits, normalized per feature over the training split's (N, T)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from surrogate.training.data import (
    DATASETS,
    DataError,
    DataSet,
    DataShape,
    Part,
    check_files,
    register_dataset,
)
from surrogate.training.data.datamodule import DataModule, load_splits

STEPS, FEATURES, CLASSES = 12, 4, 3
N_TRAIN, N_TEST = 90, 30
OFFSETS, SCALES = np.array([0.0, 5.0, -3.0, 100.0]), np.array([1.0, 10.0, 0.1, 3.0])


class ToySequences(DataSet):
    """Sequences in root/toy.npz: train and test arrays, or train alone (``test_x`` missing)."""

    def shape(self, root, **options):
        return DataShape((STEPS, FEATURES), CLASSES)

    def check_files(self, root, **options):
        if not (Path(root) / "toy.npz").is_file():
            raise FileNotFoundError(f"data: no {Path(root) / 'toy.npz'}")

    def read(self, root, shape, **options):
        path = Path(root) / "toy.npz"
        with np.load(path) as arrays:
            train = Part(arrays["x"], arrays["y"], path, path)
            test = (
                Part(arrays["test_x"], arrays["test_y"], path, path) if "test_x" in arrays else None
            )
        return train, test


@pytest.fixture
def toy():
    register_dataset("toy_sequences")(ToySequences)
    yield "toy_sequences"
    del DATASETS["toy_sequences"]


def sequences(n: int, seed: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random sequences, features on their own scales; feature 0 carries anchors (0 at
    step 0, 1000 at step 1) and the sequence's index (step 2), so they can be told apart after
    normalization."""
    rng = np.random.default_rng(seed)
    x = (OFFSETS + SCALES * rng.normal(size=(n, STEPS, FEATURES))).astype(np.float32)
    x[:, :3, 0] = np.stack([np.zeros(n), np.full(n, 1000), start + np.arange(n)], 1)
    return x, rng.permutation(np.arange(n) % CLASSES)


def write_toy(root: Path, test: bool = True) -> dict[str, np.ndarray]:
    x, y = sequences(N_TRAIN, seed=0)
    arrays = {"x": x, "y": y}
    if test:
        arrays["test_x"], arrays["test_y"] = sequences(N_TEST, seed=1, start=N_TRAIN)
    np.savez(root / "toy.npz", **arrays)
    return arrays


def indices(x: torch.Tensor) -> list[int]:
    """The index each normalized sequence carries (the anchors undo the normalization)."""
    zero, top = x[:, 0, 0], x[:, 1, 0]
    return ((x[:, 2, 0] - zero) / (top - zero) * 1000).round().long().tolist()


def test_sequences_keep_their_labels_and_are_normalized_per_feature(tmp_path, toy):
    arrays = write_toy(tmp_path)
    raw_x = np.concatenate([arrays["x"], arrays["test_x"]])
    raw_y = np.concatenate([arrays["y"], arrays["test_y"]])
    splits = load_splits(toy, tmp_path, val_fraction=0.2, test_fraction=0.0, seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [72, 18, 30]
    seen = {split: indices(data.tensors[0]) for split, data in splits.items()}
    assert sorted(seen["train"] + seen["val"]) == list(range(N_TRAIN))
    assert sorted(seen["test"]) == list(range(N_TRAIN, N_TRAIN + N_TEST))
    for split, (x, y) in ((s, d.tensors) for s, d in splits.items()):
        assert x.shape[1:] == (STEPS, FEATURES) and y.dtype == torch.long
        assert y.tolist() == raw_y[seen[split]].tolist()
        assert np.bincount(y.numpy()).min() >= len(y) // CLASSES  # stratified
    train = torch.as_tensor(raw_x[seen["train"]])
    mean, std = train.mean(dim=(0, 1), keepdim=True), train.std(dim=(0, 1), keepdim=True)
    for split, data in splits.items():
        assert torch.equal(data.tensors[0], (torch.as_tensor(raw_x[seen[split]]) - mean) / std)
    x = splits["train"].tensors[0][:, :, 1:]  # the random features: each centred and scaled alone
    assert torch.allclose(x.mean(dim=(0, 1)), torch.zeros(FEATURES - 1), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 1)), torch.ones(FEATURES - 1), atol=1e-5)


def test_without_a_test_split_test_fraction_is_held_out_and_train_subset_applies(tmp_path, toy):
    write_toy(tmp_path, test=False)
    splits = load_splits(toy, tmp_path, 0.2, 0.2, seed=3, train_subset=30)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [24, 6, 18]
    assert np.bincount(splits["test"].tensors[1].numpy()).tolist() == [6, 6, 6]


def test_the_data_module_batches_sequences(tmp_path, toy):
    write_toy(tmp_path)
    data = DataModule(toy, str(tmp_path), batch_size=8, val_fraction=0.2, shuffle_seed=1)
    assert data.shape == DataShape((STEPS, FEATURES), CLASSES)
    data.prepare_data()
    data.setup()
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (8, STEPS, FEATURES) and y.shape == (8,)
    assert sum(len(b[1]) for b in data.test_dataloader()) == N_TEST


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        (np.s_[:, :, :3], "sequences of shape 12x3 found, expected 12x4 for toy_sequences"),
        (np.s_[:0], "no sequences"),
    ],
)
def test_sequences_of_the_wrong_shape_are_named(tmp_path, toy, cut, expected):
    arrays = write_toy(tmp_path)
    np.savez(tmp_path / "toy.npz", **{**arrays, "test_x": arrays["test_x"][cut]})
    with pytest.raises(DataError, match=expected) as err:
        load_splits(toy, tmp_path, 0.2, 0.0, seed=0)
    assert str(tmp_path / "toy.npz") in str(err.value)


def test_its_own_file_check_runs(tmp_path, toy):
    with pytest.raises(FileNotFoundError, match="toy.npz"):
        check_files(toy, tmp_path)
    with pytest.raises(FileNotFoundError, match="toy.npz"):
        DataModule(toy, str(tmp_path)).prepare_data()

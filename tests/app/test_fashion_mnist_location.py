"""The real-data tests find Fashion-MNIST where it is: SURROGATE_FASHION_MNIST names the folder,
else the default path; they skip, saying how to enable them, only when neither is there."""

from __future__ import annotations

import pytest

from tests.app.helpers import (
    FASHION_MNIST_ENV,
    SKIP_WITHOUT_FASHION_MNIST,
    fashion_mnist_folder,
    fashion_mnist_missing,
)


def test_the_variable_names_the_folder_over_the_default(tmp_path):
    env = {FASHION_MNIST_ENV: str(tmp_path)}
    assert fashion_mnist_folder(env, default=tmp_path / "absent") == tmp_path
    assert not fashion_mnist_missing(env, default=tmp_path / "absent")


def test_the_default_is_used_when_the_variable_is_unset(tmp_path):
    assert fashion_mnist_folder({}, default=tmp_path) == tmp_path
    assert not fashion_mnist_missing({FASHION_MNIST_ENV: ""}, default=tmp_path)


def test_skipped_only_when_unset_and_the_default_absent(tmp_path):
    assert fashion_mnist_missing({}, default=tmp_path / "absent")
    assert fashion_mnist_folder({}, default=tmp_path / "absent") is None
    assert FASHION_MNIST_ENV in SKIP_WITHOUT_FASHION_MNIST  # the skip says how to enable it


def test_a_variable_naming_no_folder_is_an_error_not_a_skip(tmp_path):
    env = {FASHION_MNIST_ENV: str(tmp_path / "typo")}
    assert not fashion_mnist_missing(env, default=tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=f"{FASHION_MNIST_ENV}=.*typo: no such folder"):
        fashion_mnist_folder(env)

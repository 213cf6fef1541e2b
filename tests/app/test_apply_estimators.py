"""ApplyEstimators gives any LightningModule's hard ops the config's estimators, and train.py
trains the plain-torch CNN (model=plain_cnn) with op=... as it does the built-in one."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from surrogate.training.callbacks.apply_estimators import ApplyEstimators
from surrogate.training.config.validate import validate
from surrogate.training.run import run
from tests.app.helpers import FAST, compose_config


class PlainModule(pl.LightningModule):
    """A LightningModule written without surrogate: torch.sign and argmax + one_hot."""

    def __init__(self):
        super().__init__()
        self.first, self.logits, self.head = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x):
        h = torch.sign(self.first(x))
        onehot = F.one_hot(self.logits(h).unflatten(1, (2, 3)).argmax(-1), 3)
        return self.head(onehot.flatten(1).float())

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(callbacks):
    torch.manual_seed(0)
    module = PlainModule()
    before = module.first.weight.detach().clone()
    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=callbacks,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    loader = DataLoader(data, batch_size=8)
    trainer.fit(module, loader, loader)
    return before, module


def test_intercept_reaches_the_first_layer_of_a_plain_module():
    before, module = fit([ApplyEstimators({"sign": {"name": "atan"}, "argmax": {"name": "ste"}})])
    assert not torch.equal(before, module.first.weight)
    leaked = torch.sign(module.first.weight).grad_fn
    assert type(leaked).__name__ == "SignBackward0"  # PyTorch's again after the batches
    before, module = fit([])
    assert torch.equal(before, module.first.weight)  # PyTorch's zero gradient: it never moves


def test_swap_refuses_a_model_without_surrogate_modules():
    with pytest.raises(ValueError, match="finds no surrogate.*intercept"):
        fit([ApplyEstimators({"sign": {"name": "atan"}}, method="swap")])


@pytest.mark.parametrize(
    ("ops", "method", "words"),
    [
        ({"sign": {"name": "atan"}}, "patch", ["'patch'", "swap, intercept, both"]),
        ({"sgn": {"name": "atan"}}, "intercept", ["'sgn'", "step, sign, round, argmax"]),
        ({"sign": {"name": "gumbel"}}, "intercept", ["op.sign", "gumbel"]),
    ],
)
def test_bad_config_fails_when_built(ops, method, words):
    with pytest.raises(ValueError) as info:
        ApplyEstimators(ops, method=method)
    for word in words:
        assert word in str(info.value)


def test_train_py_trains_the_plain_cnn(tmp_path):
    config = compose_config(["model=plain_cnn", "op=atan", *FAST], tmp_path)
    assert (
        config["model"]["name"] == "plain_cnn"
        and config["model"]["apply_estimators"] == "intercept"
    )
    assert config["model"]["activations"] == ["sign", "sign"]
    metrics = run(config, tmp_path, preset="atan")
    assert metrics["steps"] == 3 and metrics["estimators"]["sign"]["name"] == "atan"
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["model"]["name"] == "plain_cnn"


@pytest.mark.parametrize("preset", ["atan", "gumbel", "relaxed"])
def test_plain_cnn_trains_exactly_like_the_built_in_cnn(preset, tmp_path):
    """Same shapes and initialization; under the intercept the plain CNN gets the same forward
    (gumbel's samples and the relaxed forward included) and the same gradients."""
    common = [f"op={preset}", "model.activations=[sign,step]", *FAST]
    plain = run(compose_config(["model=plain_cnn", *common], tmp_path / "a"), tmp_path / "a")
    built = run(compose_config(["model=cnn", *common], tmp_path / "b"), tmp_path / "b")
    assert plain["train_loss"] == built["train_loss"] and plain["val_acc"] == built["val_acc"]
    assert plain["test_acc"] == built["test_acc"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["model=plain_cnn", "model.apply_estimators=swap"], ["swap", "PlainCNN", "intercept"]),
        (["model.apply_estimators=patch"], ["'patch'", "swap, intercept, both"]),
        (["model.name=resnet"], ["'resnet'", "cnn, csnn, custom, plain_cnn"]),
    ],
)
def test_bad_model_config_fails_validation(overrides, words, tmp_path):
    with pytest.raises(ValueError) as info:
        validate(compose_config(overrides, tmp_path))
    for word in words:
        assert word in str(info.value)

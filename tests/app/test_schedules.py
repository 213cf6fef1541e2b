"""Schedules from the config group ``schedule``: the estimator each training batch really runs, the
value logged, evaluation on the hard network, and a bad schedule refused before anything runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl

import surrogate
from surrogate.training.config.validate import validate
from surrogate.training.run import build, run
from tests.app.helpers import compose_config

SMALL = [
    "model.channels=[8,16]",
    "data.train_subset=200",
    "data.batch_size=50",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.max_epochs=4",
    "callbacks.progress_refresh_rate=0",
    "callbacks.diagnostics=false",
    "trainer.enable_model_summary=false",
]
STEPS_PER_EPOCH = 4  # data.train_subset=200 training images, 50 a batch


class Seen(pl.Callback):
    """What each batch of each stage runs: (stage, step, epoch, estimator, relaxed) per op, read
    off the model's modules or off the active intercept, after the estimators are applied."""

    def __init__(self, apply):
        self.apply, self.batches = apply, []

    def _note(self, stage, trainer, pl_module):
        mode = self.apply._mode
        if mode is not None:
            ops = dict(mode.ops)
        else:
            ops = {m.op_name: (m.estimator, m.relaxed) for m in pl_module.modules()
                   if isinstance(m, surrogate.HardOp)}  # fmt: skip
        self.batches.append((stage, trainer.global_step, trainer.current_epoch, ops))

    def on_train_batch_start(self, trainer, pl_module, *args):
        self._note("train", trainer, pl_module)

    def on_validation_batch_start(self, trainer, pl_module, *args):
        self._note("val", trainer, pl_module)


def _fit(args, tmp_path):
    config = compose_config([*SMALL, *args], tmp_path)
    validate(config)
    data, module, trainer, _ = build(config, tmp_path)
    apply = trainer.callbacks[0]
    seen = Seen(apply)
    trainer.callbacks.insert(1, seen)
    trainer.fit(module, datamodule=data)
    return seen.batches


def test_an_annealed_beta_is_the_estimator_of_every_training_batch(tmp_path):
    batches = _fit(["op=sigmoid", "schedule=anneal_beta"], tmp_path)
    train = [b for b in batches if b[0] == "train"]
    assert len(train) == 4 * STEPS_PER_EPOCH
    for _, _, epoch, ops in train:
        beta = 16.0 ** (epoch / 4)  # exponential from 1 to 16 over max_epochs = 4
        for op in ("sign", "step"):
            est, relaxed = ops[op]
            assert est.name == "sigmoid" and not relaxed
            assert est.beta == pytest.approx(beta, rel=1e-12)
        assert ops["argmax"][0] == surrogate.estimator("softmax")  # no beta: untouched


def test_a_step_schedule_changes_every_step(tmp_path):
    args = ["op=gumbel", "schedule=gumbel_tau", "schedule.params.argmax.tau.rate=0.2"]
    batches = _fit(args, tmp_path)
    taus = [(step, ops["argmax"][0].tau) for stage, step, _, ops in batches if stage == "train"]
    assert [s for s, _ in taus] == list(range(4 * STEPS_PER_EPOCH))
    for step, tau in taus:
        assert tau == pytest.approx(max(0.5, math.exp(-0.2 * step)), rel=1e-12)
    assert taus[-1][1] == 0.5 and taus[1][1] > 0.8  # it reaches its floor within the run


def test_a_step_schedule_without_a_length_spans_every_training_step(tmp_path):
    args = ["op=sigmoid", "+schedule.params.sign.beta={kind: linear, start: 1, end: 5, unit: step}"]
    batches = _fit(args, tmp_path)
    total = 4 * STEPS_PER_EPOCH
    for stage, step, _, ops in batches:
        if stage == "train":
            assert ops["sign"][0].beta == pytest.approx(1 + 4 * step / total, rel=1e-12)
            assert ops["step"][0].beta == 4.0  # only sign is scheduled


def test_relaxed_until_epoch_k_trains_relaxed_then_hard_and_always_validates_hard(tmp_path):
    batches = _fit(["op=sigmoid", "schedule=relaxed_then_hard",
                    "schedule.relaxed_until_epoch=2"], tmp_path)  # fmt: skip
    for stage, _, epoch, ops in batches:
        relaxed = {op: r for op, (_, r) in ops.items()}
        expected = stage == "train" and epoch < 2
        assert set(relaxed.values()) == {expected}, (stage, epoch, relaxed)


def test_a_schedule_reaches_a_plain_torch_model_through_intercept(tmp_path):
    args = ["op=sigmoid", "schedule=anneal_beta", "model.name=plain_cnn",
            "model.apply_estimators=intercept", "model.activations=[sign,sign]"]  # fmt: skip
    batches = _fit(args, tmp_path)
    for stage, _, epoch, ops in batches:
        if stage == "train":
            assert ops["sign"][0].beta == pytest.approx(16.0 ** (epoch / 4), rel=1e-12)


@pytest.mark.slow
def test_the_value_in_force_is_logged_at_each_validation(tmp_path):
    args = [*SMALL, "op=sigmoid", "schedule=anneal_beta", "schedule.relaxed_until_epoch=1"]
    metrics = run(compose_config(args, tmp_path), tmp_path, "sigmoid")
    expected = [16.0 ** (e / 4) for e in range(4)]
    assert metrics["schedule"]["sign.beta"] == pytest.approx(expected, rel=1e-12)
    assert metrics["schedule"]["relaxed"] == [1.0, 0.0, 0.0, 0.0]
    rows = np.genfromtxt(tmp_path / "csv" / "metrics.csv", delimiter=",", names=True)
    logged = rows["schedulestepbeta"]  # numpy drops the slash and the dot from the header
    assert logged[~np.isnan(logged)].tolist() == pytest.approx(expected, rel=1e-6)


def test_no_schedule_records_nothing(tmp_path):
    metrics = run(compose_config([*SMALL, "trainer.max_epochs=1"], tmp_path), tmp_path, "ste")
    assert "schedule" not in metrics
    assert not (tmp_path / "schedule.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["op=atan", "schedule=anneal_beta"], r"schedule.params.all: no estimator has a "
         r"parameter 'beta'; they have: step=atan\(alpha\)"),
        (["op=ste", "schedule=relaxed_then_hard"], r"relaxed step needs an estimator with a "
         r"smooth forward, 'ste' has none; choose one of: clipped_ste, sigmoid"),
        (["op=sigmoid", "+schedule.params.stp.beta={kind: linear, start: 1, end: 8}"],
         r"schedule.params: unknown key 'stp'; choose one of: all, step, sign, round, argmax"),
        (["op=sigmoid", "+schedule.params.step.beta={knd: linear, start: 1, end: 8}"],
         r"schedule.params.step.beta: unknown field 'knd'; a Schedule takes kind, start"),
        (["op=sigmoid", "+schedule.params.step.beta={kind: linear, start: 1, end: -1}"],
         r"sigmoid: beta must be a finite number > 0, got -1"),
        (["op=sigmoid", "schedule=relaxed_then_hard", "trainer.max_epochs=8"],
         r"schedule.relaxed_until_epoch: 10 leaves no hard epoch in a run of "
         r"trainer.max_epochs=8; choose 1 to 7, or more epochs"),
        (["op=sigmoid", "schedule.relaxed_until_epoch=0"],
         r"schedule.relaxed_until_epoch: must be an integer >= 1 or null, got 0"),
    ],
)  # fmt: skip
def test_a_bad_schedule_is_refused_before_anything_runs(tmp_path, args, message):
    config = compose_config(args, tmp_path)
    with pytest.raises(ValueError, match=message):
        validate(config, files=False)
    assert not any(tmp_path.iterdir())

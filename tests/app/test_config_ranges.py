"""Every number in the config has a checked range: a value outside it is refused before anything
runs, with a message naming the key, the value and the range."""

from __future__ import annotations

import copy
import dataclasses
import typing

import pytest

from surrogate.training.config.op import HardOpConfig
from surrogate.training.config.schema import TrainConfig
from surrogate.training.config.validate import validate
from surrogate.training.models import MODELS
from surrogate.training.ranges import RANGES, check_estimators_in_float32, field_ranges
from tests.app.helpers import ROOT, compose_config

NUMBERS = (int, float)


def _numeric_schema_keys(cls, prefix="") -> set[str]:
    """Dotted keys of the schema whose type is a number, an optional number or a list of them."""
    keys = set()
    for f in dataclasses.fields(cls):
        kind = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(kind):
            if f.name != "op":  # estimator parameters: checked by the library and in float32
                keys |= _numeric_schema_keys(kind, f"{prefix}{f.name}.")
            continue
        args = set(typing.get_args(kind)) | {kind}
        args |= {a for arg in list(args) for a in typing.get_args(arg)}
        if args & set(NUMBERS):
            keys.add(prefix + f.name)
    return keys


def _is_number(value) -> bool:
    return isinstance(value, NUMBERS) and not isinstance(value, bool)


def _numeric_config_keys(node, prefix="") -> set[str]:
    """Dotted keys of a composed config whose value is a number or a list of numbers."""
    keys = set()
    for key, value in node.items():
        if isinstance(value, dict):
            if key != "op":
                keys |= _numeric_config_keys(value, f"{prefix}{key}.")
        elif any(_is_number(v) for v in (value if isinstance(value, list) else [value])):
            keys.add(prefix + key)
    return keys


def test_every_numeric_key_of_the_schema_has_a_range():
    keys = _numeric_schema_keys(TrainConfig)
    assert {"seed", "data.batch_size", "data.cnn_size.groups"} <= keys  # the walk finds them
    assert keys - set(RANGES) == set()


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_numeric_key_of_each_model_config_has_a_range(model):
    config = MODELS[model].config
    keys = _numeric_schema_keys(config, "model.")
    assert "model.optimizer.lr" in keys  # the walk finds them
    assert keys - set(field_ranges(config, "model")) == set()


@pytest.mark.parametrize("data", sorted(p.stem for p in (ROOT / "configs" / "data").glob("*.yaml")))
@pytest.mark.parametrize("model", ["cnn", "plain_cnn"])
def test_every_number_of_each_composed_config_has_a_range(tmp_path, data, model):
    config = compose_config([f"data={data}", "data.root=data", f"model={model}"], tmp_path)
    keys = _numeric_config_keys(config)
    assert {"trainer.val_check_interval", "trainer.limit_train_batches"} <= keys
    ranged = set(RANGES) | set(field_ranges(MODELS[model].config, "model"))
    assert keys - ranged == set()


# (key, a value outside its range, a value at the edge inside it): written from what each key
# means (counts >= 1, fractions in (0, 1), numpy's seed range ...), not read from RANGES.
CASES = [
    ("seed", -1, 0),
    ("seed", 2**32, 2**32 - 1),
    ("threads", -1, 0),
    ("data.batch_size", 0, 1),
    ("data.val_fraction", 0.0, 0.01),
    ("data.val_fraction", 1.0, 0.99),
    ("data.test_fraction", 1.0, 0.0),
    ("data.split_seed", -3, 0),
    ("data.num_workers", -1, 0),
    ("data.train_subset", 0, None),
    ("model.channels", [8, 0], [8, 1]),
    ("model.pooled_size", 0, 1),
    ("model.groups", 0, 1),
    ("model.categories", 1, 2),
    ("model.optimizer.lr", 0.0, 1e-9),
    ("model.optimizer.lr", float("inf"), 10.0),
    ("model.optimizer.lr", float("nan"), 0.1),
    ("model.optimizer.weight_decay", -1e-6, 0.0),
    ("model.optimizer.momentum", 1.0, 0.0),
    ("trainer.max_epochs", 0, 1),
    ("trainer.log_every_n_steps", 0, 1),
    ("trainer.num_sanity_val_steps", -2, -1),
    ("trainer.val_check_interval", 0.0, 1.0),
    ("trainer.val_check_interval", 0, 3),
    ("trainer.limit_train_batches", 1.5, 0.5),
    ("trainer.limit_val_batches", -1, 0),
    ("trainer.limit_test_batches", -0.5, 1.0),
    ("trainer.gradient_clip_val", 0.0, None),
    ("callbacks.progress_refresh_rate", -1, 0),
    ("callbacks.probe_size", 0, 1),
    ("callbacks.diagnostics_every", 0, 1),
    ("data.image_size", 0, None),
    ("data.cnn_size.groups", 0, 1),
]


def _with(config: dict, key: str, value) -> dict:
    config = copy.deepcopy(config)
    *path, last = key.split(".")
    node = config
    for part in path:
        node = node[part]
    node[last] = value
    return config


@pytest.fixture(scope="module")
def default_config(tmp_path_factory):
    return compose_config([], tmp_path_factory.mktemp("config"))


@pytest.mark.parametrize(("key", "bad", "good"), CASES)
def test_a_value_outside_its_range_is_refused_naming_key_value_and_range(
    default_config, key, bad, good
):
    validate(_with(default_config, key, good), files=False)
    with pytest.raises(ValueError) as err:
        validate(_with(default_config, key, bad), files=False)
    message = str(err.value)
    assert key in message and repr(bad) in message and "must be" in message


@pytest.mark.parametrize(
    ("overrides", "op"),
    [
        (["op=sigmoid", "op.step.beta=1e308"], "op.step"),
        (["op=atan", "op.sign.alpha=1e39"], "op.sign"),
        (["op=triangle", "op.step.width=1e-45"], "op.step"),
    ],
)
def test_estimator_parameters_that_overflow_float32_are_refused(tmp_path, overrides, op):
    with pytest.raises(ValueError, match=f"{op}: .*overflows in float32"):
        validate(compose_config(overrides, tmp_path), files=False)


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "configs" / "op").glob("*.yaml")))
def test_every_preset_passes_the_float32_check(tmp_path, preset):
    config = compose_config([f"op={preset}"], tmp_path)
    check_estimators_in_float32(HardOpConfig.parse(config["op"]).ops)

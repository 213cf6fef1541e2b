"""The typed config schema: keys and types only (the values live in configs/), estimator
parameters read from the library's registry, and the renamed key still read with a warning."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from surrogate.estimators.base import REGISTRY
from surrogate.training.config.schema import EstimatorNode, TrainConfig
from tests.app.helpers import ROOT, compose_config


def leaves(node, prefix=""):
    for key in node:
        child = node._get_node(key)
        path = f"{prefix}{key}"
        if OmegaConf.is_dict(child):
            yield from leaves(child, path + ".")
        else:
            yield path, child


def test_every_value_outside_the_op_nodes_comes_from_the_yaml():
    schema = OmegaConf.structured(TrainConfig)
    stated_here = [
        path
        for path, node in leaves(schema)
        if not node._is_missing() and not path.startswith("op.") and path != "model.surrogate"
    ]
    assert stated_here == []


def test_op_nodes_take_every_parameter_of_the_registry_and_nothing_else():
    params = {f.name: f for cls in REGISTRY.values() for f in dataclasses.fields(cls)}
    fields = {f.name: f for f in dataclasses.fields(EstimatorNode)}
    assert set(fields) == {"name", "relaxed", *params}
    assert fields["samples"].type == int | None and fields["beta"].type == float | None
    assert all(fields[name].default is None for name in params)


def test_a_newly_registered_estimator_parameter_is_a_config_key_at_once():
    script = f"""
import dataclasses
from surrogate.estimators.base import SCALAR_OPS, param, register
from surrogate.estimators.bumps import Sigmoid

@register
@dataclasses.dataclass(frozen=True, repr=False)
class Steep(Sigmoid):
    name = "steep"
    gamma: float = param(3.0)

from surrogate.training.config.compose import compose_config
overrides = ["op.step.name=steep", "op.step.gamma=5"]
config = compose_config(overrides, {str(ROOT / "configs")!r}, "/tmp")
print(config["op"]["step"])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "'gamma': 5.0" in result.stdout and "'name': 'steep'" in result.stdout


def test_the_old_key_model_surrogate_still_works_with_a_warning(tmp_path):
    with pytest.warns(FutureWarning, match="model.surrogate.*model.apply_estimators"):
        config = compose_config(["model.surrogate=intercept"], tmp_path)
    assert config["model"]["apply_estimators"] == "intercept"
    assert "surrogate" not in config["model"]


def test_a_typo_in_a_key_fails_at_composition(tmp_path):
    with pytest.raises(Exception, match="max_epoch"):
        compose_config(["trainer.max_epoch=3"], tmp_path)

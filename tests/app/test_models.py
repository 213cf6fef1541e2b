"""Networks come in one file each (a registered builder and its typed config) or by import path
(``model=custom``), and the op config reaches their hard ops by one path, per layer if asked."""

from __future__ import annotations

import importlib
import json
import math
import sys
import textwrap
from dataclasses import dataclass, field

import pytest
import torch
from omegaconf import MISSING
from torch import nn

import surrogate
from surrogate.training.config.validate import validate
from surrogate.training.models import MODELS, ModelConfig, register_model
from surrogate.training.ranges import Range
from surrogate.training.run import run
from tests.app.helpers import FAST, ROOT, compose_config, train_cli


@dataclass
class TinyConfig(ModelConfig):
    width: int = field(default=MISSING, metadata={"range": Range(1, integer=True)})


def build_tiny(config: TinyConfig, shape) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(shape.input_shape), config.width),
        surrogate.Sign(),
        nn.Linear(config.width, shape.num_classes),
    )


@pytest.fixture
def tiny():
    register_model("tiny", TinyConfig)(build_tiny)
    yield
    del MODELS["tiny"]


def tiny_config(tmp_path, *overrides, **model):
    config = compose_config([*FAST, *overrides], tmp_path)
    optimization = {k: config["model"][k] for k in ("optimizer", "scheduler")}
    config["model"] = {"name": "tiny", "apply_estimators": "swap", "width": 16, **optimization}
    config["model"].update(model)
    return config


def test_a_network_registered_from_outside_the_app_trains_through_run(tiny, tmp_path):
    metrics = run(tiny_config(tmp_path, "op=atan"), tmp_path, preset="atan")
    assert metrics["steps"] == 3
    assert metrics["layer_estimators"] == {
        "2": {"op": "sign", "name": "atan", "relaxed": False, "alpha": 2.0}
    }
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["net.1.weight"].shape == (16, 64)  # 8x8 digits in, the width from the config


def test_a_registered_network_s_config_is_checked_by_its_own_schema(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"model.width: must be an integer >= 1, got 0"):
        validate(tiny_config(tmp_path, width=0), files=False)
    with pytest.raises(ValueError, match=r"model.depth \(tiny\): Key 'depth' not in 'TinyConfig'"):
        validate(tiny_config(tmp_path, depth=2), files=False)


NETS = """
import torch
from torch import nn


class SignNet(nn.Module):
    '''Plain torch: torch.sign between two linear layers, no surrogate code.'''

    def __init__(self, input_shape, num_classes, width=8):
        super().__init__()
        self.first = nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(torch.sign(self.first(x.flatten(1))))
"""


@pytest.mark.slow
def test_a_users_network_by_import_path_trains_from_the_command_line(tmp_path):
    (tmp_path / "mynets").mkdir()
    (tmp_path / "mynets" / "__init__.py").write_text("")
    (tmp_path / "mynets" / "nets.py").write_text(textwrap.dedent(NETS))
    first = {}
    for op in ("none", "atan"):
        out = tmp_path / op
        result = train_cli(
            "model=custom", "model.net._target_=mynets.nets.SignNet", "+model.net.width=12",
            f"op={op}", *FAST, f"hydra.run.dir={out}", cwd=tmp_path, pythonpath=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["estimators"]["sign"]["name"] == op
        state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        assert state["net.first.weight"].shape == (12, 64)
        first[op] = state["net.first.weight"]
    # the same seed, the same initialization: only the intercepted sign lets the first layer learn
    assert not torch.equal(first["none"], first["atan"])


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ([], ["model.net._target_", "mypkg.nets.MyNet"]),
        (["model.net._target_=nowhere.Net"], ["cannot import 'nowhere'", "PYTHONPATH"]),
        (["model.net._target_=torch.nn.Identity2"], ["'torch.nn' has no 'Identity2'"]),
        (["model.net._target_=torch.nn.Linear", "+model.net.widht=3"], ["widht"]),
    ],
)
def test_a_bad_import_path_is_refused_before_anything_runs(tmp_path, overrides, words):
    config = compose_config(["model=custom", "model.net._target_=x", *overrides], tmp_path)
    if not overrides:
        config["model"]["net"].pop("_target_")
    with pytest.raises(ValueError) as info:
        validate(config, files=False)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_one_layer_takes_its_own_estimator_from_the_command_line(tmp_path):
    layers = (
        'op.layers=[{match: "features.3", name: ste}, {match: "bottleneck.*", name: sparsemax}]'
    )
    metrics = run(compose_config(["op=atan", layers, *FAST], tmp_path), tmp_path)
    assert metrics["layer_estimators"] == {
        "features.3": {"op": "sign", "name": "ste", "relaxed": False},
        "features.7": {"op": "step", "name": "atan", "relaxed": False, "alpha": 2.0},
        "bottleneck.2": {"op": "argmax", "name": "sparsemax", "relaxed": False, "tau": 1.0},
    }


def test_the_last_matching_layer_entry_wins(tmp_path):
    layers = 'op.layers=[{match: "features.*", name: ste}, {match: "features.7", name: tanh}]'
    metrics = run(compose_config(["op=atan", layers, *FAST], tmp_path), tmp_path)
    named = {path: entry["name"] for path, entry in metrics["layer_estimators"].items()}
    assert named == {"features.3": "ste", "features.7": "tanh", "bottleneck.2": "softmax"}


def test_a_scheduled_parameter_reaches_a_layer_whose_estimator_has_it(tmp_path):
    layers = 'op.layers=[{match: "features.7", name: sigmoid}]'
    overrides = ["op=atan", "schedule=anneal_beta", layers, *FAST, "trainer.max_epochs=2"]
    metrics = run(compose_config(overrides, tmp_path), tmp_path)
    assert metrics["layer_estimators"]["features.7"]["beta"] == 16.0  # the schedule's end
    assert metrics["layer_estimators"]["features.3"]["name"] == "atan"  # no beta: left alone


@pytest.mark.parametrize(
    ("layers", "words"),
    [
        (
            [{"match": "features.9", "name": "ste"}],
            ["op.layers[0]", "'features.9'", "features.3 (sign), features.7 (step), bottleneck.2"],
        ),
        ([{"match": "bottleneck.2", "name": "atan"}], ["op.layers[0] (bottleneck.2, argmax)"]),
        ([{"match": "features.3", "name": "atan", "alpha": -1.0}], ["alpha", "-1"]),
        ([{"name": "ste"}], ["op.layers[0]: match"]),
    ],
)
def test_a_bad_layer_entry_is_refused_naming_the_layers(tmp_path, layers, words):
    config = compose_config(["op=atan"], tmp_path)
    config["op"]["layers"] = layers
    with pytest.raises(ValueError) as info:
        validate(config, files=False)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_layer_entries_need_modules_to_reach(tmp_path):
    config = compose_config(["model=plain_cnn", 'op.layers=[{match: "*", name: ste}]'], tmp_path)
    with pytest.raises(
        ValueError, match="op.layers: .*intercept leaves alone; choose swap or both"
    ):
        validate(config, files=False)


def test_the_models_folder_is_the_registry():
    """A file in surrogate/training/models/ is a network: no list elsewhere names them."""
    files = {p.stem for p in (ROOT / "surrogate" / "training" / "models").glob("*.py")}
    assert {"cnn", "plain_cnn", "custom"} <= set(MODELS) <= files | {"tiny"}
    for name in ("cnn", "plain_cnn", "custom"):
        assert (ROOT / "configs" / "model" / f"{name}.yaml").is_file()


def _docs_block(first_line: str) -> str:
    """A block of the documentation's page on a network of your own, by its first line."""
    page = (ROOT / "docs" / "own-model" / "extending.md").read_text()
    start = page.index("\n" + first_line + "\n") + 1
    return page[start : page.index("```", start)]


def test_the_docs_network_example_trains_as_printed(tmp_path, monkeypatch):
    """The documentation's two files of a new network: its module (imported from a folder of its
    own, as the models package would import it) and its YAML (on Hydra's search path), then
    ``model=mlp`` trains."""
    (tmp_path / "readme_mlp.py").write_text(_docs_block("# surrogate/training/models/mlp.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("readme_mlp")
    try:
        (tmp_path / "conf" / "model").mkdir(parents=True)
        (tmp_path / "conf" / "model" / "mlp.yaml").write_text(
            _docs_block("# configs/model/mlp.yaml")
        )
        search = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
        config = compose_config(["model=mlp", search, "op=atan", *FAST], tmp_path / "run")
        assert config["model"]["width"] == 128
        metrics = run(config, tmp_path / "run")
        assert metrics["layer_estimators"]["2"]["name"] == "atan" and metrics["steps"] == 3
    finally:
        MODELS.pop("mlp", None)
        sys.modules.pop("readme_mlp", None)


def test_the_config_check_builds_a_shape_only_network_and_draws_no_random_numbers(tmp_path):
    from surrogate.training.config.validate import shape_only
    from surrogate.training.data import DataShape

    config = compose_config([], tmp_path)
    before = torch.random.get_rng_state()
    net = shape_only(config["model"], DataShape((1, 8, 8), 10))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert {p.device.type for p in net.parameters()} == {"meta"}

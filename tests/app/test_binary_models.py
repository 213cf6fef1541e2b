"""model=bnn and model=qcnn: their layout, their float twins, Bop and BinaryConnect's clip, and the
weight diagnostics a run records."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import surrogate
from surrogate import BinaryConv2d, BinaryLinear, QuantConv2d, QuantLinear, Sign
from surrogate.training.config.validate import validate
from surrogate.training.data import DataShape
from surrogate.training.models import build_model
from surrogate.training.models.bnn import BinaryCNN
from surrogate.training.models.qcnn import QuantCNN
from surrogate.training.optimization import Combined, build_optimizer, build_scheduler
from surrogate.training.run import run
from tests.app.helpers import FAST, compose_config

DIGITS = DataShape((1, 8, 8), 10)


def kinds(net: nn.Module, *types: type) -> list[str]:
    return [type(m).__name__ for m in net.modules() if isinstance(m, types)]


def test_bnn_keeps_the_first_convolution_and_the_classifier_full_precision():
    net = BinaryCNN((1, 28, 28), 10, (8, 16, 16))
    assert kinds(net, nn.Conv2d, nn.Linear) == ["Conv2d", "BinaryConv2d", "BinaryConv2d", "Linear"]
    assert len(kinds(net, Sign)) == 3 + 2  # one per block's activations, one per binary weight
    assert net.head.in_features == 16 * 4 * 4  # 28 -> 14 -> 7 -> 4 (ceil)
    both = BinaryCNN((1, 28, 28), 10, (8, 16), binary_first=True, binary_last=True, scale=True)
    assert kinds(both, nn.Conv2d, nn.Linear) == ["BinaryConv2d", "BinaryConv2d", "BinaryLinear"]
    assert all(m.scale for m in both.modules() if isinstance(m, (BinaryConv2d, BinaryLinear)))


def test_bnn_activations_are_binary_between_blocks():
    net = BinaryCNN((1, 8, 8), 10, (8, 16)).eval()
    seen = []
    net.features[3].register_forward_hook(lambda m, args, out: seen.append(out))
    net(torch.randn(4, 1, 8, 8))
    assert set(seen[0].unique().tolist()) == {-1.0, 1.0}


def test_qcnn_quantizes_every_block_but_the_first_at_the_bits_asked():
    net = QuantCNN((1, 28, 28), 10, (8, 16, 16), bits=3, learn_step=False)
    assert kinds(net, nn.Conv2d, nn.Linear) == ["Conv2d", "QuantConv2d", "QuantConv2d", "Linear"]
    quantizers = [m for m in net.modules() if isinstance(m, surrogate.Quantize)]
    assert {q.bits for q in quantizers} == {3} and len(quantizers) == 4
    assert not any(q.learn_step for q in quantizers)
    inputs = [m.input_quantizer for m in net.modules() if isinstance(m, QuantConv2d)]
    assert all((q.qn, q.qp) == (0, 7) for q in inputs)  # after relu: unsigned
    last = QuantCNN((1, 8, 8), 10, (8,), bits=2, quantize_first=True, quantize_last=True)
    assert kinds(last, nn.Conv2d, nn.Linear) == ["QuantConv2d", "QuantLinear"]
    assert (last.features[0].input_quantizer.qn, last.features[0].input_quantizer.qp) == (-2, 1)


@pytest.mark.parametrize("model", ["bnn", "qcnn", "cnn"])
def test_op_float_builds_each_model_as_its_float_twin(tmp_path, model):
    config = compose_config([f"model={model}", "op=float"], tmp_path)
    net = build_model(config["model"], DIGITS)
    scalar_ops = (surrogate.Step, Sign, surrogate.Round)
    assert not kinds(net, *scalar_ops, BinaryConv2d, QuantConv2d, QuantLinear)
    assert kinds(net, nn.ReLU)  # (the CNN's argmax bottleneck stays, relaxed by op=float)
    hard = build_model(compose_config([f"model={model}"], tmp_path)["model"], DIGITS)
    shapes = [p.shape for p in hard.parameters() if p.dim() > 0]
    assert shapes == [p.shape for p in net.parameters() if p.dim() > 0]  # the same shape


def test_bop_trains_the_binary_weights_and_adam_the_rest():
    torch.manual_seed(0)
    net = BinaryCNN((1, 8, 8), 10, (8, 16))
    config = {"name": "bop", "lr": 0.01, "weight_decay": 0.0, "momentum": 0.9, "gamma": 0.5,
              "threshold": 0.0}  # fmt: skip
    optimizer = build_optimizer(net, config)
    assert isinstance(optimizer, Combined)
    bop, adam = optimizer.optimizers
    assert isinstance(bop, surrogate.Bop) and isinstance(adam, torch.optim.Adam)
    binary = {id(p) for p in surrogate.binary_weights(net)}
    assert {id(p) for g in bop.param_groups for p in g["params"]} == binary
    rest = {id(p) for g in adam.param_groups for p in g["params"]}
    assert rest == {id(p) for p in net.parameters()} - binary
    before = [p.detach().clone() for p in net.parameters()]
    net(torch.randn(16, 1, 8, 8)).square().mean().backward()
    optimizer.step()
    for p, old in zip(net.parameters(), before, strict=True):
        if id(p) in binary:  # flipped or kept: the same magnitudes
            assert torch.equal(p.abs(), old.abs()) and not torch.equal(p, old)
        else:
            assert not torch.equal(p, old)
    schedule = build_scheduler(optimizer, {"name": "cosine"}, max_epochs=4)
    optimizer.step(), schedule.step()
    assert math.isclose(bop.param_groups[0]["lr"], 0.5 * (1 + math.cos(math.pi / 4)) / 2)
    assert math.isclose(adam.param_groups[0]["lr"], 0.01 * (1 + math.cos(math.pi / 4)) / 2)
    state = optimizer.state_dict()
    again = build_optimizer(net, config)
    again.load_state_dict(state)
    assert torch.equal(
        again.optimizers[0].state[net.features[4].weight]["momentum"],
        bop.state[net.features[4].weight]["momentum"],
    )


def test_bop_on_a_network_without_binary_weights_is_refused_before_any_work(tmp_path):
    config = compose_config(["model.optimizer.name=bop"], tmp_path)
    net = build_model(config["model"], DIGITS)
    message = "'bop' trains binary weights, and HardCNN has none.*choose one of: adam"
    with pytest.raises(ValueError, match=message):
        build_optimizer(net, config["model"]["optimizer"])
    with pytest.raises(ValueError, match=message):
        validate(config)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model.bits=0", "model.bits"),
        ("model.bits=17", "model.bits"),
        ("model.optimizer.name=lion", "unknown 'lion'; choose one of: adam, adamw, sgd, bop"),
    ],
)
def test_bad_values_are_refused_before_any_work(tmp_path, override, words):
    config = compose_config(["model=qcnn", override], tmp_path)
    with pytest.raises(ValueError, match=words):
        validate(config)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("op.sign.name=softmax", "'softmax' does not apply to sign"),
        ("model.latent_clip=0", "model.latent_clip"),
        ("model.optimizer.gamma=0", "model.optimizer.gamma"),
    ],
)
def test_bad_bnn_values_are_refused_before_any_work(tmp_path, override, words):
    config = compose_config(["model=bnn", override], tmp_path)
    with pytest.raises(ValueError, match=words):
        validate(config)


@pytest.mark.parametrize(("clip", "inside"), [("1.0", True), ("null", False)])
def test_latent_clip_keeps_the_binary_weights_in_bounds(tmp_path, clip, inside):
    overrides = ["model=bnn", "model.optimizer.lr=0.5", f"model.latent_clip={clip}", *FAST]
    run(compose_config(overrides, tmp_path), tmp_path / "run", "clip")
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    latent = [w for k, w in checkpoint["state_dict"].items() if k in BINARY_KEYS]
    assert len(latent) == 2
    assert all(bool(w.abs().max() <= 1.0) for w in latent) == inside


BINARY_KEYS = ("net.features.4.weight", "net.features.8.weight")


def test_a_run_records_flips_saturation_and_steps(tmp_path):
    common = [*FAST, "trainer.max_epochs=2", "callbacks.diagnostics_every=1"]
    bnn = run(compose_config(["model=bnn", *common], tmp_path), tmp_path / "bnn", "bnn")
    diagnostics = bnn["diagnostics"]
    for name in ("features.4.binarize", "features.3"):  # a weight's sign, an activation's sign
        flips = diagnostics[f"{name}/flip_ratio"]
        assert flips[0] is None and 0 <= flips[1] <= 1
    assert 0 <= diagnostics["features.4.binarize/saturated"][-1] <= 1
    qcnn = run(compose_config(["model=qcnn", *common], tmp_path), tmp_path / "qcnn", "qcnn")
    steps = qcnn["diagnostics"]["features.4.weight_quantizer.round/step"]
    assert all(s > 0 for s in steps) and steps[0] != steps[1]  # learned


def test_op_layers_give_the_weights_an_estimator_of_their_own(tmp_path):
    overrides = ["model=bnn", "op=triangle", "+op.layers=[{match: '*.binarize', name: ste}]", *FAST]
    metrics = run(compose_config(overrides, tmp_path), tmp_path / "run", "layers")
    layers = metrics["layer_estimators"]
    assert layers["features.4.binarize"]["name"] == "ste"
    assert layers["features.3"]["name"] == "triangle"


@pytest.mark.parametrize("model", ["bnn", "qcnn"])
def test_the_float_twins_train_with_no_hard_op_to_swap(tmp_path, model):
    metrics = run(compose_config([f"model={model}", "op=float", *FAST], tmp_path), tmp_path, "f")
    assert metrics["reference"] and metrics["layer_estimators"] == {}
    assert 0 <= metrics["test_acc"] <= 1


def test_a_schedule_anneals_every_quantizers_round(tmp_path):
    overrides = ["model=qcnn", "op=sigmoid", "schedule=anneal_beta", *FAST]
    metrics = run(compose_config(overrides, tmp_path), tmp_path / "run", "anneal")
    layers = metrics["layer_estimators"]
    assert set(layers) == {f"features.{i}.{q}_quantizer.round" for i in (4, 8) for q in QUANTIZERS}
    assert {layer["beta"] for layer in layers.values()} == {16.0}  # the schedule's end
    assert metrics["schedule"]


QUANTIZERS = ("weight", "input")

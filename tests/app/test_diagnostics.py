"""The hard-op diagnostics: recomputed from their definitions on saved checkpoints and the probe,
logged where the README says, and without any effect on the run they observe."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import surrogate
from surrogate.training.callbacks.diagnostics import measure
from surrogate.training.config.validate import validate
from surrogate.training.data.datamodule import DataModule
from surrogate.training.module import HardOpModule
from surrogate.training.run import run
from tests.app.helpers import compose_config

SMALL = [
    "model.channels=[8,16]",
    "data.train_subset=300",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=1",
    "callbacks.progress_refresh_rate=0",
    "trainer.enable_model_summary=false",
    "callbacks.probe_size=40",
    "callbacks.diagnostics_every=1",
]


def _probe(config):
    data = DataModule(**config["data"], shuffle_seed=config["seed"])
    data.setup()
    xs, ys = zip(*data.val_dataloader(), strict=True)
    return torch.cat(xs)[:40], torch.cat(ys)[:40]


def _inputs(model, x):
    """Each hard-op module's input on x, by module, in float64 (independent of the recorder)."""
    found = {}
    hooks = [
        m.register_forward_hook(lambda m, a, o: found.__setitem__(m, a[0].detach().double()))
        for m in model.modules()
        if isinstance(m, surrogate.HardOp)
    ]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return found


def _sigmoid_ratio(x, beta):
    """p(x)/p(0) of the sigmoid bump, p = β·σ(βx)·σ(−βx): 4·σ(βx)·σ(−βx)."""
    s = torch.sigmoid(beta * x)
    return 4 * s * (1 - s)


def _decisions(module, x):
    if isinstance(module, surrogate.ArgMax):
        return x.argmax(-1)
    if isinstance(module, surrogate.Sign):
        return torch.where(x >= 0, 1.0, -1.0)
    return (x > 0).double()


def _own_params(model):
    """The parameters created after the previous hard op, per hard op (written for HardCNN)."""
    net = model.net
    return {
        net.features[3]: [*net.features[0].parameters(), *net.features[2].parameters()],
        net.features[7]: [*net.features[4].parameters(), *net.features[6].parameters()],
        net.bottleneck[2]: list(net.bottleneck[0].parameters()),
    }


def _grads(model, x, y, params):
    loss = F.cross_entropy(model(x), y)
    return torch.autograd.grad(loss, params, allow_unused=True)


def _cos(a, b):
    u = torch.cat([g.double().flatten() for g in a])
    v = torch.cat([g.double().flatten() for g in b])
    return float(u @ v / (u.norm() * v.norm()))


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A sigmoid run stopped after epoch 1 (its checkpoint kept) and resumed to epoch 2."""
    out = tmp_path_factory.mktemp("diag")
    args = [*SMALL, "op=sigmoid", "trainer.max_epochs=1"]
    config = compose_config(args, out)
    run(config, out, "sigmoid")
    first = out / "epoch1.ckpt"
    shutil.copy(out / "checkpoints" / "last.ckpt", first)
    config = compose_config([*SMALL, "op=sigmoid", "trainer.max_epochs=2"], out)
    config["ckpt_path"] = str(first)
    metrics = run(config, out, "sigmoid")
    return config, metrics, first, out / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_diagnostics_recomputed_from_the_checkpoints_and_the_probe(two_epochs):
    config, metrics, first, last = two_epochs
    x, y = _probe(config)
    before = HardOpModule.load_from_checkpoint(first, map_location="cpu").eval()
    after = HardOpModule.load_from_checkpoint(last, map_location="cpu").eval()
    names = metrics["diagnostic_layers"]
    assert names == {"features.3": "sign", "features.7": "step", "bottleneck.2": "argmax"}
    curves = metrics["diagnostics"]
    assert all(len(c) == 2 for c in curves.values())  # one value per validation, both epochs
    old, new = _inputs(before, x), _inputs(after, x)
    modules = dict(after.net.named_modules())
    for name in names:
        module = modules[name]
        v = new[module]
        if name == "bottleneck.2":  # softmax: diagonal p(1 - p), peak 1/4
            p = torch.softmax(v, -1)
            dead = (4 * p * (1 - p) < 1e-3).double().mean()
        else:
            dead = (_sigmoid_ratio(v, 4.0) < 1e-3).double().mean()
        assert curves[f"{name}/dead_fraction"][1] == pytest.approx(float(dead), abs=1e-6)
        earlier = old[dict(before.net.named_modules())[name]]
        flips = _decisions(module, earlier) != _decisions(module, v)
        assert curves[f"{name}/flip_ratio"][0] is None
        assert curves[f"{name}/flip_ratio"][1] == pytest.approx(float(flips.double().mean()))
    # The cosine: the same checkpoint's parameter gradients, hard and with every op relaxed.
    relaxed = HardOpModule.load_from_checkpoint(last, map_location="cpu").eval()
    surrogate.swap(relaxed, step=("sigmoid", True), sign=("sigmoid", True),
                   argmax=("softmax", True))  # fmt: skip
    own, own_relaxed = _own_params(after), _own_params(relaxed)
    for name in names:
        module, twin = modules[name], dict(relaxed.net.named_modules())[name]
        hard = _grads(after, x, y, own[module])
        soft = _grads(relaxed, x, y, own_relaxed[twin])
        assert curves[f"{name}/grad_cosine"][1] == pytest.approx(_cos(hard, soft), abs=1e-5)
    every = _cos(_grads(after, x, y, list(after.parameters())),
                 _grads(relaxed, x, y, list(relaxed.parameters())))  # fmt: skip
    assert curves["network/grad_cosine"][1] == pytest.approx(every, abs=1e-5)


@pytest.mark.slow
def test_gradient_norm_is_the_gradient_reaching_the_layer_input(two_epochs):
    config, metrics, _, last = two_epochs
    x, y = _probe(config)
    model = HardOpModule.load_from_checkpoint(last, map_location="cpu").eval()
    kept = {}

    def keep(module, args, out):
        args[0].retain_grad()
        kept[module] = args[0]

    hooks = [m.register_forward_hook(keep) for m in model.modules()
             if isinstance(m, surrogate.HardOp)]  # fmt: skip
    F.cross_entropy(model(x), y).backward()
    for hook in hooks:
        hook.remove()
    modules = dict(model.net.named_modules())
    for name in metrics["diagnostic_layers"]:
        norm = kept[modules[name]].grad.double().norm()
        assert metrics["diagnostics"][f"{name}/grad_norm"][1] == pytest.approx(float(norm))


@pytest.mark.slow
def test_diagnostics_reach_the_csv_log(two_epochs):
    config, metrics, _, _ = two_epochs
    out = config["paths"]["output_dir"]
    rows = np.genfromtxt(f"{out}/csv/resumed_1/metrics.csv", delimiter=",", names=True)
    column = rows["diagfeatures3dead_fraction"]  # numpy drops the slashes and dots from the header
    assert column[~np.isnan(column)].tolist() == pytest.approx(
        metrics["diagnostics"]["features.3/dead_fraction"][1:]
    )


def _net(estimator_name):
    torch.manual_seed(0)
    from surrogate.training.models.cnn import HardCNN

    net = HardCNN((1, 8, 8), 10, channels=[4, 8], activations=["sign", "step"], groups=4,
                  categories=4)  # fmt: skip
    surrogate.swap(net, step=estimator_name, sign=estimator_name, argmax="softmax")
    return net


@pytest.mark.slow
def test_every_nth_validation_is_measured_and_the_curves_keep_one_entry_per_validation(tmp_path):
    args = [*SMALL, "op=atan", "trainer.max_epochs=5", "callbacks.diagnostics_every=2"]
    metrics = run(compose_config(args, tmp_path), tmp_path, "atan")
    dead = metrics["diagnostics"]["features.3/dead_fraction"]
    flips = metrics["diagnostics"]["features.3/flip_ratio"]
    assert len(dead) == len(metrics["val_acc"]) == 5
    assert [v is None for v in dead] == [False, True, False, True, False]
    assert [v is None for v in flips] == [True, True, False, True, False]  # measured to measured


@pytest.mark.parametrize(("name", "dead"), [("ste", 0.0), ("none", 1.0)])
def test_straight_through_is_never_dead_and_none_always(name, dead):
    values, _ = measure(_net(name), torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    assert values["features.3/dead_fraction"] == dead
    assert values["features.7/dead_fraction"] == dead


def test_a_clipped_estimator_is_dead_exactly_outside_its_window():
    net = _net("clipped_ste")
    x = torch.randn(16, 1, 8, 8)
    values, _ = measure(net, x, torch.randint(0, 10, (16,)))
    inputs = _inputs(net.eval(), x)
    v = inputs[net.features[3]]
    assert values["features.3/dead_fraction"] == pytest.approx(float((v.abs() > 1).double().mean()))


def test_measuring_leaves_the_network_and_the_random_state_as_they_were():
    net = _net("clipped_ste").train()
    net.bottleneck[2].estimator = surrogate.estimator("perturbed")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    rng = torch.get_rng_state()
    measure(net, x, y)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert net.training and all(m.training for m in net.modules())
    assert net.features[3].estimator == surrogate.estimator("clipped_ste")
    assert not any(m.relaxed for m in net.modules() if isinstance(m, surrogate.HardOp))
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.slow
def test_diagnostics_do_not_change_the_run_and_can_be_switched_off(tmp_path):
    base = [*SMALL, "op=perturbed", "trainer.max_epochs=2"]
    on = run(compose_config(base, tmp_path / "on"), tmp_path / "on", "perturbed")
    off_args = [*base, "callbacks.diagnostics=false"]
    off = run(compose_config(off_args, tmp_path / "off"), tmp_path / "off", "perturbed")
    assert "diagnostics" in on and "diagnostics" not in off
    assert not (tmp_path / "off" / "diagnostics.json").exists()
    for key in ("val_acc", "train_loss", "test_acc"):
        assert on[key] == off[key]


@pytest.mark.slow
def test_tensorboard_logs_the_diagnostics(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = [*SMALL, "op=atan", "trainer.max_epochs=1", "logger=tensorboard"]
    metrics = run(compose_config(args, tmp_path), tmp_path, "atan")
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    scalars = events.Tags()["scalars"]
    assert "diag/features.7/grad_cosine" in scalars
    (point,) = events.Scalars("diag/features.7/grad_cosine")
    assert point.value == pytest.approx(
        metrics["diagnostics"]["features.7/grad_cosine"][0], rel=1e-6
    )


def test_tensorboard_refused_where_it_is_not_installed(tmp_path, monkeypatch):
    import importlib.util

    config = compose_config(["logger=tensorboard"], tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name.startswith("tensorboard") else real(name, *a),
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"logger.tensorboard.*\[tensorboard\].*logger=csv"):
        validate(config, files=False)
    assert not any(tmp_path.iterdir())


def test_probe_size_is_checked(tmp_path):
    config = compose_config(["callbacks.probe_size=0"], tmp_path)
    with pytest.raises(ValueError, match=r"callbacks.probe_size: must be an integer >= 1, got 0"):
        validate(config, files=False)


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_argmax_dead_fraction_is_the_softmax_diagonal_below_its_peak(tau):
    from surrogate.training.callbacks.diagnostics import Layer, dead_fraction

    torch.manual_seed(1)
    logits = torch.randn(200, 6, dtype=torch.float64) * torch.logspace(-1, 2, 200).view(-1, 1)
    layer = Layer("argmax", surrogate.ArgMax("softmax", tau=tau))
    p = torch.softmax(logits / tau, -1)
    expected = (p * (1 - p) / tau < 1e-3 / (4 * tau)).double().mean()
    assert 0.2 < expected < 0.9  # the logits span live and saturated rows
    assert dead_fraction(layer, logits) == pytest.approx(float(expected))

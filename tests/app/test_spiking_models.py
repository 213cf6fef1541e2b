"""model=csnn and model=rsnn: their layout, encodings and readouts against references written here,
their float twin, the estimator every neuron takes from the op config, and the firing rates a run
records."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import surrogate
from surrogate.training.config.validate import validate
from surrogate.training.data import DataShape
from surrogate.training.models import build_model, data_scale
from surrogate.training.models.csnn import SpikingCNN, leaky_readout
from surrogate.training.models.rsnn import SpikingRNN
from surrogate.training.run import run
from tests.app.helpers import FAST, compose_config

DIGITS = DataShape((1, 8, 8), 10)


def test_direct_encoding_computes_the_first_convolution_once_with_the_same_result():
    torch.manual_seed(0)
    net = SpikingCNN((1, 8, 8), 10, (4, 6), time_steps=5)
    seen = []
    net.convs[0].register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    x = torch.randn(3, 1, 8, 8)
    out = net(x)
    assert seen == [3]  # the batch once, not T x batch
    # the reference: the image repeated T times, every layer run on each step
    steps = x.unsqueeze(0).expand(5, -1, -1, -1, -1)
    h = net.norms[0](net.convs[0](steps.flatten(0, 1))).unflatten(0, (5, 3))
    h = net.neurons[0](h)
    h = nn.functional.max_pool2d(h.flatten(0, 1), 2, ceil_mode=True)
    h = net.neurons[1](net.norms[1](net.convs[1](h)).unflatten(0, (5, 3)))
    h = nn.functional.max_pool2d(h.flatten(0, 1), 2, ceil_mode=True).unflatten(0, (5, 3))
    torch.testing.assert_close(out, net.head(h.flatten(2)), rtol=1e-5, atol=1e-6)


def test_rate_encoding_shows_binary_spikes_at_the_pixels_rate_and_reads_intensities(tmp_path):
    torch.manual_seed(0)
    net = SpikingCNN((1, 8, 8), 10, (4,), time_steps=400, encoding="rate")
    seen = []
    net.convs[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = torch.rand(2, 1, 8, 8)
    net(x)
    spikes = seen[0].unflatten(0, (400, 2))
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert float((spikes.mean(0) - x).abs().max()) < 0.1  # 400 draws: 4.5 sigma at p = 1/2
    config = compose_config(["model=csnn", "model.encoding=rate"], tmp_path)
    assert data_scale(config["model"], "standard") == "unit"
    assert data_scale(compose_config(["model=csnn"], tmp_path)["model"], "standard") == "standard"


def test_the_membrane_readout_is_the_mean_of_a_leaky_integrator():
    currents = np.random.default_rng(0).normal(size=(7, 3, 4))
    m, total = np.zeros((3, 4)), np.zeros((3, 4))
    for current in currents:
        m = 0.6 * m + current
        total += m
    got = leaky_readout(torch.from_numpy(currents), 0.6)
    np.testing.assert_allclose(got.numpy(), total / 7, rtol=1e-12)


def test_the_spike_readout_counts_a_lif_layers_spikes():
    torch.manual_seed(0)
    net = SpikingCNN((1, 8, 8), 10, (4,), time_steps=6, readout="spikes")
    assert isinstance(net.head.lif, surrogate.LIF)
    out = net(torch.randn(5, 1, 8, 8) * 3)
    assert torch.equal(out, out.round()) and out.min() >= 0 and out.max() <= 6


def test_op_float_builds_the_csnn_as_a_relu_network_of_the_same_shape(tmp_path):
    float_net = build_model(compose_config(["model=csnn", "op=float"], tmp_path)["model"], DIGITS)
    hard = build_model(compose_config(["model=csnn"], tmp_path)["model"], DIGITS)
    assert not any(isinstance(m, surrogate.LIF) for m in float_net.modules())
    assert any(isinstance(m, nn.ReLU) for m in float_net.modules())
    assert [p.shape for p in float_net.parameters()] == [p.shape for p in hard.parameters()]


@pytest.mark.parametrize(
    ("neuron", "kind"),
    [("lif", surrogate.LIF), ("recurrent", surrogate.RecurrentLIF), ("alif", surrogate.ALIF)],
)
def test_rsnn_builds_the_neuron_asked_and_reads_sequences_batch_first(neuron, kind):
    torch.manual_seed(0)
    net = SpikingRNN((30, 12), 5, (16, 8), neuron=neuron)
    cells = [m for m in net.modules() if isinstance(m, surrogate.LIF) and m is not net.head.lif]
    assert [type(c) for c in cells] == [kind, kind]
    x = (torch.rand(4, 30, 12) < 0.2).float()
    assert net(x).shape == (4, 5)
    # the same examples in another batch order give the same logits: time is dim 1
    order = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(net(x[order]), net(x)[order])


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["model=rsnn", "model.neuron=gru"], "unknown 'gru'; choose one of: lif, recurrent, alif"),
        (["model=csnn", "model.encoding=poisson"], "unknown 'poisson'; choose one of: direct"),
        (["model=csnn", "model.readout=max"], "unknown 'max'; choose one of: membrane, spikes"),
        (["model=csnn", "model.beta=1.5"], "model.beta"),
        (["model=csnn", "model.time_steps=0"], "model.time_steps"),
        (["model=rsnn", "model.rho=1.0"], "model.rho"),
        (["model=rsnn"], "model=rsnn takes sequences .* this data's inputs are 1x8x8"),
    ],
)
def test_bad_spiking_configs_are_refused_before_any_work(tmp_path, overrides, words):
    with pytest.raises(ValueError, match=words):
        validate(compose_config(overrides, tmp_path))


def test_a_csnn_run_gives_every_neuron_the_op_estimator_and_records_firing_rates(tmp_path):
    overrides = ["model=csnn", "op=fast_sigmoid", *FAST, "trainer.max_epochs=2",
                 "callbacks.diagnostics_every=1"]  # fmt: skip
    metrics = run(compose_config(overrides, tmp_path), tmp_path / "run", "csnn")
    layers = metrics["layer_estimators"]
    assert set(layers) == {"neurons.0.spike", "neurons.1.spike"}
    assert {layer["name"] for layer in layers.values()} == {"fast_sigmoid"}
    rates = metrics["diagnostics"]["neurons.1.spike/firing_rate"]
    assert len(rates) == 2 and all(0 < r < 1 for r in rates)
    assert 0 <= metrics["test_acc"] <= 1


def test_an_rsnn_run_on_randman_trains_every_neuron_kind_through_the_op_estimator(tmp_path):
    overrides = ["model=rsnn", "data=randman", "data.samples_per_class=30", "model.neuron=alif",
                 "op=atan", "op.peak=4", *FAST, "callbacks.diagnostics_every=1"]  # fmt: skip
    metrics = run(compose_config(overrides, tmp_path), tmp_path / "run", "rsnn")
    layer = metrics["layer_estimators"]["layers.1.spike"]
    assert (layer["name"], layer["alpha"]) == ("atan", 8.0)  # op.peak=4: the bump 4 times as tall
    assert 0 <= metrics["diagnostics"]["layers.1.spike/firing_rate"][-1] <= 1


def test_a_schedule_anneals_every_neurons_spike(tmp_path):
    overrides = ["model=csnn", "op=sigmoid", "schedule=anneal_beta", *FAST]
    metrics = run(compose_config(overrides, tmp_path), tmp_path / "run", "anneal")
    layers = metrics["layer_estimators"]
    assert set(layers) == {"neurons.0.spike", "neurons.1.spike"}
    assert {layer["beta"] for layer in layers.values()} == {16.0}  # the schedule's end

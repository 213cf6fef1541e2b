"""model=cat_vae on task=elbo: the negative ELBO against a float64 reference, the latent draw
against the distribution it samples, the estimator's gradient at the draw, binarization, pixel
intensities in [0, 1], the checks before any work, and a run end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import surrogate
from surrogate.training.config.validate import validate
from surrogate.training.data import DataError, DataSet, DataShape, Part
from surrogate.training.data.base import check_scale
from surrogate.training.data.datamodule import load_splits, split
from surrogate.training.models.cat_vae import CategoricalVAE
from surrogate.training.run import run
from surrogate.training.tasks.elbo import LatentOutput, negative_elbo
from tests.app.helpers import FAST, ROOT, compose_config, train_cli


def reference_nelbo(recon_logits, target, latent_logits) -> np.ndarray:
    """−log Bernoulli(target; sigmoid(recon)) summed over pixels plus Σ KL(q ‖ uniform), written
    from the definitions in float64."""
    r = recon_logits.double().numpy().reshape(len(target), -1)
    t = target.double().numpy().reshape(len(target), -1)
    p = 1 / (1 + np.exp(-r))
    nll = -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(1)
    z = latent_logits.double().numpy()
    q = np.exp(z - z.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    k = z.shape[-1]
    kl = (q * np.log(q / (1 / k))).sum((-1, -2))
    return nll + kl


def test_the_negative_elbo_matches_a_float64_reference():
    g = torch.Generator().manual_seed(0)
    recon = torch.randn(5, 1, 4, 4, generator=g) * 3
    target = (torch.rand(5, 1, 4, 4, generator=g) < 0.5).float()
    logits = torch.randn(5, 6, 3, generator=g) * 2
    got = negative_elbo(LatentOutput(recon, logits, target))
    assert got.shape == (5,)
    np.testing.assert_allclose(got.numpy(), reference_nelbo(recon, target, logits), rtol=1e-5)


def test_the_kl_term_is_zero_at_the_uniform_posterior_and_log_k_at_a_certain_one():
    recon, target = torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
    bce = math.log(2)  # sigmoid(0) = 1/2
    uniform = negative_elbo(LatentOutput(recon, torch.zeros(1, 4, 8), target))
    certain = negative_elbo(LatentOutput(recon, torch.tensor([[[1e4] + [0.0] * 7] * 4]), target))
    assert uniform.item() == pytest.approx(bce, abs=1e-6)
    assert certain.item() == pytest.approx(bce + 4 * math.log(8), abs=1e-4)


def vae(estimator: str = "ste", relaxed: bool = False, **kwargs) -> CategoricalVAE:
    net = CategoricalVAE((1, 4, 4), latents=2, categories=3, hidden=[8], **kwargs)
    surrogate.swap(net, argmax={"name": estimator, "relaxed": relaxed})
    return net


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", ["none", "ste", "softmax", "sparsemax", "gumbel", "reinmax"])
def test_each_draw_is_a_sample_of_the_posterior(name, training):
    """Frequencies of many draws against softmax(logits): a network that forgot to add the noise
    (a plain argmax) or added it twice (a sampling estimator's noise on top of its own) fails."""
    net = vae(name).train(training)
    logits = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]]).expand(20000, 2, 3)
    torch.manual_seed(0)
    z = net.draw(logits, None if training else torch.Generator().manual_seed(1))
    assert set(z.unique().tolist()) == {0.0, 1.0} and (z.sum(-1) == 1).all()
    np.testing.assert_allclose(z.mean(0).numpy(), logits[0].softmax(-1).numpy(), atol=0.015)


def test_eval_draws_the_same_latents_for_the_same_batch():
    net = vae("gumbel").eval()
    x = torch.rand(6, 1, 4, 4)
    a, b = net(x), net(x)
    assert torch.equal(a.recon_logits, b.recon_logits) and torch.equal(a.target, b.target)


@pytest.mark.parametrize(("name", "scale"), [("ste", 1.0), ("none", 0.0)])
def test_the_estimator_s_backward_reaches_the_logits_at_the_draw(name, scale):
    """``ste`` passes the gradient of a loss linear in z to the logits unchanged, ``none`` not
    at all, although the network perturbed the logits before the argmax."""
    net = vae(name).train()
    logits = torch.randn(4, 2, 3, requires_grad=True)
    c = torch.randn(4, 2, 3)
    (net.draw(logits, None) * c).sum().backward()
    torch.testing.assert_close(logits.grad, c * scale)


def test_relaxed_draws_are_concrete_samples():
    """op=relaxed: the softmax of the perturbed logits, on the simplex, not one-hot."""
    net = vae("softmax", relaxed=True).train()
    z = net.draw(torch.zeros(100, 2, 3), None)
    torch.testing.assert_close(z.sum(-1), torch.ones(100, 2))
    assert ((z > 0.01) & (z < 0.99)).any()


def test_binarization_threshold_and_dynamic():
    x = torch.rand(2000, 1, 4, 4)
    threshold = vae(binarize="threshold").eval()
    assert torch.equal(threshold(x).target, (x > 0.5).float())
    dynamic = vae(binarize="dynamic").train()
    torch.manual_seed(0)
    target = dynamic(x).target
    assert set(target.unique().tolist()) == {0.0, 1.0}
    # Bernoulli(x): the mean of target - x is 0 within a few standard errors
    assert abs((target - x).mean().item()) < 4 * 0.5 / math.sqrt(x.numel())


def test_unit_scale_gives_the_pixel_intensities_exactly():
    splits = load_splits("digits", "unused", 0.15, 0.15, seed=0, scale="unit")
    values = torch.cat([splits[s].tensors[0].flatten() for s in ("train", "val", "test")])
    expected = np.sort(load_digits().images.astype(np.float32).ravel() / np.float32(16))
    np.testing.assert_array_equal(np.sort(values.numpy()), expected)


def test_values_beyond_the_pixel_range_are_refused_naming_the_file():
    shape = DataShape((1, 2, 2), 2)
    x = np.zeros((8, 1, 2, 2), np.float32)
    x[3, 0, 1, 1] = 300
    part = Part(x, np.arange(8) % 2, "images.idx", "labels.idx")
    with pytest.raises(DataError, match=r"images\.idx: values from 0 to 300.*\[0, 255\]"):
        split("toy", shape, part, part, 0.25, 0.0, 0, pixel_max=255.0)


def test_a_data_set_without_a_pixel_range_is_refused_for_the_elbo():
    class Sequences(DataSet):
        name = "sequences"

    with pytest.raises(ValueError, match="sequences declares no pixel_max"):
        check_scale(Sequences(), "unit")
    with pytest.raises(ValueError, match="unknown 'z'; choose one of: standard, unit"):
        check_scale(Sequences(), "z")


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model.latents=0", "model.latents"),
        ("model.categories=1", "model.categories"),
        ("model.hidden=[64,0]", "model.hidden"),
        ("model.binarize=otsu", "unknown 'otsu'; choose one of: dynamic, threshold"),
        ("optimized_metric=best_val_acc", "choose one of: best_val_nelbo, test_nelbo"),
    ],
)
def test_bad_values_are_refused_before_any_work(tmp_path, override, words):
    config = compose_config(["model=cat_vae", override], tmp_path)
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        validate(config)


def test_a_bad_value_on_the_command_line_writes_no_folder(tmp_path):
    result = train_cli("model=cat_vae", "model.categories=1", cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "model.categories" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_model_cat_vae_selects_the_elbo_task_and_keeps_a_chosen_one(tmp_path):
    assert compose_config(["model=cat_vae"], tmp_path)["task"]["name"] == "elbo"
    assert compose_config(["model=cnn"], tmp_path)["task"]["name"] == "classification"


def test_a_run_records_the_nelbo_lower_is_better_and_draws_its_samples(tmp_path):
    overrides = ["model=cat_vae", "op=gumbel", *FAST, "trainer.max_epochs=3"]
    config = compose_config(overrides, tmp_path)
    metrics = run(config, tmp_path / "run", "gumbel")
    assert metrics["headline"] == {"metric": "test_nelbo", "higher_is_better": False}
    curve = metrics["val_nelbo"]
    assert metrics["best_val_nelbo"] == min(curve) and curve[-1] < curve[0]
    assert 0 < metrics["test_nelbo"] < 64 * math.log(2) + 32 * math.log(8)
    assert "argmax/grad_cosine" in metrics["diagnostics"]
    png = (tmp_path / "run" / "samples.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test_nelbo"] == metrics["test_nelbo"]


def test_the_experiment_composes_every_argmax_estimator_and_the_reference():
    text = (ROOT / "configs" / "experiment" / "compare_vae.yaml").read_text()
    swept = next(line for line in text.splitlines() if line.strip().startswith("op:"))
    ops = swept.split(":", 1)[1].split("#")[0].strip().split(",")
    assert set(surrogate.available("argmax")) <= set(ops) and "relaxed" in ops

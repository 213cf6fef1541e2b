"""The problems the report measures estimators on, each a batch of logits and a loss f(z).

- ``toy``: a fixed quadratic f(z) = ‖W·vec(z) − t‖² of n = 4 latents of K = 4 categories
  (256 outcomes), random logits for 8 examples (seeded): nonlinear in z, so no estimator is exact.
- ``vae``: the reconstruction term −log p(x | z) of a categorical VAE (4 latents of 8 categories,
  4,096 outcomes) trained for ``epochs`` on scikit-learn's digits with straight-through Gumbel,
  on a batch of test images: the gradient a VAE's encoder logits receive, exactly enumerable.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

import surrogate
from surrogate.training.data.datamodule import load_splits
from surrogate.training.gradients.quality import Loss
from surrogate.training.models.cat_vae import CategoricalVAE
from surrogate.training.tasks.elbo import negative_elbo


class Problem(NamedTuple):
    name: str
    description: str
    logits: torch.Tensor  # (B, n, K)
    loss: Loss


def toy(seed: int = 0) -> Problem:
    generator = torch.Generator().manual_seed(seed)
    latents, categories, examples = 4, 4, 8
    weight = torch.randn(latents * categories, 6, generator=generator, dtype=torch.float64)
    target = torch.randn(6, generator=generator, dtype=torch.float64)
    logits = torch.randn(examples, latents, categories, generator=generator)

    def loss(z: torch.Tensor) -> torch.Tensor:
        return ((z.double().flatten(1) @ weight - target) ** 2).sum(1)

    description = f"{examples} examples, {latents} x {categories}, f(z) = |W vec(z) - t|^2"
    return Problem("toy", description, logits, loss)


def vae(epochs: int = 30, batch: int = 32, seed: int = 0) -> Problem:
    torch.manual_seed(seed)
    splits = load_splits("digits", "unused", 0.15, 0.15, seed=0, scale="unit")
    net = CategoricalVAE((1, 8, 8), 4, 8, hidden=[256, 128], binarize="threshold")
    surrogate.swap(net, argmax="gumbel")
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images = splits["train"].tensors[0]
    for _ in range(epochs):
        for chunk in images[torch.randperm(len(images))].split(64):
            optimizer.zero_grad()
            negative_elbo(net.train()(chunk)).mean().backward()
            optimizer.step()
    net.eval().requires_grad_(False)
    target = net.binarized(splits["test"].tensors[0][:batch], None)
    logits = net.encode(target)

    def loss(z: torch.Tensor) -> torch.Tensor:
        recon = net.decode(z.float())
        bce = F.binary_cross_entropy_with_logits(recon, target, reduction="none")
        return bce.flatten(1).sum(1)

    description = (
        f"{batch} test images of digits, 4 x 8, f(z) = -log p(x|z) of a VAE trained {epochs} "
        "epochs (gumbel)"
    )
    return Problem("vae", description, logits, loss)

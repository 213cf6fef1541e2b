"""``model=cat_vae``: a variational autoencoder with categorical latents (Jang, Gu & Poole 2017,
arXiv:1611.01144; Maddison, Mnih & Teh 2017, arXiv:1611.00712), trained on ``task=elbo``.

    image in [0, 1] -> binarize -> MLP encoder -> (latents x categories) logits
        -> one-hot z, a draw from q = softmax(logits) per latent (``surrogate.ArgMax``)
        -> MLP decoder -> Bernoulli logits of the binarized image

Every forward draws z from q: Gumbel noise G is added to the logits and z = one-hot(argmax(logits
+ G)), an exact sample (the Gumbel-max trick). The ArgMax module gives it the op config's argmax
estimator: ``gumbel`` and ``reinmax`` draw the noise themselves while training; for every other
estimator the network adds it, so each estimator's backward is taken at the sample it made (``ste``
passes the gradient to the logits, ``softmax`` is then straight-through Gumbel-softmax at τ).
Relaxed (``op=relaxed``: the softmax of the perturbed logits) it is the Concrete relaxation. In
eval the noise comes from a generator seeded at 0 per batch, so validation and test draw the same
z for the same batch.

Binarization (``binarize``): ``dynamic`` draws each pixel from Bernoulli(intensity) at every
training step (seeded per batch in eval), ``threshold`` keeps pixels above 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from surrogate import ArgMax
from surrogate.training.models import ModelConfig, register_model
from surrogate.training.ranges import Range
from surrogate.training.tasks.elbo import LatentOutput

BINARIZATIONS = ("dynamic", "threshold")
EVAL_SEED = 0


@dataclass
class CatVAEConfig(ModelConfig):
    """The keys of ``configs/model/cat_vae.yaml``."""

    latents: int = field(default=MISSING, metadata={"range": Range(1, integer=True)})
    categories: int = field(default=MISSING, metadata={"range": Range(2, integer=True)})
    hidden: list[int] = field(default=MISSING, metadata={"range": Range(1, integer=True)})
    binarize: str = MISSING


def mlp(widths: Sequence[int]) -> nn.Sequential:
    """Linear layers of ``widths`` with a ReLU between two of them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers)


def gumbel_noise(like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise −log(−log U) of ``like``'s shape, U kept away from 0."""
    u = torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    return -torch.log(-torch.log(u.clamp_(min=torch.finfo(like.dtype).tiny)))


class CategoricalVAE(nn.Module):
    """A VAE over images of ``input_shape`` (C, H, W) with ``latents`` categorical latents of
    ``categories`` each, MLPs of ``hidden`` widths (the decoder mirrors the encoder)."""

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        latents: int = 32,
        categories: int = 8,
        hidden: Sequence[int] = (512, 256),
        binarize: str = "dynamic",
    ):
        super().__init__()
        check_network(input_shape, latents, categories, hidden, binarize)
        self.image_shape = tuple(input_shape)
        self.latents, self.categories, self.binarize = latents, categories, binarize
        pixels, code = math.prod(input_shape), latents * categories
        self.encoder = mlp([pixels, *hidden, code])
        self.decoder = mlp([code, *reversed(hidden), pixels])
        self.argmax = ArgMax(dim=-1)

    def binarized(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.binarize == "threshold":
            return (x > 0.5).to(x.dtype)
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return (u < x).to(x.dtype)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """The logits of q: (B, latents, categories)."""
        return self.encoder(image.flatten(1)).unflatten(1, (self.latents, self.categories))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of each pixel, (B, C, H, W), from one-hot latents z."""
        return self.decoder(z.flatten(1)).unflatten(1, self.image_shape)

    def draw(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One-hot z drawn from softmax(logits), through the ArgMax module's estimator."""
        if self.training and self.argmax.estimator.stochastic:
            return self.argmax(logits)  # the estimator draws the noise itself
        return self.argmax(logits + gumbel_noise(logits, generator))

    def forward(self, x: torch.Tensor) -> LatentOutput:
        generator = None
        if not self.training:
            generator = torch.Generator(device=x.device).manual_seed(EVAL_SEED)
        target = self.binarized(x, generator)
        logits = self.encode(target)
        return LatentOutput(self.decode(self.draw(logits, generator)), logits, target)


def check_network(input_shape, latents, categories, hidden, binarize) -> None:
    """Refuse what the VAE cannot be built from, naming the value and the valid choices."""
    if len(input_shape) != 3:
        raise ValueError(
            f"model=cat_vae: models images (C, H, W); the data are sequences of shape "
            f"{tuple(input_shape)}; choose an image data set"
        )
    if latents < 1:
        raise ValueError(f"model.latents: must be an integer >= 1, got {latents!r}")
    if categories < 2:
        raise ValueError(f"model.categories: must be an integer >= 2, got {categories!r}")
    if any(width < 1 for width in hidden):
        raise ValueError(f"model.hidden: every width must be an integer >= 1, got {list(hidden)}")
    if binarize not in BINARIZATIONS:
        raise ValueError(
            f"model.binarize: unknown {binarize!r}; choose one of: {', '.join(BINARIZATIONS)}"
        )


@register_model("cat_vae", CatVAEConfig)
def build_cat_vae(config: CatVAEConfig, shape) -> CategoricalVAE:
    return CategoricalVAE(
        shape.input_shape, config.latents, config.categories, config.hidden, config.binarize
    )

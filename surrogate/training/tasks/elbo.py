"""``task=elbo``: a latent-variable model of binarized images, judged by its negative evidence
lower bound in nats per image (``test_nelbo``, lower is better).

The network returns a ``LatentOutput``: the decoder's Bernoulli logits, the encoder's logits of
each categorical latent and the binarized image it was given. With q = softmax(logits) per latent
of K categories and the uniform prior p(z) = 1/K (Jang, Gu & Poole 2017, arXiv:1611.01144; Maddison
et al. 2017, arXiv:1611.00712),

    −ELBO = −log p(x | z) + Σ_latents KL(q ‖ uniform),   z one draw from q,
    −log p(x | z) = Σ_pixels BCE(decoder logits, x),       KL(q ‖ uniform) = Σ_k q_k log(q_k K).

The data reach the network as pixel intensities in [0, 1] (``scale = "unit"``); the network
binarizes them. Labels are read and ignored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from surrogate.training.atomic import write_atomic
from surrogate.training.tasks import Task, register_task

FIGURE = "samples.png"  # written into each run's folder
SHOWN = 16  # images per row of the figure


class LatentOutput(NamedTuple):
    """What a network trained on ``task=elbo`` returns for a batch of images."""

    recon_logits: torch.Tensor  # (B, C, H, W) Bernoulli logits of each pixel
    latent_logits: torch.Tensor  # (B, latents, categories): the encoder's logits of q
    target: torch.Tensor  # (B, C, H, W) the binarized image the likelihood is of


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) ‖ uniform) summed over the latents: (B, latents, K) -> (B,) nats."""
    log_q = F.log_softmax(logits, dim=-1)
    kl = (log_q.exp() * (log_q + math.log(logits.shape[-1]))).sum(-1)
    return kl.flatten(1).sum(1)


def negative_elbo(output: LatentOutput) -> torch.Tensor:
    """Each image's −ELBO in nats: (B,)."""
    recon = F.binary_cross_entropy_with_logits(output.recon_logits, output.target, reduction="none")
    return recon.flatten(1).sum(1) + kl_to_uniform(output.latent_logits)


@register_task
class ELBO(Task):
    name = "elbo"
    metric = "nelbo"
    higher_is_better = False
    scale = "unit"

    def loss(self, output: LatentOutput, target: Any) -> torch.Tensor:
        return negative_elbo(output).mean()

    def make_metric(self):
        from torchmetrics import MeanMetric

        return MeanMetric()

    def update(self, metric, output: LatentOutput, target: Any) -> None:
        metric.update(negative_elbo(output))

    def illustrate(self, net: torch.nn.Module, batch: Any, output_dir: Path) -> None:
        """``samples.png``: test images as binarized, their reconstructions (Bernoulli means) and
        images decoded from latents drawn from the uniform prior (seeded)."""
        images = batch[0][:SHOWN].to(next(net.parameters()).device)
        output = net(images)
        generator = torch.Generator().manual_seed(0)
        codes = torch.randint(net.categories, (SHOWN, net.latents), generator=generator)
        prior = F.one_hot(codes, net.categories).to(images)
        rows = {
            "binarized test images": output.target,
            "reconstructions": output.recon_logits.sigmoid(),
            "samples from the prior": net.decode(prior).sigmoid(),
        }
        _save_grid(rows, output_dir / FIGURE)


def _save_grid(rows: dict[str, torch.Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns * 0.8, len(rows) * 1.0))
    for r, (title, images) in enumerate(rows.items()):
        axes[r][0].set_title(title, loc="left", fontsize=8)
        for c in range(columns):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                image = images[c].detach().float().cpu()
                gray = image.shape[0] == 1
                shown = image[0] if gray else image.permute(1, 2, 0)
                ax.imshow(shown.clamp(0, 1).numpy(), cmap="gray" if gray else None, vmin=0, vmax=1)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)

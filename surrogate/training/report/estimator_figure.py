"""One figure of every estimator at its defaults: what each gives as the backward of step, sign and
round, and what each argmax estimator sends back to three logits.

    python -m surrogate.training.report.estimator_figure [PATH]   # default: estimators.png

Every curve is measured through the library's public ops, not drawn from formulas: for a scalar
estimator, the gradient of ``sum(op(x))`` on x in [-2.5, 2.5] (step: p(x), sign: 2·p(x), round:
p at the distance to the nearest boundary k + ½); for an argmax estimator, the gradient with
respect to the logits (2, 1, 0.5) of the chosen one-hot's first entry, ``onehot(x)[0]``, averaged
over 2,000 draws for the sampling estimators (``gumbel``, ``reinmax``, ``perturbed``; seed 0).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

import surrogate
from surrogate.training.atomic import write_atomic

X = torch.linspace(-2.5, 2.5, 1001, dtype=torch.float64)
LOGITS = (2.0, 1.0, 0.5)
DRAWS = 2000
BUMP_OPS = ("step", "sign", "round")  # the ops whose backward is a bump


def scalar_backward(name: str, op: str) -> torch.Tensor:
    """The gradient of ``sum(op(X))`` under estimator ``name`` at its defaults."""
    x = X.clone().requires_grad_()
    getattr(surrogate, op)(x, name).sum().backward()
    return x.grad


def argmax_backward(name: str) -> torch.Tensor:
    """The gradient of ``argmax(LOGITS)[0]`` (one-hot's first entry) with respect to the logits,
    averaged over ``DRAWS`` draws (one suffices for a deterministic estimator)."""
    x = torch.tensor([LOGITS] * DRAWS, dtype=torch.float64, requires_grad=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        surrogate.argmax(x, name, training=True)[:, 0].sum().backward()
    return x.grad.mean(dim=0)


def draw(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scalars = surrogate.available("step")
    argmaxes = surrogate.available("argmax")
    cols = 4
    rows = -(-len(scalars) // cols)
    fig = plt.figure(figsize=(14, 3.1 * (rows + 1)))
    grid = fig.add_gridspec(rows + 1, cols)
    styles = {"step": ("-", "C0"), "sign": ("--", "C3"), "round": (":", "C2")}
    for i, name in enumerate(scalars):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        for op in BUMP_OPS:
            line, color = styles[op]
            ax.plot(X, scalar_backward(name, op), line, color=color, lw=1.6, label=op)
        ax.set_title(name, fontsize=10)
        ax.set_ylim(-0.1, 2.2)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    fig.axes[0].legend(fontsize=8, loc="upper left")
    ax = fig.add_subplot(grid[rows, :])
    width = 0.8 / len(argmaxes)
    for j, name in enumerate(argmaxes):
        grad = argmax_backward(name)
        ax.bar([k + (j - len(argmaxes) / 2 + 0.5) * width for k in range(3)], grad, width,
               label=name)  # fmt: skip
    ax.set_xticks(range(3), [f"logit {k} = {v:g}" for k, v in enumerate(LOGITS)])
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("∂ onehot[0] / ∂ logit")
    ax.set_title(
        "argmax estimators: gradient of the first entry of the one-hot, logits (2, 1, 0.5)"
    )
    ax.legend(fontsize=8, ncol=len(argmaxes))
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(
        "Backward of step (p(x)), sign (2·p(x)) and round (p at the distance to k + ½) for each "
        "scalar estimator at its defaults, x in [-2.5, 2.5]"
    )
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surrogate.training.report.estimator_figure",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("path", type=Path, nargs="?", default=Path("estimators.png"))
    args = parser.parse_args(argv)
    if not args.path.parent.is_dir():
        parser.error(f"no such folder: {args.path.parent}")
    draw(args.path)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

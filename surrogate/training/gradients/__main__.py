"""``python -m surrogate.training.gradients OUT``: measure every argmax estimator against the
exact gradient on the toy and VAE problems and write ``OUT/gradient_quality.{json,md,png}``."""

from __future__ import annotations

import argparse
import time

import torch

import surrogate
from surrogate.training.gradients.problems import toy, vae
from surrogate.training.gradients.quality import compare, exact_gradient
from surrogate.training.gradients.report import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m surrogate.training.gradients")
    parser.add_argument("out", help="folder for gradient_quality.json, .md and .png")
    parser.add_argument("--draws", type=int, default=1000, help="draws per estimator")
    parser.add_argument("--epochs", type=int, default=30, help="the VAE's training epochs")
    args = parser.parse_args(argv)
    if args.draws < 2 or args.epochs < 0:
        parser.error(f"--draws must be >= 2 and --epochs >= 0, got {args.draws}, {args.epochs}")
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = {}
    for problem in (toy(), vae(args.epochs)):
        reference = exact_gradient(problem.logits, problem.loss)
        measured = compare(
            problem.logits, problem.loss, surrogate.available("argmax"), args.draws, reference
        )
        results[problem.name] = {"description": problem.description, "estimators": measured}
    command = "python -m surrogate.training.gradients " + " ".join(argv or [])
    write_report(args.out, results, args.draws, command, time.perf_counter() - start)


if __name__ == "__main__":
    main()

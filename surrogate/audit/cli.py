"""``python -m surrogate.audit MODULE:FACTORY --input 8,1,28,28``: audit a model from the command
line.

``MODULE:FACTORY`` names an importable module and a callable in it (a ``nn.Module`` class or a
function) that builds the model with no arguments; ``--input`` gives the shape of each positional
input, filled with standard normal values from ``--seed``. The report of ``surrogate.audit`` is
printed; the exit status is 0, or 1 with ``--fail-on-dead`` when a parameter is dead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import torch
from torch import nn

from surrogate.audit import audit

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
          "float64": torch.float64}  # fmt: skip


def shape(text: str) -> tuple[int, ...]:
    """``"8,1,28,28"`` -> (8, 1, 28, 28)."""
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"not a shape: {text!r}; write sizes like 8,1,28,28")
    return dims


def load_model(target: str) -> nn.Module:
    """The model that ``MODULE:FACTORY()`` builds; a ValueError says what went wrong."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"model: expected MODULE:FACTORY, e.g. torchvision.models:resnet18, "
                         f"got {target!r}")  # fmt: skip
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model: cannot load {target!r}: {err}") from None
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: {target}() returned {type(model).__name__}, not an nn.Module")
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surrogate.audit",
        description="Find the hard ops of a model and the parameters they cut off.",
    )
    parser.add_argument("model", help="MODULE:FACTORY, a callable that builds the model")
    parser.add_argument(
        "--input",
        type=shape,
        action="append",
        required=True,
        help="shape of a positional input, e.g. 8,1,28,28 (repeat for more)",
    )
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the inputs")
    parser.add_argument("--eval", action="store_true", help="audit the model in eval mode")
    parser.add_argument("--fail-on-dead", action="store_true",
                        help="exit with status 1 when a parameter is dead")  # fmt: skip
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    try:
        model = load_model(args.model)
    except ValueError as err:
        parser.error(str(err))
    model.train(not args.eval).to(DTYPES[args.dtype])
    inputs = [torch.randn(s, dtype=DTYPES[args.dtype]) for s in args.input]
    report = audit(model, *inputs)
    print(report)
    return 1 if args.fail_on_dead and report.dead_parameters else 0


if __name__ == "__main__":
    sys.exit(main())

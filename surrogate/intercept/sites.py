"""Call sites: where in a model's code a torch call is made.

A call site is the module whose code makes the call and the place in that code: the chain of
frames of the model's own code from the call out to the nearest frame whose ``self`` is one of
the model's modules (its ``forward`` or another method of it), each frame as (file, line, bytecode
offset). The offset tells apart two calls on one line (``torch.sign(a) + torch.sign(b)``); the
chain tells apart two calls of one function (``spike_fn(a)``, ``spike_fn(b)``); the module tells
apart two instances of one class. Every step of a loop over time makes its call at the same site.
Frames of torch and of this library (but not of its training app) are skipped, so a call written
as ``x.sign()``, ``torch.sign(x)`` or through ``Intercept`` has the site of the line that wrote it.
A call made outside every module of the model (a loss function) has the innermost frame alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from types import FrameType
from typing import NamedTuple

import torch
from torch import nn

import surrogate

Frame = tuple[str, int, int]  # file, line, bytecode offset
SKIPPED = (os.path.dirname(torch.__file__) + os.sep, os.path.dirname(surrogate.__file__) + os.sep)
MODEL_CODE = (os.path.join(os.path.dirname(surrogate.__file__), "training") + os.sep,)
DEPTH = 64  # frames searched for the module


class Site(NamedTuple):
    """A call site: ``module`` the dotted name of the module that made the call ('' the model
    itself, or no module), ``frames`` the chain from the call outwards."""

    module: str
    frames: tuple[Frame, ...]

    def __str__(self) -> str:
        file, line, _ = self.frames[0] if self.frames else ("?", 0, 0)
        return f"{os.path.basename(file)}:{line}"


def library_frame(filename: str) -> bool:
    return filename.startswith(SKIPPED) and not filename.startswith(MODEL_CODE)


class Modules:
    """The modules of a model by identity: ``names[id(module)]`` its dotted name. Holds the
    modules, so that their ids stay theirs."""

    def __init__(self, model: nn.Module):
        self.held = list(model.modules())
        self.names = {id(m): name for name, m in model.named_modules()}

    def site(self) -> Site:
        """The site of the torch call being handled (this library's and torch's frames skipped)."""
        frame: FrameType | None = sys._getframe(1)
        chain: list[Frame] = []
        for _ in range(DEPTH):
            if frame is None:
                break
            code = frame.f_code
            owner = frame.f_locals.get("self") if "self" in code.co_varnames else None
            name = self.names.get(id(owner)) if owner is not None else None
            if name is not None or not library_frame(code.co_filename):
                chain.append((code.co_filename, frame.f_lineno, frame.f_lasti))
            if name is not None:
                return Site(name, tuple(chain))
            frame = frame.f_back
        return Site("", tuple(chain[:1]))


class Scope:
    """The call sites an intercept acts on, in the model whose ``Modules`` found them."""

    def __init__(self, modules: Modules, sites: Iterable[Site]):
        self.modules = modules
        self.sites = frozenset(sites)

    def covers(self) -> bool:
        """Whether the torch call being handled is at one of the sites."""
        return self.modules.site() in self.sites

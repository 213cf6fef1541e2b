"""Which ``torch.autograd.Function`` is running its forward: a model's own Function defines its
gradient, so the hard ops in its forward are the model's (``surrogate.audit`` lists them as
handled by the model).

A Function's ``forward`` runs as a Python frame called straight from ``Function.apply`` (C code in
recent PyTorch, with no frame of its own), so the frame is told by its code object: the code of
the ``forward`` of some subclass of ``torch.autograd.Function``, old style (``forward(ctx, ...)``)
or new style (``forward(...)`` with ``setup_context``).
"""

from __future__ import annotations

import sys
from types import FrameType

import torch

_FORWARDS: dict = {}  # code of a forward -> its Function class, or None for any other code


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    stack = [cls]
    while stack:
        subs: list[type] = stack.pop().__subclasses__()
        for sub in subs:
            found.append(sub)
            stack.append(sub)
    return found


def function_of(code) -> type | None:
    """The Function subclass whose ``forward`` has this code, if any."""
    if code not in _FORWARDS:
        for cls in _subclasses(torch.autograd.Function):
            forward = cls.__dict__.get("forward")
            forward_code = getattr(getattr(forward, "__func__", forward), "__code__", None)
            if forward_code is not None:
                _FORWARDS.setdefault(forward_code, cls)
        _FORWARDS.setdefault(code, None)
    return _FORWARDS[code]


def running_function() -> type | None:
    """The innermost ``torch.autograd.Function`` whose forward is running, if any."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "forward":
            cls = function_of(frame.f_code)
            if cls is not None:
                return cls
        frame = frame.f_back
    return None

"""Modules that are called like their function: ``surrogate.audit(model, x)``.

``surrogate.audit``, ``surrogate.intercept`` and ``surrogate.swap`` are modules, so that their
submodules import (``import surrogate.audit.cli``) and ``python -m surrogate.audit`` runs, and
each is also the function of its own name: calling the module calls it,

    surrogate.audit(model, x)    is    surrogate.audit.audit(model, x)

A module becomes callable when its ``__class__`` is set to a subclass of ``types.ModuleType`` that
defines ``__call__`` (Python's data model, "Customizing module attribute access"): a module ends
with ``make_callable(__name__)``. ``inspect.signature`` of the module is its function's, and
``help()`` of the module shows the function with the module's docstring.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["CallableModule", "make_callable"]


def namesake(module: types.ModuleType) -> Callable[..., Any]:
    """The function of ``module`` named as its last dotted part (``swap`` in ``surrogate.swap``)."""
    return vars(module)[module.__name__.rpartition(".")[2]]


class CallableModule(types.ModuleType):
    """A module whose call is the call of its namesake function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return namesake(self)(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(namesake(self))


def make_callable(name: str) -> None:
    """Make the module called ``name`` (its ``__name__``) callable as its namesake function."""
    module = sys.modules[name]
    if not callable(vars(module).get(name.rpartition(".")[2])):
        raise TypeError(f"{name} defines no function {name.rpartition('.')[2]!r} to call")
    module.__class__ = CallableModule

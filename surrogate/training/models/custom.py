"""``model=custom``: a network of your own, named by its import path, as Hydra's ``_target_``.

    python train.py model=custom model.net._target_=mypkg.nets.MyNet +model.net.width=64

``model.net._target_`` is a class or function that returns an ``nn.Module``; the other keys of
``model.net`` are its keyword arguments (``+model.net.width=64``: the ``+`` adds a key the YAML does
not have). Where it takes ``input_shape`` (a tuple: channels, height, width for images; time,
features for sequences) or ``num_classes`` and the config leaves them out, they come from the data.
Its hard ops take the op config's estimators by ``model.apply_estimators``: ``swap`` for surrogate's
modules (``surrogate.Sign`` ...), ``intercept`` for plain torch ops (``torch.sign`` ...), ``both``
(the default) for either. The module must be importable: run from the folder that holds ``mypkg``,
or put it on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from surrogate.training.models import ModelConfig, register_model

FROM_DATA = ("input_shape", "num_classes")


@dataclass
class CustomConfig(ModelConfig):
    net: dict[str, Any] = field(default_factory=dict)  # _target_ and the keyword arguments


def import_target(path: Any) -> Any:
    """The object at the import path ``path`` (``package.module.Name``)."""
    example = "e.g. model.net._target_=mypkg.nets.MyNet"
    if not isinstance(path, str) or "." not in path:
        raise ValueError(
            f"model.net._target_: the import path of your network is needed ({example}), "
            f"got {path!r}"
        )
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"model.net._target_: cannot import {module_name!r} ({err}); run from the folder "
            "that holds it, or add that folder to PYTHONPATH"
        ) from None
    if not hasattr(module, name):
        raise ValueError(f"model.net._target_: {module_name!r} has no {name!r}")
    return getattr(module, name)


@register_model("custom", CustomConfig)
def build_custom(config: CustomConfig, shape) -> nn.Module:
    kwargs = dict(config.net)
    target = import_target(kwargs.pop("_target_", None))
    try:
        accepted = inspect.signature(target).parameters
    except (TypeError, ValueError):
        accepted = {}
    for name in FROM_DATA:
        if name in accepted and name not in kwargs:
            kwargs[name] = getattr(shape, name)
    try:
        net = target(**kwargs)
    except TypeError as err:
        raise ValueError(f"model.net: {config.net['_target_']}: {err}") from None
    if not isinstance(net, nn.Module):
        raise ValueError(
            f"model.net._target_: {config.net['_target_']} returned {type(net).__name__}, "
            "not a torch.nn.Module"
        )
    return net

"""One registry for every model the project builds: closed-set segmentors, add-ons, OVSS models.

    @register_model("fcn")
    def fcn(*, num_classes: int, **cfg) -> nn.Module: ...

    model = create_model("fcn", num_classes=150, backbone="resnet50c")

An unknown name raises a KeyError listing the known ones. This module is the machinery only (it
imports no model); :mod:`seg_pipelines.models.factory` imports every module that registers a model and
is what the rest of the project builds models with.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelBuilder = Callable[..., nn.Module]

_MODELS: dict[str, ModelBuilder] = {}
_ADDONS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering a model builder under ``name``."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS and _MODELS[name] is not builder:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = builder
        return builder

    return decorator


def register_addon(name: str) -> Callable:
    """Decorator registering a closed-set add-on (CAA, ECAC) class or builder under ``name``."""

    def decorator(builder):
        if name in _ADDONS and _ADDONS[name] is not builder:
            raise ValueError(f"add-on {name!r} registered twice")
        _ADDONS[name] = builder
        return builder

    return decorator


def build_model(name: str, **cfg) -> nn.Module:
    """Build the model registered as ``name``; an unknown name raises a KeyError listing the known ones."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {sorted(_MODELS)}")
    return _MODELS[name](**cfg)


def build_addon(name: str, **cfg) -> nn.Module:
    """Build the add-on registered as ``name``; an unknown name raises a KeyError listing the known ones."""
    if name not in _ADDONS:
        raise KeyError(f"unknown add-on {name!r}; known add-ons: {sorted(_ADDONS)}")
    return _ADDONS[name](**cfg)


def registered_models() -> list[str]:
    return sorted(_MODELS)


def registered_addons() -> list[str]:
    return sorted(_ADDONS)

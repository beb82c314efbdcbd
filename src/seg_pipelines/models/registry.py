"""One registry for every model the project builds: closed-set segmentors, add-ons, OVSS models.

    @register_model("fcn")
    def fcn(*, num_classes: int, **cfg) -> nn.Module: ...

    model = create_model("fcn", num_classes=150, backbone="resnet50c")

An unknown name raises a KeyError listing the known ones. Modules that register models are
imported lazily by :func:`create_model` (``_MODEL_MODULES``), so importing the registry is cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

ModelBuilder = Callable[..., nn.Module]

_MODELS: dict[str, ModelBuilder] = {}
_ADDONS: dict[str, Callable[..., nn.Module]] = {}

# Modules whose import registers builders. A module that does not exist yet is skipped.
_MODEL_MODULES = (
    "seg_pipelines.models.segmentor",
    "seg_pipelines.models.caa",
    "seg_pipelines.models.ecac",
    "seg_pipelines.models.ovss.catseg",
    "seg_pipelines.models.ovss.lsmseg",
)


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


def _import_model_modules() -> None:
    for module in _MODEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:  # a real missing dependency inside the module: surface it
                raise


def list_models() -> list[str]:
    _import_model_modules()
    return sorted(_MODELS)


def list_addons() -> list[str]:
    _import_model_modules()
    return sorted(_ADDONS)


def create_model(name: str, **cfg) -> nn.Module:
    """Build the model registered as ``name`` with keyword configuration ``cfg``."""
    _import_model_modules()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {sorted(_MODELS)}")
    return _MODELS[name](**cfg)


def create_addon(name: str, **cfg) -> nn.Module:
    """Build the add-on registered as ``name`` (e.g. ``caa``, ``ecac``)."""
    _import_model_modules()
    if name not in _ADDONS:
        raise KeyError(f"unknown add-on {name!r}; known add-ons: {sorted(_ADDONS)}")
    return _ADDONS[name](**cfg)

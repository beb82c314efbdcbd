"""Build any model of the project by name: ``create_model("fcn", num_classes=150, backbone="resnet50c")``.

Importing this module imports every module that registers a model or add-on (the closed-set
segmentor and its heads, CAA, ECAC, CAT-Seg, LSMSeg), so every name is known; the registry itself is
:mod:`seg_pipelines.models.registry`.
"""

from __future__ import annotations

from seg_pipelines.models import caa, ecac, segmentor  # noqa: F401  (each registers its builders)
from seg_pipelines.models.ovss import catseg, lsmseg  # noqa: F401
from seg_pipelines.models.registry import build_addon as create_addon
from seg_pipelines.models.registry import build_model as create_model
from seg_pipelines.models.registry import registered_addons as list_addons
from seg_pipelines.models.registry import registered_models as list_models

__all__ = ["create_addon", "create_model", "list_addons", "list_models"]

"""``ecac``: FCN (configurable head) vs FCN+ECAC, trained and evaluated under the same budget and seed."""

from seg_pipelines.pipelines.ecac.pipeline import create_pipeline

__all__ = ["create_pipeline"]

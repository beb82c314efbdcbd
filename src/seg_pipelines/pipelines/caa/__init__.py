"""``caa``: FCN (configurable head) vs FCN+CAA, trained and evaluated under the same budget and seed."""

from seg_pipelines.pipelines.caa.pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""``caa_ablations``: thesis chapter 3 ablations (Tables 3.2, 3.3, 3.4, 3.7), seeds × variants."""

from seg_pipelines.pipelines.caa_ablations.pipeline import create_pipeline

__all__ = ["create_pipeline"]

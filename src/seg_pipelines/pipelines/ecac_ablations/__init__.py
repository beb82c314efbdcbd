"""``ecac_ablations``: thesis chapter 4 ablations (Tables 4.2-4.5, 4.7, 4.8, Figure 4.7)."""

from seg_pipelines.pipelines.ecac_ablations.pipeline import create_pipeline

__all__ = ["create_pipeline"]

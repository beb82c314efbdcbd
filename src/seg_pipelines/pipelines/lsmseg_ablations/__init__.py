"""``lsmseg_ablations``: thesis Tables 5.5, 5.6, 5.7, 5.10 and 5.11 (mean ± std over seeds)."""

from seg_pipelines.pipelines.lsmseg_ablations.pipeline import create_pipeline

__all__ = ["create_pipeline"]

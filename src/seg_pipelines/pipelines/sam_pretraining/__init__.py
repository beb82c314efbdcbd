"""``sam_pretraining``: class-agnostic pretraining of the tiny SAM on the synthetic world (embedded default)."""

from seg_pipelines.pipelines.sam_pretraining.pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""``clip_pretraining``: contrastive pretraining of the tiny CLIP on the synthetic world (embedded default)."""

from seg_pipelines.pipelines.clip_pretraining.pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""Nodes of ``clip_pretraining``: the tiny CLIP pretrained on the synthetic captions, its retrieval
check, zero-shot probe and training curve; the work is in :mod:`seg_pipelines.experiments.tiny_clip`."""

from seg_pipelines.experiments.tiny_clip import (
    describe_tiny_clip,
    evaluate_tiny_clip,
    plot_clip_training_curve,
    pretrain_tiny_clip,
)

__all__ = ["describe_tiny_clip", "evaluate_tiny_clip", "plot_clip_training_curve", "pretrain_tiny_clip"]

"""Nodes of ``clip_pretraining``: the tiny CLIP pretrained on the synthetic captions, its retrieval
check, zero-shot probe and training curve; the work is in :mod:`seg_pipelines.experiments.tiny_clip`.
(imported when a node first runs: :mod:`seg_pipelines.pipelines.lazy`)."""

from seg_pipelines.pipelines.lazy import lazy

EXPERIMENT = "seg_pipelines.experiments.tiny_clip"
describe_tiny_clip = lazy(EXPERIMENT, "describe_tiny_clip")
evaluate_tiny_clip = lazy(EXPERIMENT, "evaluate_tiny_clip")
plot_clip_training_curve = lazy(EXPERIMENT, "plot_clip_training_curve")
pretrain_tiny_clip = lazy(EXPERIMENT, "pretrain_tiny_clip")

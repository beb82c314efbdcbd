"""Nodes of ``clip_pretraining``: the tiny CLIP pretrained on the synthetic captions, its retrieval
check, zero-shot probe and training curve. Each validates ``clip_pretraining`` into
:class:`~seg_pipelines.parameters.ClipPretraining` and calls :mod:`seg_pipelines.experiments.tiny_clip`
(imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

from seg_pipelines.parameters import ClipPretraining


def pretrain_tiny_clip(
    manifest: dict[str, Any], prepared_index: Any, params: ClipPretraining
) -> tuple[Any, list[dict[str, float]]]:
    """Pretrain (or resume) the tiny CLIP on the prepared index's train split: the model and its curve."""
    from seg_pipelines.experiments import tiny_clip

    return tiny_clip.pretrain_tiny_clip(manifest, ClipPretraining.of(params), prepared_index)


def evaluate_tiny_clip(
    tiny_clip_checkpoint: Any, manifest: dict[str, Any], params: ClipPretraining
) -> tuple[dict[str, float], dict[str, Any]]:
    """Image-caption retrieval and the dense zero-shot probe of the pretrained tiny CLIP."""
    from seg_pipelines.experiments import tiny_clip

    return tiny_clip.evaluate_tiny_clip(tiny_clip_checkpoint, manifest, ClipPretraining.of(params))


def describe_tiny_clip(params: ClipPretraining, tiny_clip_checkpoint: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The tiny CLIP's config record (architecture, checkpoint, training settings)."""
    from seg_pipelines.experiments import tiny_clip

    return tiny_clip.describe_tiny_clip(ClipPretraining.of(params), tiny_clip_checkpoint, manifest)


def plot_clip_training_curve(curve: list[dict[str, float]], metrics: dict[str, Any]) -> Any:
    """The pretraining loss curve with the retrieval figures (a matplotlib figure)."""
    from seg_pipelines.experiments import tiny_clip

    return tiny_clip.plot_clip_training_curve(curve, metrics)

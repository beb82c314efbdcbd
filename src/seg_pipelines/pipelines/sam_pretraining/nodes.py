"""Nodes of ``sam_pretraining``: the tiny SAM pretrained class-agnostically on the synthetic world's region
masks, its one-point mask IoU check and its config record. Each validates ``sam_pretraining`` into
:class:`~seg_pipelines.parameters.SamPretraining` and calls :mod:`seg_pipelines.experiments.sam_pretraining`
(imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

from seg_pipelines.parameters import SamPretraining


def pretrain_tiny_sam(manifest: dict[str, Any], params: SamPretraining) -> tuple[Any, list[dict[str, float]]]:
    """Pretrain (or resume) the tiny SAM: the model and its training curve."""
    from seg_pipelines.experiments import sam_pretraining

    return sam_pretraining.pretrain_tiny_sam(manifest, SamPretraining.of(params))


def evaluate_tiny_sam(tiny_sam_checkpoint: Any, manifest: dict[str, Any], params: SamPretraining) -> dict[str, Any]:
    """Mean mask IoU from one point prompt on held-out images, pretrained against random init."""
    from seg_pipelines.experiments import sam_pretraining

    return sam_pretraining.evaluate_tiny_sam(tiny_sam_checkpoint, manifest, SamPretraining.of(params))


def describe_tiny_sam(params: SamPretraining, tiny_sam_checkpoint: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The tiny SAM's config record (variant, input size, checkpoint, training settings)."""
    from seg_pipelines.experiments import sam_pretraining

    return sam_pretraining.describe_tiny_sam(SamPretraining.of(params), tiny_sam_checkpoint, manifest)

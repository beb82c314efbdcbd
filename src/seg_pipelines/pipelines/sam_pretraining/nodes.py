"""Nodes of ``sam_pretraining``: the two embedded-default SAMs (``tiny``, the SAM-B stand-in, and ``tiny_l``,
the SAM-L stand-in) pretrained class-agnostically on the synthetic world's region masks, their one-point
mask IoU check and their config records. Each validates ``sam_pretraining`` into
:class:`~seg_pipelines.parameters.SamPretraining` and calls :mod:`seg_pipelines.experiments.sam_pretraining`
(imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

from seg_pipelines.parameters import SamPretraining


def pretrain_tiny_sam(
    manifest: dict[str, Any], prepared_index: Any, params: SamPretraining
) -> tuple[Any, list[dict[str, float]]]:
    """Pretrain (or resume) the tiny SAM (``training``) on the prepared index's train split: the model and its curve."""
    from seg_pipelines.experiments import sam_pretraining

    return sam_pretraining.pretrain_tiny_sam(manifest, SamPretraining.of(params), "tiny", prepared_index)


def pretrain_tiny_sam_l(
    manifest: dict[str, Any], prepared_index: Any, params: SamPretraining
) -> tuple[Any, list[dict[str, float]]]:
    """Pretrain (or resume) the larger tiny SAM (``training_l``) on the prepared index's train split: the model
    and its curve."""
    from seg_pipelines.experiments import sam_pretraining

    return sam_pretraining.pretrain_tiny_sam(manifest, SamPretraining.of(params), "tiny_l", prepared_index)


def evaluate_tiny_sams(
    tiny_sam_checkpoint: Any, tiny_sam_l_checkpoint: Any, manifest: dict[str, Any], params: SamPretraining
) -> dict[str, Any]:
    """Mean mask IoU from one point prompt on held-out images, pretrained against random init, per size,
    and the larger size against the smaller."""
    from seg_pipelines.experiments import sam_pretraining

    checkpoints = {"tiny": tiny_sam_checkpoint, "tiny_l": tiny_sam_l_checkpoint}
    return sam_pretraining.evaluate_tiny_sams(checkpoints, manifest, SamPretraining.of(params))


def describe_tiny_sam(params: SamPretraining, tiny_sam_checkpoint: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The tiny SAM's config record (variant, input size, checkpoint, training settings)."""
    from seg_pipelines.experiments import sam_pretraining

    return sam_pretraining.describe_tiny_sam(SamPretraining.of(params), tiny_sam_checkpoint, manifest, "tiny")


def describe_tiny_sam_l(params: SamPretraining, tiny_sam_l_checkpoint: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The larger tiny SAM's config record (variant, input size, checkpoint, training settings)."""
    from seg_pipelines.experiments import sam_pretraining

    return sam_pretraining.describe_tiny_sam(SamPretraining.of(params), tiny_sam_l_checkpoint, manifest, "tiny_l")

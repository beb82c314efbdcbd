"""Nodes of ``lsmseg``: CAT-Seg and LSMSeg trained on the seen classes and evaluated on the six
vocabularies. Each validates ``lsmseg`` into :class:`~seg_pipelines.parameters.LSMSeg` and calls
:mod:`seg_pipelines.experiments.lsmseg` (imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.parameters import LSMSeg


def validate_lsmseg_inputs(
    manifest: dict[str, Any],
    tiny_clip_config: dict[str, Any],
    tiny_clip_checkpoint: str,
    prompt_set: dict[str, Any] | None,
    params: LSMSeg,
    tiny_sam_config: dict[str, Any] | None = None,
    tiny_sam_checkpoint: str | None = None,
    tiny_sam_l_config: dict[str, Any] | None = None,
    tiny_sam_l_checkpoint: str | None = None,
) -> dict[str, Any]:
    """The run plan: vocabularies, prompts, CLIP and the tiny SAMs checked before any training."""
    from seg_pipelines.experiments import lsmseg

    tiny_sams = lsmseg.tiny_sam_inputs(tiny_sam_config, tiny_sam_checkpoint, tiny_sam_l_config, tiny_sam_l_checkpoint)
    return lsmseg.validate_lsmseg_inputs(
        manifest, tiny_clip_config, tiny_clip_checkpoint, prompt_set, LSMSeg.of(params), tiny_sams
    )


def train_baseline(
    index: pd.DataFrame, manifest: dict[str, Any], plan: dict[str, Any], params: LSMSeg
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """CAT-Seg (the baseline) trained on the seen classes: its weights and training curve."""
    from seg_pipelines.experiments import lsmseg

    return lsmseg.train_baseline(index, manifest, plan, LSMSeg.of(params))


def train_lsmseg(
    index: pd.DataFrame, manifest: dict[str, Any], plan: dict[str, Any], params: LSMSeg
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """LSMSeg trained with the same budget: its weights and training curve."""
    from seg_pipelines.experiments import lsmseg

    return lsmseg.train_lsmseg(index, manifest, plan, LSMSeg.of(params))


def describe_models(params: LSMSeg, plan: dict[str, Any], baseline_curve: list, lsmseg_curve: list) -> dict[str, Any]:
    """Both models' configuration record."""
    from seg_pipelines.experiments import lsmseg

    return lsmseg.describe_models(LSMSeg.of(params), plan, baseline_curve, lsmseg_curve)


def evaluate_ovss(
    baseline_state: dict[str, Any],
    lsmseg_state: dict[str, Any],
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: LSMSeg,
) -> tuple[dict[str, Any], pd.DataFrame, str, pd.DataFrame, str, dict[str, Any]]:
    """Tables 5.1 and 5.2 (six benchmarks, open-vocabulary protocol) and the per-class IoU."""
    from seg_pipelines.experiments import lsmseg

    return lsmseg.evaluate_ovss(baseline_state, lsmseg_state, index, manifest, plan, LSMSeg.of(params))


def plot_cost_maps(
    baseline_state: dict[str, Any],
    lsmseg_state: dict[str, Any],
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: LSMSeg,
) -> Any:
    """Figure 5.9 style: image, mask and each model's cost map for one seen and two unseen classes."""
    from seg_pipelines.experiments import lsmseg

    return lsmseg.plot_cost_maps(baseline_state, lsmseg_state, index, manifest, plan, LSMSeg.of(params))


def plot_qualitative(
    baseline_state: dict[str, Any],
    lsmseg_state: dict[str, Any],
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: LSMSeg,
) -> Any:
    """Image | CAT-Seg | LSMSeg | ground truth on sample images (a matplotlib figure)."""
    from seg_pipelines.experiments import lsmseg

    return lsmseg.plot_qualitative(baseline_state, lsmseg_state, index, manifest, plan, LSMSeg.of(params))


def compare_prompt_sources(
    index: pd.DataFrame, manifest: dict[str, Any], plan: dict[str, Any], prompt_set: Any, params: LSMSeg
) -> tuple[dict[str, Any], str]:
    """With ``prompts: prompt_set``: LSMSeg's unseen-class mIoU with the prompt set and with the
    templates over ``prompt_comparison.seeds`` (paired), and its markdown."""
    from seg_pipelines.experiments import lsmseg

    return lsmseg.compare_prompt_sources(index, manifest, plan, prompt_set, LSMSeg.of(params))

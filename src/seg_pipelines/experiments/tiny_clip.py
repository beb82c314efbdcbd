"""The ``clip_pretraining`` runs: pretrain, evaluate, describe and plot the tiny CLIP, over
:mod:`seg_pipelines.experiments.clip_pretraining`."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.engine.ablations import ResultCache, json_ready
from seg_pipelines.engine.runtime import set_torch_threads
from seg_pipelines.engine.training import load_checkpoint, state_dict_digest
from seg_pipelines.experiments import clip_pretraining as engine
from seg_pipelines.experiments.data_preparation import prepared_sample_ids
from seg_pipelines.experiments.embedded_pretraining import synthetic_only_reason, timed_pretraining

logger = logging.getLogger(__name__)


def not_trained_reason(manifest: dict[str, Any]) -> str | None:
    """Why no tiny CLIP is trained for ``manifest`` (a real dataset: the real path's CLIP is a checkpoint of
    its own, ``lsmseg.clip.pretrained``), or ``None`` on the synthetic world."""
    return synthetic_only_reason(
        manifest, "tiny CLIP", "use a CLIP checkpoint of your own (lsmseg.clip.pretrained, e.g. OpenAI ViT-B/16)"
    )


def _synthetic_reader(manifest: dict[str, Any]):
    reason = not_trained_reason(manifest)
    if reason:
        raise ValueError(reason)
    return create_reader("synthetic", manifest["root"])


def _config(params: dict[str, Any]) -> engine.ClipPretrainingConfig:
    return engine.ClipPretrainingConfig(**params.get("training", {}))


def pretrain_tiny_clip(
    manifest: dict[str, Any], params: dict[str, Any], index: pd.DataFrame | None = None
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train the tiny CLIP on the train split's image–caption pairs (resumable from ``checkpoint_dir``);
    ``index``: the prepared index, whose train-split samples are the ones trained on."""
    reason = not_trained_reason(manifest)
    if reason:  # a real dataset: nothing to train; downstream nodes say what to set instead
        logger.warning("clip_pretraining skipped: %s", reason)
        return {}, []
    set_torch_threads(params.get("num_threads"), default=2)
    config = _config(params)
    reader = _synthetic_reader(manifest)
    split = params.get("train_split", "train")
    sample_ids = None if index is None else prepared_sample_ids(manifest, index, split)
    train_data = engine.load_captioned_split(reader, split, sample_ids=sample_ids)
    return timed_pretraining(
        "CLIP",
        config.steps,
        lambda: engine.pretrain_clip(train_data, config, checkpoint_dir=params.get("checkpoint_dir")),
    )


def evaluate_tiny_clip(
    tiny_clip_checkpoint: str | dict[str, torch.Tensor], manifest: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Held-out retrieval recall@1 and the dense zero-shot probe (name vs attribute prompts, head/tail).
    ``tiny_clip_checkpoint``: the weights' path (catalog) or the state dict itself."""
    reason = not_trained_reason(manifest)
    if reason:
        return {"clip_retrieval": {}}, {"clip_zero_shot": {"not_trained": reason}}
    set_torch_threads(params.get("num_threads"), default=2)
    config = _config(params)
    state_dict = (
        tiny_clip_checkpoint if isinstance(tiny_clip_checkpoint, dict) else load_checkpoint(tiny_clip_checkpoint)
    )
    reader = _synthetic_reader(manifest)
    data = engine.load_captioned_split(reader, params.get("eval_split", "val"))
    train_data = engine.load_captioned_split(reader, params.get("train_split", "train"))
    # a rerun with the same weights, settings and data reuses the numbers (the probes take about a minute)
    cache = ResultCache(Path(params["checkpoint_dir"]) / "evaluations" if params.get("checkpoint_dir") else None)
    key = ResultCache.key(
        "tiny_clip_evaluation",
        state_dict_digest(state_dict),
        asdict(config),
        engine.captioned_data_digest(data),
        engine.captioned_data_digest(train_data),
    )
    cached = cache.get(key)
    if cached is not None:
        logger.info("tiny CLIP evaluation: same weights, settings and data as before; reusing its numbers")
        return cached["metrics"], cached["probe"]
    model = engine.clip_from_state_dict({"model_name": config.model_name, "image_size": config.image_size}, state_dict)
    retrieval, probe = engine.held_out_probes(model, config, data, reader.world)
    logger.info(
        "CLIP retrieval %s; zero-shot pixel acc name %.3f vs attribute %.3f",
        retrieval,
        probe["name_prompts"]["pixel_accuracy"],
        probe["attribute_prompts"]["pixel_accuracy"],
    )
    # what pretraining reads: the share of caption tokens a truncating context would lose (issue 26)
    caption_tokens = engine.training_caption_tokens(train_data, config)
    logger.info(
        "caption tokens past the text context: %s",
        {name: round(report.get("share_of_tokens_lost", 0.0), 4) for name, report in caption_tokens.items()},
    )
    payload = json_ready(
        {"metrics": {"clip_retrieval": retrieval, "caption_tokens": caption_tokens}, "probe": {"clip_zero_shot": probe}}
    )
    cache.put(key, payload)  # fresh and reused numbers have one form (JSON's)
    return payload["metrics"], payload["probe"]


def describe_tiny_clip(
    params: dict[str, Any], tiny_clip_checkpoint: str, manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The re-buildable description of ``tiny_clip_checkpoint`` (load with ``engine.clip_from_state_dict``):
    architecture, input size, where the weights are and how they were trained. Its retrieval and
    zero-shot numbers are in ``clip_pretraining_metrics`` / ``clip_zero_shot_probe``. On a real dataset
    nothing was trained: ``not_trained`` says why (``lsmseg`` then needs ``clip.pretrained``)."""
    config = _config(params)
    described = {
        "model_name": config.model_name,
        "image_size": config.image_size,
        "checkpoint": str(tiny_clip_checkpoint),
        "training": asdict(config),
    }
    reason = not_trained_reason(manifest) if manifest else None
    return {**described, "not_trained": reason} if reason else described


def plot_clip_training_curve(curve: list[dict[str, float]], metrics: dict[str, Any]):
    """Contrastive loss and learning rate against step."""
    figure, (loss_axis, lr_axis) = plt.subplots(1, 2, figsize=(9, 3.2))
    if not curve:
        reason = metrics.get("clip_retrieval") == {} and "not trained (a real dataset: lsmseg.clip.pretrained)"
        loss_axis.text(0.5, 0.5, reason or "no training curve", ha="center", va="center", wrap=True)
        loss_axis.axis("off")
        lr_axis.axis("off")
        return figure
    steps = [row["step"] for row in curve]
    loss_axis.plot(steps, [row["loss"] for row in curve], color="tab:blue")
    loss_axis.set(xlabel="step", ylabel="InfoNCE loss", title="tiny CLIP pretraining (synthetic world)")
    lr_axis.plot(steps, [row["lr"] for row in curve], color="tab:orange")
    lr_axis.set(xlabel="step", ylabel="learning rate", title="warm-up + cosine")
    retrieval = metrics.get("clip_retrieval", {})
    recall = retrieval.get("image_to_text_recall_at_1")
    if recall is not None:
        chance = retrieval.get("chance_recall_at_1")
        text = f"val image→text R@1 = {recall:.3f}" + (f" (chance {chance:.3f})" if chance is not None else "")
        loss_axis.text(0.98, 0.95, text, ha="right", va="top", transform=loss_axis.transAxes)
    figure.tight_layout()
    return figure

"""Closed-set experiments of thesis chapters 3–4: a head trained with and without an add-on.

Shared by the ``caa`` and ``ecac`` pipelines (and the benchmarks):

    config = closed_set_model_config({"head": "fcn", "backbone": "resnet_tiny"}, num_classes=60,
                                     ignore_index=255, addon="caa")
    checkpoint, curve = train_segmentor(config, manifest, index, training, augmentation, "data/06_models/runs")
    model = load_segmentor(checkpoint, num_classes=60)
    per_class = evaluate_segmentor(model, manifest, index, evaluation, augmentation)
    summary = summarize_per_class(per_class)            # mIoU / mAcc / aAcc in percent (MMSeg)
    groups = group_miou(per_class["iou"], statistics["table_4_8_group"])   # Table 4.8

Numbers are in percent, as in the thesis tables and MMSegmentation's logs. Evaluation follows
MMSegmentation's closed-set protocol (:mod:`seg_pipelines.engine.evaluation`): one confusion matrix
over the split; a class absent from both prediction and ground truth is NaN and skipped by the mean.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from seg_pipelines.datasets.base import Sample
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import data_digest
from seg_pipelines.datasets.loaders import AugmentationConfig, SegmentationDataset, build_transform
from seg_pipelines.engine.evaluation import chance_miou, evaluate, run_inference, scores_from_confusion
from seg_pipelines.engine.tables import markdown_table
from seg_pipelines.engine.training import (
    CheckpointError,
    TrainConfig,
    default_loss,
    load_checkpoint,
    load_model_weights,
    low_resolution_outputs,
    train,
)
from seg_pipelines.experiments.figures import plot_qualitative, plot_training_curves
from seg_pipelines.models.heads import head_display_name

logger = logging.getLogger(__name__)

GROUPS = ("head", "mid", "tail")
ADDON_DISPLAY_NAMES = {"caa": "CAA", "ecac": "ECAC"}


# --- building -----------------------------------------------------------------------------------


def validate_architecture(head: str, backbone: str) -> None:
    """Raise a KeyError listing the valid names when ``head`` or ``backbone`` is unknown."""
    from seg_pipelines.models.backbones import BACKBONE_PRESETS
    from seg_pipelines.models.segmentor import CLOSED_SET_MODELS

    if head not in CLOSED_SET_MODELS:
        raise KeyError(f"unknown closed-set head {head!r}; known heads: {list(CLOSED_SET_MODELS)}")
    import timm

    if backbone not in BACKBONE_PRESETS and not timm.is_model(backbone):
        raise KeyError(
            f"unknown backbone {backbone!r}; known presets: {sorted(BACKBONE_PRESETS)}, or a timm architecture "
            "such as 'resnet50c', 'resnet101c', 'swin_tiny_patch4_window7_224' (see timm.list_models())"
        )


def closed_set_model_config(
    model: Mapping[str, Any],
    *,
    num_classes: int,
    ignore_index: int,
    addon: str | None = None,
    addon_cfg: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """JSON-able keyword configuration of :func:`seg_pipelines.models.factory.create_model`.

    ``model`` is the ``model`` parameter block: ``head`` (registry name), ``backbone`` and any
    :func:`~seg_pipelines.models.segmentor.build_segmentor` argument. A ``num_classes`` there must
    agree with the dataset's.
    """
    settings = dict(model)
    head = settings.pop("head", "fcn")
    backbone = settings.get("backbone", "resnet50c")
    validate_architecture(head, backbone)
    configured = settings.pop("num_classes", None)
    if configured is not None and int(configured) != int(num_classes):
        raise ValueError(
            f"class-count mismatch: the model is configured for {configured} classes but the dataset has {num_classes}"
        )
    config: dict[str, Any] = {
        "name": head,
        "num_classes": int(num_classes),
        "ignore_index": int(ignore_index),
        **settings,
    }
    if addon is not None:
        config["addon"] = addon
        config["addon_cfg"] = {"ignore_index": int(ignore_index), **dict(addon_cfg or {})}
    return config


def build_segmentor(config: Mapping[str, Any]) -> nn.Module:
    """Model from a :func:`closed_set_model_config` dictionary (random weights)."""
    from seg_pipelines.models.factory import create_model

    settings = dict(config)
    name = settings.pop("name")
    validate_architecture(name, settings.get("backbone", "resnet50c"))
    return create_model(name, **settings)


def method_display_name(config: Mapping[str, Any]) -> str:
    """``FCN`` / ``FCN+CAA``: the row label of Tables 3.7 and 4.7 (head names:
    :data:`seg_pipelines.models.heads.HEAD_DISPLAY_NAMES`)."""
    head = head_display_name(config["name"])
    addon = config.get("addon")
    return f"{head}+{ADDON_DISPLAY_NAMES.get(addon, str(addon).upper())}" if addon else head


def class_weights_from_statistics(class_statistics: pd.DataFrame, num_classes: int) -> list[float]:
    """Eq. 4.14 weights ``w_c`` of the ``class_statistics`` table, ordered by class id."""
    check_class_count(class_statistics, num_classes, "class_statistics")
    table = class_statistics.sort_values("class_id")
    return [float(w) for w in table["weight"]]


def check_class_count(table: pd.DataFrame, num_classes: int, what: str) -> None:
    if len(table) != num_classes:
        raise ValueError(f"class-count mismatch: {what} has {len(table)} classes but the dataset has {num_classes}")


# --- data ----------------------------------------------------------------------------------------


def build_split_dataset(
    index: pd.DataFrame, manifest: Mapping[str, Any], split: str, augmentation: Mapping[str, Any], train: bool
) -> SegmentationDataset:
    """Samples of ``split`` with the training (random rescale/crop/flip/jitter) or evaluation transform."""
    config = AugmentationConfig(**dict(augmentation))
    return SegmentationDataset(
        index,
        split,
        manifest["family"],
        manifest["root"],
        manifest.get("reader_kwargs"),
        transform=build_transform(config, int(manifest["ignore_index"]), train),
    )


# --- training ------------------------------------------------------------------------------------


def run_fingerprint(*parts: Any) -> str:
    """Short stable hash of JSON-able settings: identical settings share (and resume) a run folder."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def weighted_main_loss(class_weights: Sequence[float]):
    """Training loss whose main CE is weighted per class: ``model.losses(outputs, target, class_weights)``."""

    def loss_fn(model: nn.Module, batch: dict[str, Any], iteration: int) -> dict[str, torch.Tensor]:
        core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        outputs = model(batch["image"], batch["label"], **low_resolution_outputs(core))
        weights = torch.as_tensor(class_weights, dtype=torch.float32, device=batch["label"].device)
        return core.losses(outputs, batch["label"], class_weights=weights)

    return loss_fn


def train_segmentor(
    model_config: Mapping[str, Any],
    manifest: Mapping[str, Any],
    index: pd.DataFrame,
    training: Mapping[str, Any],
    augmentation: Mapping[str, Any],
    checkpoint_root: str | Path,
    show_progress: bool = True,
    class_weights: Sequence[float] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train on the ``train`` split with :func:`seg_pipelines.engine.training.train`.

    Working checkpoints (with optimizer state) go to ``checkpoint_root/<method>-<fingerprint>/last.pt``;
    the fingerprint covers model, training, augmentation and dataset settings and the train split's
    content (:func:`~seg_pipelines.datasets.index.data_digest`), so an interrupted run resumes and a
    finished one is reused, while changed settings or data start afresh.
    Returns the final checkpoint ``{"model", "model_config", "train_config", "class_names",
    "iteration"}`` (no optimizer) and the training curve (one row per log step).
    ``class_weights`` re-weight the segmentor's main CE (eq. 4.13 without ECAC, Table 4.2 row 2).
    """
    config = TrainConfig(**dict(training))
    # the data itself, not only where it lies: a re-rendered world or replaced files train afresh
    dataset_key = {k: manifest.get(k) for k in ("family", "reader_kwargs", "num_classes")}
    dataset_key["data"] = data_digest(index, ["train"])
    run_name = method_display_name(model_config).replace("+", "_").lower()
    parts = [model_config, asdict(config), dict(augmentation), dataset_key]
    loss_fn = default_loss
    if class_weights is not None:
        weights = [float(w) for w in class_weights]
        if len(weights) != int(model_config["num_classes"]):
            raise ValueError(
                f"class-count mismatch: {len(weights)} class weights for {model_config['num_classes']} classes"
            )
        parts.append({"class_weights": weights})
        loss_fn = weighted_main_loss(weights)
    run_dir = Path(checkpoint_root) / f"{run_name}-{run_fingerprint(*parts)}"
    torch.manual_seed(config.seed)  # same seed → same initial backbone/head for baseline and method
    model = build_segmentor(model_config)
    dataset = build_split_dataset(index, manifest, "train", augmentation, train=True)
    logger.info("training %s for %d iterations in %s", method_display_name(model_config), config.iterations, run_dir)
    curve = train(
        model, dataset, config, run_dir, loss_fn=loss_fn, model_config=dict(model_config), show_progress=show_progress
    )
    checkpoint = {
        "model": model.state_dict(),
        "model_config": dict(model_config),
        "train_config": asdict(config),
        "class_names": list(manifest["class_names"]),
        "iteration": config.iterations,
    }
    return checkpoint, pd.DataFrame(curve)


def load_segmentor(checkpoint: Mapping[str, Any] | str | Path, num_classes: int | None = None) -> nn.Module:
    """Rebuild a model from a checkpoint dict or file (``weights_only``) in eval mode.

    Raises :class:`CheckpointError` for a missing/corrupt file or one without ``model`` /
    ``model_config``, and ValueError when ``num_classes`` differs from the checkpoint's.
    """
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "<in-memory checkpoint>"
    if isinstance(checkpoint, (str, Path)):
        checkpoint = load_checkpoint(checkpoint)
    if not isinstance(checkpoint, Mapping) or not {"model", "model_config"} <= set(checkpoint):
        found = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(
            f"{source} is not a segmentor checkpoint: expected keys 'model' and 'model_config', found {found}"
        )
    config = dict(checkpoint["model_config"])
    if num_classes is not None and int(config["num_classes"]) != int(num_classes):
        raise ValueError(
            f"class-count mismatch: checkpoint {source} was trained for {config['num_classes']} classes "
            f"but the dataset has {num_classes}"
        )
    model = build_segmentor(config)
    load_model_weights(model, checkpoint["model"], source)
    return model.eval()


# --- evaluation ----------------------------------------------------------------------------------


def inference_options(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Mode options of :func:`seg_pipelines.engine.evaluation.run_inference` from the parameter block."""
    mode = evaluation.get("mode", "whole")
    if mode == "slide":
        return {"crop_size": tuple(evaluation["crop_size"]), "stride": tuple(evaluation["stride"])}
    if mode == "multi_scale":
        return {
            "scales": tuple(evaluation.get("scales", (0.5, 0.75, 1.0, 1.25, 1.5, 1.75))),
            "flip": bool(evaluation.get("flip", True)),
        }
    if mode != "whole":
        raise ValueError(f"unknown inference mode {mode!r}; use 'whole', 'slide' or 'multi_scale'")
    return {}


def _logits(model: nn.Module):
    return lambda images: model(images)["logits"]


def per_class_table(confusion: torch.Tensor | np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """One row per class: TP, ground-truth and predicted pixels, IoU and accuracy (fractions; NaN
    where the closed-set protocol does not count the class)."""
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.shape != (len(class_names), len(class_names)):
        raise ValueError(f"confusion matrix {matrix.shape} does not match {len(class_names)} class names")
    scores = scores_from_confusion(matrix, "closed_set")
    return pd.DataFrame(
        {
            "class_id": np.arange(len(class_names)),
            "name": list(class_names),
            "true_positive": np.diag(matrix),
            "ground_truth_pixels": matrix.sum(axis=1),
            "predicted_pixels": matrix.sum(axis=0),
            "iou": scores.iou,
            "accuracy": scores.accuracy,
        }
    )


def evaluate_segmentor(
    model: nn.Module,
    manifest: Mapping[str, Any],
    index: pd.DataFrame,
    evaluation: Mapping[str, Any],
    augmentation: Mapping[str, Any],
    show_progress: bool = True,
) -> pd.DataFrame:
    """MMSeg closed-set evaluation on ``evaluation['split']`` (whole images, inference ``mode``);
    returns :func:`per_class_table`."""
    num_classes = int(manifest["num_classes"])
    if model.num_classes != num_classes:
        raise ValueError(
            f"class-count mismatch: the model predicts {model.num_classes} classes but the dataset has {num_classes}"
        )
    dataset = build_split_dataset(index, manifest, evaluation.get("split", "val"), augmentation, train=False)
    loader = DataLoader(dataset, batch_size=int(evaluation.get("batch_size", 8)), shuffle=False)
    batches = tqdm(loader, desc="evaluate", disable=not show_progress)
    model.eval()
    _, confusion = evaluate(
        _logits(model),
        batches,
        num_classes,
        int(manifest["ignore_index"]),
        protocol="closed_set",
        mode=evaluation.get("mode", "whole"),
        **inference_options(evaluation),
    )
    return per_class_table(confusion, manifest["class_names"])


@torch.no_grad()
def predict_labels(model: nn.Module, images: torch.Tensor, evaluation: Mapping[str, Any]) -> torch.Tensor:
    """Arg-max class ids (B, H, W) under the configured inference mode."""
    model.eval()
    scores = run_inference(_logits(model), images, evaluation.get("mode", "whole"), **inference_options(evaluation))
    return scores.argmax(dim=1)


# --- summaries -----------------------------------------------------------------------------------


def summarize_per_class(per_class: pd.DataFrame) -> dict[str, float]:
    """mIoU, mAcc, aAcc in percent from a :func:`per_class_table` (same numbers as
    :func:`~seg_pipelines.engine.evaluation.scores_from_confusion`)."""
    iou = per_class["iou"].to_numpy(dtype=float)
    accuracy = per_class["accuracy"].to_numpy(dtype=float)
    ground_truth = per_class["ground_truth_pixels"].to_numpy(dtype=float)
    return {
        "mIoU": 100.0 * float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "mAcc": 100.0 * float(np.nanmean(accuracy)) if np.isfinite(accuracy).any() else float("nan"),
        "aAcc": 100.0 * float(per_class["true_positive"].sum() / max(ground_truth.sum(), 1.0)),
    }


def group_miou(
    iou: Sequence[float] | pd.Series, groups: Sequence[str] | pd.Series, names: Sequence[str] = GROUPS
) -> dict[str, float]:
    """Mean IoU (percent) over the classes of each group (NaN IoUs skipped, as in the protocol);
    NaN for a group without any counted class."""
    iou = np.asarray(iou, dtype=float)
    groups = np.asarray(groups, dtype=object)
    if iou.shape != groups.shape:
        raise ValueError(f"{iou.shape[0]} IoU values but {groups.shape[0]} group labels")
    result = {}
    for name in names:
        members = iou[groups == name]
        counted = members[np.isfinite(members)]
        result[name] = 100.0 * float(counted.mean()) if counted.size else float("nan")
    return result


def compare_per_class(baseline: pd.DataFrame, method: pd.DataFrame, class_statistics: pd.DataFrame) -> pd.DataFrame:
    """Per-class IoU/accuracy of both models next to the class statistics (frequency, groups)."""
    check_class_count(baseline, len(class_statistics), "the baseline evaluation")
    check_class_count(method, len(class_statistics), "the method evaluation")
    statistics = class_statistics.sort_values("class_id").reset_index(drop=True)
    table = statistics[["class_id", "name", "frequency", "rank", "group", "table_4_8_group"]].copy()
    table["table_4_8_group"] = table["table_4_8_group"].fillna("").astype(str)
    for tag, frame in (("baseline", baseline), ("method", method)):
        frame = frame.sort_values("class_id").reset_index(drop=True)
        table[f"iou_{tag}"] = frame["iou"].to_numpy(dtype=float)
        table[f"accuracy_{tag}"] = frame["accuracy"].to_numpy(dtype=float)
    table["ground_truth_pixels"] = baseline.sort_values("class_id")["ground_truth_pixels"].to_numpy()
    table["iou_delta"] = table["iou_method"] - table["iou_baseline"]
    return table


def closed_set_metrics(baseline: pd.DataFrame, method: pd.DataFrame, comparison: pd.DataFrame) -> dict[str, Any]:
    """Nested metrics: per model mIoU/mAcc/aAcc, Table 4.8 group mIoU, tercile group mIoU; and the
    method − baseline differences (all percent)."""
    result: dict[str, Any] = {}
    for tag, frame in (("baseline", baseline), ("method", method)):
        iou = comparison[f"iou_{tag}"]
        result[tag] = {
            **summarize_per_class(frame),
            "table_4_8_group_mIoU": group_miou(iou, comparison["table_4_8_group"]),
            "tercile_group_mIoU": group_miou(iou, comparison["group"]),
        }
    result["delta"] = {key: result["method"][key] - result["baseline"][key] for key in ("mIoU", "mAcc", "aAcc")} | {
        f"{g}_mIoU": result["method"]["table_4_8_group_mIoU"][g] - result["baseline"]["table_4_8_group_mIoU"][g]
        for g in GROUPS
    }
    # what a uniform random predictor scores under the same protocol (engine.evaluation.chance_iou)
    result["chance"] = {"mIoU": 100.0 * chance_miou(comparison["ground_truth_pixels"].to_numpy(dtype=float))}
    return result


def _format_delta(value: float, delta: float | None) -> str:
    if not np.isfinite(value):
        return "–"
    if delta is None or not np.isfinite(delta):
        return f"{value:.2f}"
    return f"{value:.2f} ({'+' if delta >= 0 else '−'}{abs(delta):.2f})"


def results_markdown(
    rows: Sequence[tuple[str, str, Mapping[str, float]]],
    benchmarks: Sequence[str],
    comparison: pd.DataFrame | None = None,
    method_names: tuple[str, str] | None = None,
    title: str = "",
) -> str:
    """Thesis Table 3.7 / 4.7 layout: ``Method | Backbone | <benchmark> …`` with mIoU (percent) and
    the gain over the row above for add-on rows; then, with ``comparison``, the Table 4.8 layout
    (per group: the classes with their pixel ratio, per-class IoU and the group mIoU)."""
    table_rows, previous = [], None
    for name, backbone, values in rows:
        cells = []
        for benchmark in benchmarks:
            delta = values[benchmark] - previous[benchmark] if previous is not None and "+" in name else None
            cells.append(_format_delta(values[benchmark], delta))
        table_rows.append([name, backbone, *cells])
        previous = values
    tables = [markdown_table(table_rows, ["Method", "Backbone", *benchmarks], title=f"## {title}" if title else "")]
    if comparison is not None and method_names is not None:
        for group, label in zip(GROUPS, ("Major", "Moderate", "Minor")):
            members = comparison[comparison["table_4_8_group"] == group].sort_values("rank")
            if members.empty:
                continue
            headers = [f"{n}({100 * f:.2f}%)" for n, f in zip(members["name"], members["frequency"])]
            group_rows = []
            for tag, name in zip(("baseline", "method"), method_names):
                values = members[f"iou_{tag}"].to_numpy(dtype=float) * 100
                group_mean = group_miou(members[f"iou_{tag}"], members["table_4_8_group"])[group]
                cells = ["–" if not np.isfinite(v) else f"{v:.2f}" for v in values]
                group_rows.append([name, *cells, _format_delta(group_mean, None)])
            tables.append(markdown_table(group_rows, [f"Method ({label} Class)", *headers, "mIoU(%)"]))
    return "\n\n".join(tables) + "\n"


def benchmark_name(manifest: Mapping[str, Any]) -> str:
    """Column name of the benchmark: dataset family, plus the vocabulary where one is selected."""
    vocabulary = (manifest.get("reader_kwargs") or {}).get("vocabulary")
    return f"{manifest['family']}-{vocabulary}" if vocabulary else str(manifest["family"])


def select_qualitative_samples(
    index: pd.DataFrame, class_statistics: pd.DataFrame, split: str, count: int
) -> list[int]:
    """Positions (in split order) of the ``count`` samples showing the most Table 4.8 tail classes,
    then the most classes: where closed-set add-ons are expected to differ from the baseline."""
    rows = index[index["split"] == split].reset_index(drop=True)
    tail = set(class_statistics.loc[class_statistics["table_4_8_group"] == "tail", "class_id"].astype(int))
    present = rows["classes_present"].map(lambda classes: [int(c) for c in classes])
    score = present.map(lambda classes: (len(tail.intersection(classes)), len(classes)))
    order = sorted(range(len(rows)), key=lambda i: (-score[i][0], -score[i][1], i))
    return order[: max(0, count)]


def raw_samples(
    manifest: Mapping[str, Any], index: pd.DataFrame, split: str, positions: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Undecoded (RGB uint8 image, label) pairs for display."""
    reader = create_reader(manifest["family"], manifest["root"], **(manifest.get("reader_kwargs") or {}))
    rows = index[index["split"] == split].reset_index(drop=True)
    pairs = []
    for position in positions:
        row = rows.iloc[position]
        pairs.append(reader.load_pair(Sample(row["sample_id"], row["split"], row["image_path"], row["label_path"])))
    return pairs


# --- one closed-set run as the caa / ecac pipelines run it: baseline vs the head + add-on -------------


def build_model_configs(
    manifest: dict[str, Any], class_statistics: pd.DataFrame, model: dict[str, Any], addon: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Configurations of the baseline head and of the same head with the add-on.

    ``addon``: ``name`` (``caa`` | ``ecac``), ``cfg`` (its keyword arguments) and
    ``class_weights_from_statistics``: pass the eq. 4.14 weights of ``class_statistics`` as
    ``class_weights`` (ECAC's re-weighted CE, eq. 4.13).
    """
    num_classes, ignore_index = int(manifest["num_classes"]), int(manifest["ignore_index"])
    check_class_count(class_statistics, num_classes, "class_statistics")
    addon_cfg = dict(addon.get("cfg") or {})
    if addon.get("class_weights_from_statistics", False):
        addon_cfg["class_weights"] = class_weights_from_statistics(class_statistics, num_classes)
    baseline = closed_set_model_config(model, num_classes=num_classes, ignore_index=ignore_index)
    method = closed_set_model_config(
        model, num_classes=num_classes, ignore_index=ignore_index, addon=addon["name"], addon_cfg=addon_cfg
    )
    return baseline, method


def train_model(
    model_config: dict[str, Any],
    manifest: dict[str, Any],
    index: pd.DataFrame,
    training: dict[str, Any],
    augmentation: dict[str, Any],
    checkpoint_root: str,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train one configuration (resumable); return its checkpoint and training curve."""
    return train_segmentor(model_config, manifest, index, training, augmentation, checkpoint_root)


def evaluate_model(
    checkpoint: dict[str, Any],
    manifest: dict[str, Any],
    index: pd.DataFrame,
    evaluation: dict[str, Any],
    augmentation: dict[str, Any],
) -> pd.DataFrame:
    """Closed-set (MMSeg) per-class evaluation of a checkpoint on ``evaluation.split``."""
    model = load_segmentor(checkpoint, num_classes=int(manifest["num_classes"]))
    return evaluate_segmentor(model, manifest, index, evaluation, augmentation)


def report_results(
    baseline_evaluation: pd.DataFrame,
    method_evaluation: pd.DataFrame,
    class_statistics: pd.DataFrame,
    baseline_config: dict[str, Any],
    method_config: dict[str, Any],
    manifest: dict[str, Any],
    report: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, str]:
    """Metrics (keyed by the add-on's name), the per-class comparison and the Table 3.7 / 4.7
    (+ Table 4.8) markdown."""
    comparison = compare_per_class(baseline_evaluation, method_evaluation, class_statistics)
    metrics = closed_set_metrics(baseline_evaluation, method_evaluation, comparison)
    names = (method_display_name(baseline_config), method_display_name(method_config))
    benchmark = report.get("benchmark") or benchmark_name(manifest)
    rows = [
        (name, str(config.get("backbone", "resnet50c")), {benchmark: metrics[tag]["mIoU"]})
        for name, config, tag in zip(names, (baseline_config, method_config), ("baseline", "method"))
    ]
    rows.append(("chance (uniform random)", "–", {benchmark: metrics["chance"]["mIoU"]}))
    title = (
        f"{names[1]} vs {names[0]}: closed-set mIoU (%), single scale"
        if report.get("title") is None
        else report["title"]
    )
    markdown = results_markdown(rows, [benchmark], comparison, names, title=title)
    logger.info(
        "%s mIoU %.2f, %s mIoU %.2f", names[0], metrics["baseline"]["mIoU"], names[1], metrics["method"]["mIoU"]
    )
    return {method_config["addon"]: metrics}, comparison, markdown


def plot_curves(
    baseline_curve: pd.DataFrame,
    method_curve: pd.DataFrame,
    baseline_config: dict[str, Any],
    method_config: dict[str, Any],
) -> Figure:
    """Training-loss curves of both runs."""
    return plot_training_curves(
        {
            method_display_name(baseline_config): baseline_curve,
            method_display_name(method_config): method_curve,
        }
    )


def plot_predictions(
    baseline_checkpoint: dict[str, Any],
    method_checkpoint: dict[str, Any],
    manifest: dict[str, Any],
    index: pd.DataFrame,
    class_statistics: pd.DataFrame,
    evaluation: dict[str, Any],
    augmentation: dict[str, Any],
    report: dict[str, Any],
) -> Figure:
    """Image | baseline | method | ground truth, on the evaluation images with the most tail classes."""
    split = evaluation.get("split", "val")
    positions = select_qualitative_samples(index, class_statistics, split, int(report.get("qualitative_images", 4)))
    dataset = build_split_dataset(index, manifest, split, augmentation, train=False)
    images = [dataset[p]["image"][None] for p in positions]  # one at a time: real images differ in size
    predictions = {}
    for checkpoint in (baseline_checkpoint, method_checkpoint):
        model = load_segmentor(checkpoint, num_classes=int(manifest["num_classes"]))
        name = method_display_name(checkpoint["model_config"])
        predictions[name] = [predict_labels(model, image, evaluation)[0].numpy() for image in images]
    raw = raw_samples(manifest, index, split, positions)
    return plot_qualitative(
        [image for image, _ in raw],
        [label for _, label in raw],
        predictions,
        manifest["class_names"],
        int(manifest["ignore_index"]),
    )

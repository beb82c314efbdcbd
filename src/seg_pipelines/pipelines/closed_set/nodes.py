"""Nodes of the ``caa`` / ``ecac`` pipelines: thin wrappers over ``seg_pipelines.engine.closed_set``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from seg_pipelines.engine import closed_set
from seg_pipelines.engine.figures import plot_qualitative, plot_training_curves

logger = logging.getLogger(__name__)


def build_model_configs(
    manifest: dict[str, Any], class_statistics: pd.DataFrame, model: dict[str, Any], addon: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Configurations of the baseline head and of the same head with the add-on.

    ``addon``: ``name`` (``caa`` | ``ecac``), ``cfg`` (its keyword arguments) and
    ``class_weights_from_statistics``: pass the eq. 4.14 weights of ``class_statistics`` as
    ``class_weights`` (ECAC's re-weighted CE, eq. 4.13).
    """
    num_classes, ignore_index = int(manifest["num_classes"]), int(manifest["ignore_index"])
    closed_set.check_class_count(class_statistics, num_classes, "class_statistics")
    addon_cfg = dict(addon.get("cfg") or {})
    if addon.get("class_weights_from_statistics", False):
        addon_cfg["class_weights"] = closed_set.class_weights_from_statistics(class_statistics, num_classes)
    baseline = closed_set.closed_set_model_config(model, num_classes=num_classes, ignore_index=ignore_index)
    method = closed_set.closed_set_model_config(
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
    return closed_set.train_segmentor(model_config, manifest, index, training, augmentation, checkpoint_root)


def evaluate_model(
    checkpoint: dict[str, Any],
    manifest: dict[str, Any],
    index: pd.DataFrame,
    evaluation: dict[str, Any],
    augmentation: dict[str, Any],
) -> pd.DataFrame:
    """Closed-set (MMSeg) per-class evaluation of a checkpoint on ``evaluation.split``."""
    model = closed_set.load_segmentor(checkpoint, num_classes=int(manifest["num_classes"]))
    return closed_set.evaluate_segmentor(model, manifest, index, evaluation, augmentation)


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
    comparison = closed_set.compare_per_class(baseline_evaluation, method_evaluation, class_statistics)
    metrics = closed_set.closed_set_metrics(baseline_evaluation, method_evaluation, comparison)
    names = (closed_set.method_display_name(baseline_config), closed_set.method_display_name(method_config))
    benchmark = report.get("benchmark") or closed_set.benchmark_name(manifest)
    rows = [
        (name, str(config.get("backbone", "resnet50c")), {benchmark: metrics[tag]["mIoU"]})
        for name, config, tag in zip(names, (baseline_config, method_config), ("baseline", "method"))
    ]
    title = f"{names[1]} vs {names[0]}: closed-set mIoU (%), single scale" if report.get("title") is None else report["title"]
    markdown = closed_set.results_markdown(rows, [benchmark], comparison, names, title=title)
    logger.info("%s mIoU %.2f, %s mIoU %.2f", names[0], metrics["baseline"]["mIoU"], names[1], metrics["method"]["mIoU"])
    return {method_config["addon"]: metrics}, comparison, markdown


def plot_curves(
    baseline_curve: pd.DataFrame, method_curve: pd.DataFrame, baseline_config: dict[str, Any], method_config: dict[str, Any]
) -> Figure:
    """Training-loss curves of both runs."""
    return plot_training_curves(
        {
            closed_set.method_display_name(baseline_config): baseline_curve,
            closed_set.method_display_name(method_config): method_curve,
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
    positions = closed_set.select_qualitative_samples(index, class_statistics, split, int(report.get("qualitative_images", 4)))
    dataset = closed_set.build_split_dataset(index, manifest, split, augmentation, train=False)
    images = [dataset[p]["image"][None] for p in positions]  # one at a time: real images differ in size
    predictions = {}
    for checkpoint in (baseline_checkpoint, method_checkpoint):
        model = closed_set.load_segmentor(checkpoint, num_classes=int(manifest["num_classes"]))
        name = closed_set.method_display_name(checkpoint["model_config"])
        predictions[name] = [closed_set.predict_labels(model, image, evaluation)[0].numpy() for image in images]
    raw = closed_set.raw_samples(manifest, index, split, positions)
    return plot_qualitative(
        [image for image, _ in raw], [label for _, label in raw], predictions, manifest["class_names"], int(manifest["ignore_index"])
    )

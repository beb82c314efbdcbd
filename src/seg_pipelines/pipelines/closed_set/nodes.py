"""Nodes of the ``caa`` / ``ecac`` / ``closed_set`` pipelines (baseline head vs the head + add-on,
same seed and budget). Each validates its parameter blocks into :mod:`seg_pipelines.parameters`'
models (Kedro does it from the annotations before the run; ``.of`` again for direct calls) and calls
:mod:`seg_pipelines.experiments.closed_set`, imported in the body so registration needs no torch."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.parameters import Addon, Augmentation, ClosedSetModel, ClosedSetTraining, Evaluation


def build_model_configs(
    manifest: dict[str, Any], class_statistics: pd.DataFrame, model: ClosedSetModel, addon: Addon
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Configurations of the baseline head and of the same head with the add-on."""
    from seg_pipelines.experiments import closed_set

    return closed_set.build_model_configs(manifest, class_statistics, ClosedSetModel.of(model), Addon.of(addon))


def train_model(
    model_config: dict[str, Any],
    manifest: dict[str, Any],
    index: pd.DataFrame,
    training: ClosedSetTraining,
    augmentation: Augmentation,
    checkpoint_root: str,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train one configuration (resumable): its checkpoint and training curve."""
    from seg_pipelines.experiments import closed_set

    return closed_set.train_model(
        model_config,
        manifest,
        index,
        ClosedSetTraining.of(training),
        Augmentation.of(augmentation),
        checkpoint_root,
    )


def evaluate_model(
    checkpoint: dict[str, Any],
    manifest: dict[str, Any],
    index: pd.DataFrame,
    evaluation: Evaluation,
    augmentation: Augmentation,
) -> pd.DataFrame:
    """Closed-set (MMSeg) per-class IoU of a checkpoint on ``evaluation.split``."""
    from seg_pipelines.experiments import closed_set

    return closed_set.evaluate_model(
        checkpoint, manifest, index, Evaluation.of(evaluation), Augmentation.of(augmentation)
    )


def report_results(
    baseline_evaluation: pd.DataFrame,
    method_evaluation: pd.DataFrame,
    class_statistics: pd.DataFrame,
    baseline_config: dict[str, Any],
    method_config: dict[str, Any],
    manifest: dict[str, Any],
    report: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, str]:
    """Metrics, the per-class comparison and the Table 3.7 / 4.7 markdown."""
    from seg_pipelines.experiments import closed_set

    return closed_set.report_results(
        baseline_evaluation, method_evaluation, class_statistics, baseline_config, method_config, manifest, report
    )


def plot_curves(
    baseline_curve: pd.DataFrame,
    method_curve: pd.DataFrame,
    baseline_config: dict[str, Any],
    method_config: dict[str, Any],
) -> Any:
    """Training-loss curves of both runs (a matplotlib figure)."""
    from seg_pipelines.experiments import closed_set

    return closed_set.plot_curves(baseline_curve, method_curve, baseline_config, method_config)


def plot_predictions(
    baseline_checkpoint: dict[str, Any],
    method_checkpoint: dict[str, Any],
    manifest: dict[str, Any],
    index: pd.DataFrame,
    class_statistics: pd.DataFrame,
    evaluation: Evaluation,
    augmentation: Augmentation,
    report: dict[str, Any],
) -> Any:
    """Image | baseline | method | ground truth on the images with the most tail classes (a figure)."""
    from seg_pipelines.experiments import closed_set

    return closed_set.plot_predictions(
        baseline_checkpoint,
        method_checkpoint,
        manifest,
        index,
        class_statistics,
        Evaluation.of(evaluation),
        Augmentation.of(augmentation),
        report,
    )

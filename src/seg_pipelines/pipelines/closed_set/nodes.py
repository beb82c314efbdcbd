"""Nodes of the ``caa`` / ``ecac`` / ``closed_set`` pipelines (baseline head vs the head + add-on,
same seed and budget); the work is in :mod:`seg_pipelines.experiments.closed_set`."""

from seg_pipelines.experiments.closed_set import (
    build_model_configs,
    evaluate_model,
    plot_curves,
    plot_predictions,
    report_results,
    train_model,
)

__all__ = ["build_model_configs", "evaluate_model", "plot_curves", "plot_predictions", "report_results", "train_model"]

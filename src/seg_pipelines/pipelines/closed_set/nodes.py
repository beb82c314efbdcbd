"""Nodes of the ``caa`` / ``ecac`` / ``closed_set`` pipelines (baseline head vs the head + add-on,
same seed and budget); the work is in :mod:`seg_pipelines.experiments.closed_set`.
(imported when a node first runs: :mod:`seg_pipelines.pipelines.lazy`)."""

from seg_pipelines.pipelines.lazy import lazy

EXPERIMENT = "seg_pipelines.experiments.closed_set"
build_model_configs = lazy(EXPERIMENT, "build_model_configs")
evaluate_model = lazy(EXPERIMENT, "evaluate_model")
plot_curves = lazy(EXPERIMENT, "plot_curves")
plot_predictions = lazy(EXPERIMENT, "plot_predictions")
report_results = lazy(EXPERIMENT, "report_results")
train_model = lazy(EXPERIMENT, "train_model")

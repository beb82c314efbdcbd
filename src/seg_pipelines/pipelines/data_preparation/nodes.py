"""Nodes of ``data_preparation``; the work is in :mod:`seg_pipelines.datasets.preparation`.
(imported when a node first runs: :mod:`seg_pipelines.pipelines.lazy`)."""

from seg_pipelines.pipelines.lazy import lazy

EXPERIMENT = "seg_pipelines.datasets.preparation"
build_prepared_index = lazy(EXPERIMENT, "build_prepared_index")
compute_statistics = lazy(EXPERIMENT, "compute_statistics")
plot_overview = lazy(EXPERIMENT, "plot_overview")
prepare_raw_dataset = lazy(EXPERIMENT, "prepare_raw_dataset")

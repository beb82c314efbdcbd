"""Nodes of ``data_preparation``; the work is in :mod:`seg_pipelines.datasets.preparation`."""

from seg_pipelines.datasets.preparation import (
    build_prepared_index,
    compute_statistics,
    plot_overview,
    prepare_raw_dataset,
)

__all__ = ["build_prepared_index", "compute_statistics", "plot_overview", "prepare_raw_dataset"]

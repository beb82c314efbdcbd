"""Nodes of ``data_preparation``: raw dataset → prepared index → class statistics → overview figure.
The work is in :mod:`seg_pipelines.experiments.data_preparation`, imported in each body (registration needs
no torch); ``dataset`` and ``class_statistics`` arrive as :mod:`seg_pipelines.parameters` models."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.parameters import ClassStatistics, Dataset, Preparation


def prepare_raw_dataset(dataset: Dataset, synthetic_world: dict[str, Any]) -> dict[str, Any]:
    """The dataset's manifest (the synthetic world is rendered first when it is the family)."""
    from seg_pipelines.experiments import data_preparation

    return data_preparation.prepare_raw_dataset(Dataset.of(dataset), synthetic_world)


def build_prepared_index(manifest: dict[str, Any], preparation: Preparation) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per sample (paths, split, classes present, pixel counts) and the preparation report
    (``preparation.on_bad_sample``: raise, or skip and list the bad samples)."""
    from seg_pipelines.experiments import data_preparation

    return data_preparation.build_prepared_index(manifest, Preparation.of(preparation).on_bad_sample)


def compute_statistics(
    index: pd.DataFrame, manifest: dict[str, Any], statistics: ClassStatistics
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Class frequencies, head/mid/tail groups and eq. 4.14 weights."""
    from seg_pipelines.experiments import data_preparation

    return data_preparation.compute_statistics(index, manifest, ClassStatistics.of(statistics))


def plot_overview(
    manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame, preparation: Preparation
) -> Any:
    """``preparation.overview_images`` sample images with their labels and the class-frequency plot
    (a matplotlib figure)."""
    from seg_pipelines.experiments import data_preparation

    return data_preparation.plot_overview(
        manifest, index, class_statistics, Preparation.of(preparation).overview_images
    )

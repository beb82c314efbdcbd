"""Nodes of ``ecac_ablations``: per thesis table (4.2-4.5, 4.7, 4.8) one node per (variant, seed) and a
summary node, the Figure 4.7 t-SNE and the chapter's report, run by
:mod:`seg_pipelines.experiments.ecac_ablations` (registration imports no torch)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pandas as pd

from seg_pipelines.parameters import ClosedSetAblations
from seg_pipelines.pipelines.ablation_fanout import ClosedSetSummary, ClosedSetVariant


class ECACVariant(ClosedSetVariant):
    """One row × seed slot of a chapter 4 table, trained and evaluated: its record."""

    @staticmethod
    def experiment() -> ModuleType:
        from seg_pipelines.experiments import ecac_ablations

        return ecac_ablations


class ECACSummary(ClosedSetSummary):
    """A chapter 4 table from its records: (table, runs, markdown, metrics)."""

    experiment = staticmethod(ECACVariant.experiment)


def plot_feature_tsne(
    params: ClosedSetAblations, manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame
) -> tuple[Any, dict[str, float]]:
    """Figure 4.7 (a matplotlib figure) and the silhouette score of each feature space."""
    from seg_pipelines.experiments import ecac_ablations

    params = ClosedSetAblations.of(params).plain()
    return ecac_ablations.plot_feature_tsne(params, manifest, index, class_statistics)


def combine_markdown(params: ClosedSetAblations, figure_metrics: dict[str, float], *items: Any) -> str:
    """The chapter's tables (markdown, then metrics) with its verdict counts and Figure 4.7."""
    from seg_pipelines.experiments import ecac_ablations

    return ecac_ablations.combine_markdown(params, figure_metrics, *items)

"""Nodes of ``caa_ablations``: per thesis table one node per (variant, seed) and a summary node, built
by :mod:`seg_pipelines.experiments.caa_ablations` when they run (registration imports no torch)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.parameters import ClosedSetAblations
from seg_pipelines.pipelines.ablation_fanout import SummaryNode, VariantNode


class CAAVariant(VariantNode):
    """One row × seed slot of a chapter 3 table, trained and evaluated: its record."""

    def __call__(
        self, params: ClosedSetAblations, manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame
    ) -> dict[str, Any]:
        from seg_pipelines.experiments import caa_ablations

        params = ClosedSetAblations.of(params).plain()  # the ablation runner edits settings by path: plain dicts
        node = caa_ablations.variant_node(self.table, self.row, self.seed_slot)
        return node(params, manifest, index, class_statistics)


class CAASummary(SummaryNode):
    """A chapter 3 table from its records: (table, runs, markdown, metrics)."""

    def __call__(
        self, params: ClosedSetAblations, manifest: dict[str, Any], class_statistics: pd.DataFrame, *records: dict
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
        from seg_pipelines.experiments import caa_ablations

        params = ClosedSetAblations.of(params).plain()
        node = caa_ablations.summary_node(self.table, self.row_slots, self.seed_slots)
        return node(params, manifest, class_statistics, *records)


def chapter_report(params: ClosedSetAblations, *items: Any) -> str:
    """The chapter's tables (markdown, then metrics) in one file with its verdict counts."""
    from seg_pipelines.experiments import caa_ablations

    return caa_ablations.chapter_report(ClosedSetAblations.of(params), *items)

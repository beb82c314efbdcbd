"""Nodes of ``ecac_ablations``: per thesis table (4.2-4.5, 4.7, 4.8) one node per (variant, seed)
and a summary node, and the Figure 4.7 t-SNE; the work is in
:mod:`seg_pipelines.experiments.ecac_ablations`."""

from __future__ import annotations

from seg_pipelines.experiments.closed_set_ablations import ClosedSetSummaryNode, ClosedSetVariantNode, table_layout
from seg_pipelines.experiments.ecac_ablations import build_table, combine_markdown, plot_feature_tsne, report_table

__all__ = ["combine_markdown", "plot_feature_tsne", "rows", "summary_node", "variant_node"]

PIPELINE = "ecac_ablations"


def rows(table: str) -> list[str]:
    """The rows of thesis Table ``table`` the pipeline builds nodes for."""
    return table_layout(build_table, table)


def variant_node(table: str):
    """``(row, seed_slot) -> node function`` of thesis Table ``table``."""
    return lambda row, slot: ClosedSetVariantNode(build_table, table, row, slot, PIPELINE, "ecac")


def summary_node(table: str, seed_slots: int) -> ClosedSetSummaryNode:
    """The summary node function of thesis Table ``table`` (table CSV, runs CSV, markdown, metrics)."""
    return ClosedSetSummaryNode(build_table, table, PIPELINE, len(rows(table)), seed_slots, report_table)

"""Nodes of the ``lsmseg_ablations`` pipeline: per thesis table one node per (row, seed) and a
summary node (:class:`~seg_pipelines.experiments.lsmseg_ablations.LSMSegVariantNode`,
:class:`~seg_pipelines.experiments.lsmseg_ablations.LSMSegSummaryNode`)."""

from __future__ import annotations

from seg_pipelines.experiments.lsmseg_ablations import TABLES, LSMSegSummaryNode, LSMSegVariantNode

__all__ = ["TABLES", "rows", "summary_node", "variant_node"]


def rows(table: str) -> list[str]:
    """The rows of thesis Table ``table`` (fixed by the thesis; the configuration must list them)."""
    return list(TABLES[table].rows)


def variant_node(table: str):
    """``(row, seed_slot) -> node function`` of thesis Table ``table``."""
    return lambda row, slot: LSMSegVariantNode(table, row, slot)


def summary_node(table: str, seed_slots: int) -> LSMSegSummaryNode:
    return LSMSegSummaryNode(table, seed_slots)

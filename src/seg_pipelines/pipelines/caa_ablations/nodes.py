"""Nodes of ``caa_ablations``: per thesis table one node per (variant, seed) and a summary node
(thin wrappers over :mod:`seg_pipelines.experiments.closed_set_ablations`)."""

from __future__ import annotations

from seg_pipelines.engine.ablations import chapter_markdown
from seg_pipelines.experiments.caa_ablations import build_table
from seg_pipelines.experiments.closed_set_ablations import ClosedSetSummaryNode, ClosedSetVariantNode, table_layout

PIPELINE = "caa_ablations"


def rows(table: str) -> list[str]:
    """The rows of thesis Table ``table`` the pipeline builds nodes for."""
    return table_layout(build_table, table)


def variant_node(table: str):
    """``(row, seed_slot) -> node function`` of thesis Table ``table``."""
    return lambda row, slot: ClosedSetVariantNode(build_table, table, row, slot, PIPELINE, "caa")


def summary_node(table: str, seed_slots: int) -> ClosedSetSummaryNode:
    """The summary node function of thesis Table ``table`` (table CSV, runs CSV, markdown, metrics)."""
    return ClosedSetSummaryNode(build_table, table, PIPELINE, len(rows(table)), seed_slots)


def combine_markdown(params: dict, *items) -> str:
    """All tables of the chapter in one markdown file, with the chapter's verdict counts
    (``items``: the tables' markdown, then their metrics, in the same order)."""
    half = len(items) // 2
    rule = (params.get("report") or {}).get("verdict_rule", "t95")
    return chapter_markdown("Chapter 3 ablations (CAA)", items[:half], items[half:], rule)

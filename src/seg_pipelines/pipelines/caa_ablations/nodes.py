"""Nodes of ``caa_ablations``: per thesis table one node per (variant, seed) and a summary node,
built on their first call from :mod:`seg_pipelines.experiments.caa_ablations` (registration imports
no torch: :mod:`seg_pipelines.pipelines.lazy`; row labels from :mod:`~seg_pipelines.pipelines.ablation_layouts`)."""

from __future__ import annotations

from seg_pipelines.engine.ablations import chapter_markdown
from seg_pipelines.pipelines.ablation_layouts import CLOSED_SET_ROWS
from seg_pipelines.pipelines.lazy import LazyNode

PIPELINE = "caa_ablations"
EXPERIMENT = "seg_pipelines.experiments.caa_ablations"
NODE_CLASSES = "seg_pipelines.experiments.closed_set_ablations"
VARIANT, SUMMARY = (NODE_CLASSES, "ClosedSetVariantNode"), (NODE_CLASSES, "ClosedSetSummaryNode")
TABLE_IDS = tuple(CLOSED_SET_ROWS[PIPELINE])


def rows(table: str) -> list[str]:
    """The rows of thesis Table ``table`` the pipeline builds nodes for."""
    return list(CLOSED_SET_ROWS[PIPELINE][table])


def variant_node(table: str):
    """``(row, seed_slot) -> node function`` of thesis Table ``table``."""
    return lambda row, slot: LazyNode(
        EXPERIMENT,
        "variant_node",
        (table, row, slot),
        (NODE_CLASSES, "ClosedSetVariantNode"),
        f"run_{PIPELINE}_variant",
    )


def summary_node(table: str, seed_slots: int) -> LazyNode:
    """The summary node function of thesis Table ``table`` (table CSV, runs CSV, markdown, metrics)."""
    args = (table, len(rows(table)), seed_slots)
    return LazyNode(EXPERIMENT, "summary_node", args, SUMMARY, f"summarise_{PIPELINE}")


def combine_markdown(params: dict, *items) -> str:
    """All tables of the chapter in one markdown file, with the chapter's verdict counts
    (``items``: the tables' markdown, then their metrics, in the same order)."""
    half = len(items) // 2
    rule = (params.get("report") or {}).get("verdict_rule", "t95")
    return chapter_markdown("Chapter 3 ablations (CAA)", items[:half], items[half:], rule)

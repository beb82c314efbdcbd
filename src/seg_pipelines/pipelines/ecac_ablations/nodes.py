"""Nodes of ``ecac_ablations``: per thesis table (4.2-4.5, 4.7, 4.8) one node per (variant, seed)
and a summary node, and the Figure 4.7 t-SNE; built or imported on their first call from
:mod:`seg_pipelines.experiments.ecac_ablations` (registration imports no torch:
:mod:`seg_pipelines.pipelines.lazy`; row labels from :mod:`~seg_pipelines.pipelines.ablation_layouts`)."""

from __future__ import annotations

from seg_pipelines.pipelines.ablation_layouts import CLOSED_SET_ROWS
from seg_pipelines.pipelines.lazy import LazyNode, lazy

PIPELINE = "ecac_ablations"
EXPERIMENT = "seg_pipelines.experiments.ecac_ablations"
NODE_CLASSES = "seg_pipelines.experiments.closed_set_ablations"
VARIANT, SUMMARY = (NODE_CLASSES, "ClosedSetVariantNode"), (NODE_CLASSES, "ClosedSetSummaryNode")
ALL_TABLE_IDS = tuple(CLOSED_SET_ROWS[PIPELINE])

combine_markdown = lazy(EXPERIMENT, "combine_markdown")
plot_feature_tsne = lazy(EXPERIMENT, "plot_feature_tsne")


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

"""Nodes of the ``lsmseg_ablations`` pipeline: per thesis table one node per (row, seed) and a
summary node (:class:`~seg_pipelines.experiments.lsmseg_ablations.LSMSegVariantNode`,
:class:`~seg_pipelines.experiments.lsmseg_ablations.LSMSegSummaryNode`), built on their first call
(registration imports no torch: :mod:`seg_pipelines.pipelines.lazy`; tables and rows from
:mod:`~seg_pipelines.pipelines.ablation_layouts`)."""

from __future__ import annotations

from seg_pipelines.pipelines.ablation_layouts import LSMSEG_TABLES
from seg_pipelines.pipelines.lazy import LazyNode

EXPERIMENT = "seg_pipelines.experiments.lsmseg_ablations"
TABLES = LSMSEG_TABLES  # thesis table -> (key, rows)
VARIANT, SUMMARY = (EXPERIMENT, "LSMSegVariantNode"), (EXPERIMENT, "LSMSegSummaryNode")


def rows(table: str) -> list[str]:
    """The rows of thesis Table ``table`` (fixed by the thesis; the configuration must list them)."""
    return list(TABLES[table][1])


def variant_node(table: str):
    """``(row, seed_slot) -> node function`` of thesis Table ``table``."""
    return lambda row, slot: LazyNode(EXPERIMENT, VARIANT[1], (table, row, slot), VARIANT, "run_lsmseg_ablation")


def summary_node(table: str, seed_slots: int) -> LazyNode:
    return LazyNode(
        EXPERIMENT,
        "LSMSegSummaryNode",
        (table, seed_slots),
        (EXPERIMENT, "LSMSegSummaryNode"),
        "summarise_lsmseg_ablation",
    )

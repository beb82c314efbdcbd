"""Nodes of ``caa_ablations``: one per thesis table (thin wrappers over
:mod:`seg_pipelines.experiments.closed_set_ablations`)."""

from __future__ import annotations

from seg_pipelines.experiments.caa_ablations import build_table
from seg_pipelines.experiments.closed_set_ablations import closed_set_table_node


def table_node(table: str):
    """Node function of thesis Table ``table``: (table CSV, per-seed runs CSV, markdown, metrics)."""
    return closed_set_table_node(build_table, table, "caa_ablations", "caa")


def combine_markdown(*tables: str) -> str:
    """All tables of the chapter in one markdown file."""
    return "# Chapter 3 ablations (CAA)\n\n" + "\n".join(tables)

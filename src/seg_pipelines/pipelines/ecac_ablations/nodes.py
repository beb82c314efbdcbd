"""Nodes of ``ecac_ablations``: Tables 4.2-4.5, 4.7 (one node each), the per-class Table 4.8 and
the Figure 4.7 t-SNE; the work is in :mod:`seg_pipelines.experiments.ecac_ablations`."""

from __future__ import annotations

from seg_pipelines.experiments.closed_set_ablations import closed_set_table_node
from seg_pipelines.experiments.ecac_ablations import build_table, combine_markdown, plot_feature_tsne, run_table_4_8

__all__ = ["combine_markdown", "plot_feature_tsne", "run_table_4_8", "table_node"]


def table_node(table: str):
    """Node function of thesis Table ``table``: (table CSV, per-seed runs CSV, markdown, metrics)."""
    return closed_set_table_node(build_table, table, "ecac_ablations", "ecac")

"""Nodes of ``caa_ablations``: per thesis table one node per (variant, seed) and a summary node,
built on their first call from :mod:`seg_pipelines.experiments.caa_ablations` (registration imports
no torch: :mod:`seg_pipelines.pipelines.lazy`; row labels from :mod:`~seg_pipelines.pipelines.ablation_layouts`)."""

from __future__ import annotations

from seg_pipelines.engine.ablations import chapter_markdown
from seg_pipelines.pipelines.ablation_fanout import ClosedSetTableNodes
from seg_pipelines.pipelines.ablation_layouts import CLOSED_SET_ROWS

PIPELINE = "caa_ablations"
EXPERIMENT = "seg_pipelines.experiments.caa_ablations"
TABLE_IDS = tuple(CLOSED_SET_ROWS[PIPELINE])
TABLES = ClosedSetTableNodes(PIPELINE, EXPERIMENT)
rows, variant_node, summary_node = TABLES.rows, TABLES.variant_node, TABLES.summary_node


def combine_markdown(params: dict, *items) -> str:
    """All tables of the chapter in one markdown file, with the chapter's verdict counts
    (``items``: the tables' markdown, then their metrics, in the same order)."""
    half = len(items) // 2
    rule = (params.get("report") or {}).get("verdict_rule", "t95")
    return chapter_markdown("Chapter 3 ablations (CAA)", items[:half], items[half:], rule)

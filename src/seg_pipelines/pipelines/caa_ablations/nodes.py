"""Nodes of ``caa_ablations``: per thesis table one node per (variant, seed) and a summary node,
built on their first call from :mod:`seg_pipelines.experiments.caa_ablations` (registration imports
no torch: :mod:`seg_pipelines.pipelines.lazy`; row labels from :mod:`~seg_pipelines.pipelines.ablation_layouts`)."""

from __future__ import annotations

from seg_pipelines.pipelines.ablation_fanout import ClosedSetTableNodes
from seg_pipelines.pipelines.ablation_layouts import CLOSED_SET_ROWS

PIPELINE = "caa_ablations"
EXPERIMENT = "seg_pipelines.experiments.caa_ablations"
TABLE_IDS = tuple(CLOSED_SET_ROWS[PIPELINE])
TABLES = ClosedSetTableNodes(PIPELINE, EXPERIMENT)
rows, variant_node, summary_node = TABLES.rows, TABLES.variant_node, TABLES.summary_node

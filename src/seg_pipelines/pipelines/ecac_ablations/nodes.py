"""Nodes of ``ecac_ablations``: per thesis table (4.2-4.5, 4.7, 4.8) one node per (variant, seed)
and a summary node, and the Figure 4.7 t-SNE; built or imported on their first call from
:mod:`seg_pipelines.experiments.ecac_ablations` (registration imports no torch:
:mod:`seg_pipelines.pipelines.lazy`; row labels from :mod:`~seg_pipelines.pipelines.ablation_layouts`)."""

from __future__ import annotations

from seg_pipelines.pipelines.ablation_fanout import ClosedSetTableNodes
from seg_pipelines.pipelines.ablation_layouts import CLOSED_SET_ROWS
from seg_pipelines.pipelines.lazy import lazy

PIPELINE = "ecac_ablations"
EXPERIMENT = "seg_pipelines.experiments.ecac_ablations"
ALL_TABLE_IDS = tuple(CLOSED_SET_ROWS[PIPELINE])

combine_markdown = lazy(EXPERIMENT, "combine_markdown")
plot_feature_tsne = lazy(EXPERIMENT, "plot_feature_tsne")


TABLES = ClosedSetTableNodes(PIPELINE, EXPERIMENT)
rows, variant_node, summary_node = TABLES.rows, TABLES.variant_node, TABLES.summary_node

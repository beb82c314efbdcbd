"""Nodes of the ``lsmseg_ablations`` pipeline: per thesis table one node per (row, seed) and a summary
node, run by :mod:`seg_pipelines.experiments.lsmseg_ablations` (registration imports no torch)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.parameters import LSMSegAblations
from seg_pipelines.pipelines.ablation_fanout import SummaryNode, VariantNode


class LSMSegVariant(VariantNode):
    """One row × seed slot of a chapter 5 table, trained and evaluated: its record."""

    def __call__(
        self,
        index: pd.DataFrame,
        manifest: dict[str, Any],
        tiny_clip_config: dict[str, Any],
        tiny_clip_checkpoint: str,
        prompt_set: dict[str, Any] | None,
        params: LSMSegAblations,
        tiny_sam_config: dict[str, Any],
        tiny_sam_checkpoint: str,
        tiny_sam_l_config: dict[str, Any],
        tiny_sam_l_checkpoint: str,
    ) -> dict[str, Any]:
        from seg_pipelines.experiments import lsmseg_ablations

        params = LSMSegAblations.of(params).plain()  # the ablation runner edits settings by path: plain dicts
        node = lsmseg_ablations.LSMSegVariantNode(self.table, self.row, self.seed_slot)
        return node(
            index,
            manifest,
            tiny_clip_config,
            tiny_clip_checkpoint,
            prompt_set,
            params,
            tiny_sam_config,
            tiny_sam_checkpoint,
            tiny_sam_l_config,
            tiny_sam_l_checkpoint,
        )


class LSMSegSummary(SummaryNode):
    """A chapter 5 table from its records: (table, markdown, runs, metrics); every row has its node."""

    outputs = ("summary", "md", "runs", "metrics")

    def __call__(
        self, manifest: dict[str, Any], prompt_set: dict[str, Any] | None, params: LSMSegAblations, *records: dict
    ) -> tuple[pd.DataFrame, str, pd.DataFrame, dict[str, float]]:
        from seg_pipelines.experiments import lsmseg_ablations

        params = LSMSegAblations.of(params).plain()
        node = lsmseg_ablations.LSMSegSummaryNode(self.table, self.seed_slots)
        return node(manifest, prompt_set, params, *records)


def chapter_report(params: LSMSegAblations, *items: Any) -> str:
    """The chapter's tables (markdown, then metrics) in one file with its verdict counts."""
    from seg_pipelines.experiments import lsmseg_ablations

    return lsmseg_ablations.chapter_report(LSMSegAblations.of(params), *items)

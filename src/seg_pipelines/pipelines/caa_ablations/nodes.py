"""Nodes of ``caa_ablations``: per thesis table one node per (variant, seed) and a summary node, built
by :mod:`seg_pipelines.experiments.caa_ablations` when they run (registration imports no torch)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from seg_pipelines.parameters import ClosedSetAblations
from seg_pipelines.pipelines.ablation_fanout import ClosedSetSummary, ClosedSetVariant


class CAAVariant(ClosedSetVariant):
    """One row × seed slot of a chapter 3 table, trained and evaluated: its record."""

    @staticmethod
    def experiment() -> ModuleType:
        from seg_pipelines.experiments import caa_ablations

        return caa_ablations


class CAASummary(ClosedSetSummary):
    """A chapter 3 table from its records: (table, runs, markdown, metrics)."""

    experiment = staticmethod(CAAVariant.experiment)


def chapter_report(params: ClosedSetAblations, *items: Any) -> str:
    """The chapter's tables (markdown, then metrics) in one file with its verdict counts."""
    from seg_pipelines.experiments import caa_ablations

    return caa_ablations.chapter_report(ClosedSetAblations.of(params), *items)

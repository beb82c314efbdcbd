"""Kedro fan-out of the thesis ablation tables: one template for the three ablation chapters.

A chapter's pipeline (:func:`ablation_pipeline`) has, per table of
:func:`seg_pipelines.thesis_tables.ablation_tables`, a pipeline namespaced ``<chapter>.<table key>``
(``caa_ablations.table_3_2``): nodes ``<row>_seed<k>`` each write the record of one training +
evaluation (``<chapter>.<table>.<row>_seed<k>_result``, a JSON file: catalog pattern per chapter),
and ``summary`` turns the records into the thesis table (``<chapter>_<table>_<output>`` datasets, one
``{table}`` catalog pattern per output). So ``--runner=ParallelRunner``, ``--nodes``,
``--from-nodes`` and deployment plugins (one job per node) run the variants independently; a
finished setting is reused by its settings hash (``engine.ablations.ResultCache``), not by node;
variant nodes are tagged ``training`` (one GPU each under ``DaskRunner``). The
chapter's report node ``<chapter>_report`` puts every table in one markdown file.

Rows are the table's rows under the default parameters and seeds are ``seed_slots`` slots (the
pipeline is built before parameters are read); a slot the run's parameters leave empty is skipped,
and more rows or seeds than slots is an error naming the key.

Node functions are :class:`VariantNode` / :class:`SummaryNode` subclasses in the chapter's
``nodes.py`` whose ``__call__`` imports the experiment module (registration imports no torch); they
pickle as their fields (``ParallelRunner``) and Kedro checks the node inputs against ``__call__``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pandas as pd
from kedro.pipeline import Node, Pipeline

from seg_pipelines.parameters import ClosedSetAblations
from seg_pipelines.thesis_tables import ablation_tables, slot_names
from seg_pipelines.thesis_tables import seed_slots as configured_seed_slots

# Tag of the nodes that train a model: a cluster runner gives their tasks the worker resources a
# training needs (seg_pipelines.runners.DaskRunner's ``training_resources``, e.g. one GPU).
TRAINING_TAG = "training"


class KedroCallable:
    """Makes a node-function object read like a function to Kedro's parameter validation, which takes
    a node's hints from ``typing.get_type_hints(node.func)``: for an object, its ``__annotations__``
    resolved in its ``__globals__``. Each subclass that defines ``__call__`` exposes that method's, so
    the parameter block its ``__call__`` annotates is validated before the run's first node."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None:
            cls.__annotations__ = dict(call.__annotations__)
            cls.__globals__ = call.__globals__


@dataclass(frozen=True)
class VariantNode(KedroCallable):
    """Base of a chapter's variant node function: row ``row`` (index), seed slot ``seed_slot`` of thesis
    Table ``table``; the subclass's ``__call__`` returns the run's record."""

    table: str
    row: int
    seed_slot: int


@dataclass(frozen=True)
class SummaryNode(KedroCallable):
    """Base of a chapter's summary node function of thesis Table ``table`` built with ``row_slots`` row
    and ``seed_slots`` seed nodes; ``__call__`` returns :attr:`outputs` in that order."""

    outputs = ("summary", "runs", "md", "metrics")  # a class constant, not a field

    table: str
    row_slots: int
    seed_slots: int


class ClosedSetVariant(VariantNode):
    """One row × seed slot of a chapter 3 or 4 table, trained and evaluated: its record. A chapter's
    subclass names its experiment module in :meth:`experiment` (imported on the call)."""

    @staticmethod
    def experiment() -> ModuleType:
        raise NotImplementedError

    def __call__(
        self, params: ClosedSetAblations, manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame
    ) -> dict[str, Any]:
        node = self.experiment().variant_node(self.table, self.row, self.seed_slot)
        # the ablation runner edits settings by path: it takes the block's plain view (defaults filled)
        return node(ClosedSetAblations.of(params).plain(), manifest, index, class_statistics)


class ClosedSetSummary(SummaryNode):
    """A chapter 3 or 4 table from its records: (table, runs, markdown, metrics)."""

    @staticmethod
    def experiment() -> ModuleType:
        raise NotImplementedError

    def __call__(
        self, params: ClosedSetAblations, manifest: dict[str, Any], class_statistics: pd.DataFrame, *records: dict
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
        node = self.experiment().summary_node(self.table, self.row_slots, self.seed_slots)
        return node(ClosedSetAblations.of(params).plain(), manifest, class_statistics, *records)


def ablation_pipeline(
    chapter: str,
    *,
    variant: type[VariantNode],
    summary: type[SummaryNode],
    variant_inputs: Sequence[str],
    summary_inputs: Sequence[str],
    report: Callable[..., str],
    report_inputs: Sequence[str] = (),
    extra_nodes: Sequence[Node] = (),
    seed_slots: int | None = None,
) -> Pipeline:
    """The pipeline of ablation chapter ``chapter``: every table of the chapter fanned out
    (``variant(table, row, slot)`` on ``variant_inputs``; ``summary(table, rows, slots)`` on
    ``summary_inputs`` then every record, row-major), ``extra_nodes`` and the report node
    ``report(params, *report_inputs, *markdowns, *metrics)`` into ``<chapter>_report_md``.
    ``seed_slots``: seed nodes per row (default :func:`~seg_pipelines.thesis_tables.seed_slots`)."""
    slots = configured_seed_slots() if seed_slots is None else seed_slots
    tables = ablation_tables(chapter)
    pipeline = Pipeline([])
    for table in tables:
        nodes, records = [], []
        for row, name in enumerate(slot_names(table.rows)):
            for slot in range(slots):
                record = f"{name}_seed{slot}_result"
                records.append(record)
                nodes.append(
                    Node(
                        variant(table.id, row, slot),
                        inputs=list(variant_inputs),
                        outputs=record,
                        name=f"{name}_seed{slot}",
                        tags={TRAINING_TAG},
                    )
                )
        outputs = {output: f"{chapter}_{table.key}_{output}" for output in summary.outputs}
        nodes.append(
            Node(
                summary(table.id, len(table.rows), slots),
                inputs=[*summary_inputs, *records],
                outputs=list(outputs),
                name="summary",
            )
        )
        inputs = (*variant_inputs, *summary_inputs)
        pipeline += Pipeline(
            nodes,
            namespace=f"{chapter}.{table.key}",
            inputs={i for i in inputs if not i.startswith("params:")},
            parameters={i for i in inputs if i.startswith("params:")},
            outputs=outputs,
            tags={chapter, "ablations", f"{chapter}_{table.key}"},
        )
    report_node = Node(
        report,
        inputs=[
            f"params:{chapter}",
            *report_inputs,
            *[f"{chapter}_{t.key}_md" for t in tables],
            *[f"{chapter}_{t.key}_metrics" for t in tables],
        ],
        outputs=f"{chapter}_report_md",
        name=f"{chapter}_report",
    )
    return pipeline + Pipeline([*extra_nodes, report_node], tags={chapter, "ablations"})

"""Kedro fan-out of a thesis ablation table: one node per (variant, seed), one summary node.

A table's pipeline is namespaced ``<chapter>.<table key>`` (``caa_ablations.table_3_2``): nodes
``<row>_seed<k>`` each write the record of one training + evaluation
(``<chapter>.<table>.<row>_seed<k>_result``, a JSON file: catalog pattern per chapter), and
``summary`` turns the records into the thesis table. So ``--runner=ParallelRunner``, ``--nodes``,
``--from-nodes`` and deployment plugins (one job per node) run the variants independently; a
finished setting is reused by its settings hash (``engine.ablations.ResultCache``), not by node.

Rows are the table's rows under the default parameters and seeds are ``seed_slots`` slots (the
pipeline is built before parameters are read); a slot the run's parameters leave empty is skipped,
and more rows or seeds than slots is an error naming the key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kedro.pipeline import Node, Pipeline

from seg_pipelines.engine.ablations import ChapterReport, slot_names
from seg_pipelines.pipelines.ablation_layouts import CLOSED_SET_ROWS
from seg_pipelines.pipelines.lazy import LazyNode

CLOSED_SET_NODE_CLASSES = "seg_pipelines.experiments.closed_set_ablations"


@dataclass(frozen=True)
class ClosedSetTableNodes:
    """The node functions of a closed-set ablation chapter (``caa_ablations``, ``ecac_ablations``): rows
    from :data:`~seg_pipelines.pipelines.ablation_layouts.CLOSED_SET_ROWS`, variant and summary nodes built
    on their first call by ``experiment``'s ``variant_node`` / ``summary_node`` factories (objects of
    ``ClosedSetVariantNode`` / ``ClosedSetSummaryNode``, whose ``__call__`` gives the node's signature)."""

    pipeline: str
    experiment: str

    def rows(self, table: str) -> list[str]:
        """The rows of thesis Table ``table`` the pipeline builds nodes for."""
        return list(CLOSED_SET_ROWS[self.pipeline][table])

    def variant_node(self, table: str) -> Callable[[str, int], LazyNode]:
        """``(row, seed_slot) -> node function`` of thesis Table ``table``."""
        return lambda row, slot: LazyNode(
            self.experiment,
            "variant_node",
            (table, row, slot),
            (CLOSED_SET_NODE_CLASSES, "ClosedSetVariantNode"),
            f"run_{self.pipeline}_variant",
        )

    def summary_node(self, table: str, seed_slots: int) -> LazyNode:
        """The summary node function of thesis Table ``table`` (table CSV, runs CSV, markdown, metrics)."""
        return LazyNode(
            self.experiment,
            "summary_node",
            (table, len(self.rows(table)), seed_slots),
            (CLOSED_SET_NODE_CLASSES, "ClosedSetSummaryNode"),
            f"summarise_{self.pipeline}",
        )


def chapter_report_node(
    chapter: str, title: str, markdowns: Sequence[str], metrics: Sequence[str], output: str
) -> Node:
    """The chapter's report node ``<chapter>_report``: :class:`ChapterReport` over the tables' markdown
    and metrics datasets (same order) into ``output``."""
    return Node(
        ChapterReport(title),
        inputs=[f"params:{chapter}", *markdowns, *metrics],
        outputs=output,
        name=f"{chapter}_report",
    )


def table_pipeline(
    *,
    chapter: str,
    key: str,
    rows: Sequence[str],
    seed_slots: int,
    variant_node: Callable[[int, int], Callable],
    variant_inputs: Sequence[str],
    summary: Callable,
    summary_inputs: Sequence[str],
    outputs: dict[str, str],
    tags: Sequence[str] = (),
) -> Pipeline:
    """The namespaced pipeline of one table. ``variant_node(row, seed_slot)`` builds each variant's
    node function; ``summary`` takes ``summary_inputs`` then every record (row-major); ``outputs``
    maps the summary's local output names to the chapter's datasets."""
    names = slot_names(rows)
    nodes, records = [], []
    for row, name in enumerate(names):
        for slot in range(seed_slots):
            record = f"{name}_seed{slot}_result"
            records.append(record)
            nodes.append(
                Node(variant_node(row, slot), inputs=list(variant_inputs), outputs=record, name=f"{name}_seed{slot}")
            )
    nodes.append(Node(summary, inputs=[*summary_inputs, *records], outputs=list(outputs), name="summary"))
    free = {i for i in (*variant_inputs, *summary_inputs) if not i.startswith("params:")}
    parameters = {i for i in (*variant_inputs, *summary_inputs) if i.startswith("params:")}
    return Pipeline(
        nodes,
        namespace=f"{chapter}.{key}",
        inputs=free,
        parameters=parameters,
        outputs=outputs,
        tags={chapter, "ablations", f"{chapter}_{key}", *tags},
    )

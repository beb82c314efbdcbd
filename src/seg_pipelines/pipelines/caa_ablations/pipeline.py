"""``caa_ablations``: thesis Tables 3.2, 3.3, 3.4, 3.7, each fanned out as one node per (variant,
seed) under the namespace ``caa_ablations.table_<id>`` plus a ``summary`` node
(:mod:`seg_pipelines.pipelines.ablation_fanout`); each variant node is an MLflow child run of the
``kedro run`` (also under ``ParallelRunner``) and its result is reused by settings hash
(``checkpoint_root/results``), so a row repeated across tables is trained and evaluated once per
seed. Summaries write the table (CSV: mean ± std, paired effect and verdict), the per-seed runs
(CSV), markdown and flat metrics.

Inputs from ``data_preparation``: ``dataset_manifest``, ``prepared_index``, ``class_statistics``.
Parameters: ``caa_ablations`` (conf/base: default budget; conf/test: smoke; conf/thesis: thesis).
"""

from kedro.pipeline import Pipeline

from seg_pipelines.engine.ablations import seed_slots as configured_seed_slots
from seg_pipelines.pipelines.ablation_fanout import chapter_report_node, table_pipeline
from seg_pipelines.pipelines.caa_ablations import nodes

DATA = ["dataset_manifest", "prepared_index", "class_statistics"]


def _key(table: str) -> str:
    return "table_" + table.replace(".", "_")


def create_pipeline(seed_slots: int | None = None, **kwargs) -> Pipeline:
    seed_slots = configured_seed_slots() if seed_slots is None else seed_slots
    tables = [
        table_pipeline(
            chapter="caa_ablations",
            key=_key(table),
            rows=nodes.rows(table),
            seed_slots=seed_slots,
            variant_node=nodes.variant_node(table),
            variant_inputs=["params:caa_ablations", *DATA],
            summary=nodes.summary_node(table, seed_slots),
            summary_inputs=["params:caa_ablations", "dataset_manifest", "class_statistics"],
            outputs={name: f"caa_ablations_{_key(table)}_{name}" for name in ("summary", "runs", "md", "metrics")},
        )
        for table in nodes.TABLE_IDS
    ]
    report = chapter_report_node(
        "caa_ablations",
        "Chapter 3 ablations (CAA)",
        markdowns=[f"caa_ablations_{_key(t)}_md" for t in nodes.TABLE_IDS],
        metrics=[f"caa_ablations_{_key(t)}_metrics" for t in nodes.TABLE_IDS],
        output="caa_ablations_report_md",
    )
    return sum(tables, Pipeline([])) + Pipeline([report], tags={"caa_ablations", "ablations"})

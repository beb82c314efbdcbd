"""``ecac_ablations``: thesis Tables 4.2, 4.3, 4.4, 4.5, 4.7, 4.8, each fanned out as one node per
(variant, seed) under the namespace ``ecac_ablations.table_<id>`` plus a ``summary`` node
(:mod:`seg_pipelines.pipelines.ablation_fanout`), and the Figure 4.7 t-SNE. Each variant node is an
MLflow child run of the ``kedro run`` (also under ``ParallelRunner``) and its result is reused by settings hash
(``checkpoint_root/results``), so a row repeated across tables (e.g. FCN + full ECAC in 4.2, 4.3,
4.4, 4.7) is trained and evaluated once per seed.

Inputs from ``data_preparation``: ``dataset_manifest``, ``prepared_index``, ``class_statistics``.
Parameters: ``ecac_ablations`` (conf/base: default budget; conf/test: smoke; conf/thesis: thesis).
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.engine.ablations import seed_slots as configured_seed_slots
from seg_pipelines.pipelines.ablation_fanout import table_pipeline
from seg_pipelines.pipelines.ecac_ablations import nodes

DATA = ["dataset_manifest", "prepared_index", "class_statistics"]
INPUTS = ["params:ecac_ablations", *DATA]


def _key(table: str) -> str:
    return "table_" + table.replace(".", "_")


def create_pipeline(seed_slots: int | None = None, **kwargs) -> Pipeline:
    seed_slots = configured_seed_slots() if seed_slots is None else seed_slots
    tables = [
        table_pipeline(
            chapter="ecac_ablations",
            key=_key(table),
            rows=nodes.rows(table),
            seed_slots=seed_slots,
            variant_node=nodes.variant_node(table),
            variant_inputs=INPUTS,
            summary=nodes.summary_node(table, seed_slots),
            summary_inputs=["params:ecac_ablations", "dataset_manifest", "class_statistics"],
            outputs={name: f"ecac_ablations_{_key(table)}_{name}" for name in ("summary", "runs", "md", "metrics")},
        )
        for table in nodes.ALL_TABLE_IDS
    ]
    figure = Node(
        nodes.plot_feature_tsne,
        inputs=INPUTS,
        outputs=["ecac_ablations_figure_4_7", "ecac_ablations_figure_4_7_metrics"],
        name="ecac_ablations_figure_4_7",
    )
    report = Node(
        nodes.combine_markdown,
        inputs=[
            "params:ecac_ablations",
            "ecac_ablations_figure_4_7_metrics",
            *[f"ecac_ablations_{_key(t)}_md" for t in nodes.ALL_TABLE_IDS],
            *[f"ecac_ablations_{_key(t)}_metrics" for t in nodes.ALL_TABLE_IDS],
        ],
        outputs="ecac_ablations_report_md",
        name="ecac_ablations_report",
    )
    return sum(tables, Pipeline([])) + Pipeline([figure, report], tags={"ecac_ablations", "ablations"})

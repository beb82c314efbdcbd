"""``ecac_ablations``: one node per thesis table (4.2, 4.3, 4.4, 4.5, 4.7, 4.8) and the Figure 4.7
t-SNE; each table runs its variants × seeds as MLflow child runs (``engine.ablations.run_ablation``)
and writes the table (CSV), the per-seed runs (CSV), markdown and flat metrics. Identical variant
settings share a checkpoint (``checkpoint_root``), so a row repeated across tables (e.g. FCN + full
ECAC in 4.2, 4.3, 4.4, 4.7) is trained once per seed.

Inputs from ``data_preparation``: ``dataset_manifest``, ``prepared_index``, ``class_statistics``.
Parameters: ``ecac_ablations`` (conf/base: default budget; conf/test: smoke; conf/thesis: thesis).
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.experiments.ecac_ablations import TABLE_IDS
from seg_pipelines.pipelines.ecac_ablations import nodes

INPUTS = ["params:ecac_ablations", "dataset_manifest", "prepared_index", "class_statistics"]


def _outputs(key: str) -> list[str]:
    return [
        f"ecac_ablations_{key}_summary",
        f"ecac_ablations_{key}_runs",
        f"ecac_ablations_{key}_md",
        f"ecac_ablations_{key}_metrics",
    ]


def create_pipeline(**kwargs) -> Pipeline:
    keys = ["table_" + t.replace(".", "_") for t in TABLE_IDS]
    table_nodes = [
        Node(nodes.table_node(table), inputs=INPUTS, outputs=_outputs(key), name=f"ecac_ablations_{key}")
        for table, key in zip(TABLE_IDS, keys)
    ]
    table_nodes.append(
        Node(nodes.run_table_4_8, inputs=INPUTS, outputs=_outputs("table_4_8"), name="ecac_ablations_table_4_8")
    )
    keys.append("table_4_8")
    figure = Node(
        nodes.plot_feature_tsne,
        inputs=INPUTS,
        outputs=["ecac_ablations_figure_4_7", "ecac_ablations_figure_4_7_metrics"],
        name="ecac_ablations_figure_4_7",
    )
    report = Node(
        nodes.combine_markdown,
        inputs=["ecac_ablations_figure_4_7_metrics", *[f"ecac_ablations_{k}_md" for k in keys]],
        outputs="ecac_ablations_report_md",
        name="ecac_ablations_report",
    )
    return Pipeline([*table_nodes, figure, report], tags={"ecac_ablations", "ablations"})

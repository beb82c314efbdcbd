"""``caa_ablations``: one node per thesis table (3.2, 3.3, 3.4, 3.7); each runs its variants ×
seeds as MLflow child runs (``engine.ablations.run_ablation``) and writes the table (CSV), the
per-seed runs (CSV), markdown and flat metrics. Identical variant settings share a checkpoint
(``checkpoint_root``), so a row repeated across tables is trained once per seed.

Inputs from ``data_preparation``: ``dataset_manifest``, ``prepared_index``, ``class_statistics``.
Parameters: ``caa_ablations`` (conf/base: default budget; conf/test: smoke; conf/thesis: thesis).
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.experiments.caa_ablations import TABLE_IDS
from seg_pipelines.pipelines.caa_ablations import nodes


def create_pipeline(**kwargs) -> Pipeline:
    table_nodes = []
    for table in TABLE_IDS:
        key = "table_" + table.replace(".", "_")
        table_nodes.append(
            Node(
                nodes.table_node(table),
                inputs=["params:caa_ablations", "dataset_manifest", "prepared_index", "class_statistics"],
                outputs=[
                    f"caa_ablations_{key}_summary",
                    f"caa_ablations_{key}_runs",
                    f"caa_ablations_{key}_md",
                    f"caa_ablations_{key}_metrics",
                ],
                name=f"caa_ablations_{key}",
            )
        )
    report = Node(
        nodes.combine_markdown,
        inputs=[f"caa_ablations_table_{t.replace('.', '_')}_md" for t in TABLE_IDS],
        outputs="caa_ablations_report_md",
        name="caa_ablations_report",
    )
    return Pipeline([*table_nodes, report], tags={"caa_ablations", "ablations"})

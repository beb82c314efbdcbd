"""``lsmseg_ablations``: one node per thesis table (5.5 k of category filtering, 5.6 enriched prompt /
SAM, 5.7 fusion, 5.10 CLIP fine-tuning, 5.11 training vocabulary); each writes the table as CSV and
markdown, one line per run (CSV) and the mean/std metrics (MLflow), with one MLflow child run per
row × seed."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.experiments.lsmseg_ablations import TABLES
from seg_pipelines.pipelines.lsmseg_ablations import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.table_node(table),
                inputs=[
                    "prepared_index",
                    "dataset_manifest",
                    "tiny_clip_config",
                    "tiny_clip_checkpoint",
                    "prompt_set",
                    "params:lsmseg_ablations",
                ],
                outputs=[
                    f"lsmseg_ablation_{spec.key}",
                    f"lsmseg_ablation_{spec.key}_markdown",
                    f"lsmseg_ablation_{spec.key}_runs",
                    f"lsmseg_ablation_{spec.key}_metrics",
                ],
                name=f"lsmseg_ablation_{spec.key}",
            )
            for table, spec in TABLES.items()
        ]
    )

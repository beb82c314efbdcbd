"""One template for the closed-set add-on comparisons, namespaced per method (``caa``, ``ecac``).

Inputs from ``data_preparation``: ``dataset_manifest``, ``prepared_index``, ``class_statistics``.
Parameters: ``<method>.{model, addon, training, augmentation, evaluation, report, checkpoint_root}``.
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.closed_set import nodes

SHARED_INPUTS = {"dataset_manifest", "prepared_index", "class_statistics"}


def _template() -> Pipeline:
    nodes_list = [
        Node(
            nodes.build_model_configs,
            inputs=["dataset_manifest", "class_statistics", "params:model", "params:addon"],
            outputs=["baseline_model_config", "method_model_config"],
            name="build_model_configs",
        )
    ]
    for variant in ("baseline", "method"):
        nodes_list += [
            Node(
                nodes.train_model,
                inputs=[
                    f"{variant}_model_config",
                    "dataset_manifest",
                    "prepared_index",
                    "params:training",
                    "params:augmentation",
                    "params:checkpoint_root",
                ],
                outputs=[f"{variant}_checkpoint", f"{variant}_training_curve"],
                name=f"train_{variant}",
            ),
            Node(
                nodes.evaluate_model,
                inputs=[
                    f"{variant}_checkpoint",
                    "dataset_manifest",
                    "prepared_index",
                    "params:evaluation",
                    "params:augmentation",
                ],
                outputs=f"{variant}_evaluation",
                name=f"evaluate_{variant}",
            ),
        ]
    nodes_list += [
        Node(
            nodes.report_results,
            inputs=[
                "baseline_evaluation",
                "method_evaluation",
                "class_statistics",
                "baseline_model_config",
                "method_model_config",
                "dataset_manifest",
                "params:report",
            ],
            outputs=["closed_set_metrics", "per_class_iou", "results_table"],
            name="report_results",
        ),
        Node(
            nodes.plot_curves,
            inputs=["baseline_training_curve", "method_training_curve", "baseline_model_config", "method_model_config"],
            outputs="training_curve_figure",
            name="plot_training_curves",
        ),
        Node(
            nodes.plot_predictions,
            inputs=[
                "baseline_checkpoint",
                "method_checkpoint",
                "dataset_manifest",
                "prepared_index",
                "class_statistics",
                "params:evaluation",
                "params:augmentation",
                "params:report",
            ],
            outputs="qualitative_figure",
            name="plot_qualitative_predictions",
        ),
    ]
    return Pipeline(nodes_list)


def create_closed_set_pipeline(method: str) -> Pipeline:
    """The comparison pipeline of ``method``: datasets and nodes prefixed ``<method>.``, parameters
    read from the ``<method>`` block, shared inputs from ``data_preparation``."""
    return Pipeline(_template(), namespace=method, inputs=SHARED_INPUTS, tags={"closed_set", method})


def create_pipeline(**kwargs) -> Pipeline:
    """``closed_set``: the CAA and the ECAC comparisons together."""
    return create_closed_set_pipeline("caa") + create_closed_set_pipeline("ecac")

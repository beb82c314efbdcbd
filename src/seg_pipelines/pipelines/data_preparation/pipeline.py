"""``data_preparation``: raw dataset → validated index → class statistics → overview figure."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.data_preparation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.prepare_raw_dataset,
                inputs=["params:dataset", "params:synthetic_world"],
                outputs="dataset_manifest",
                name="prepare_raw_dataset",
            ),
            Node(
                nodes.build_prepared_index,
                inputs=["dataset_manifest", "params:preparation"],
                outputs=["prepared_index", "preparation_report"],
                name="build_prepared_index",
            ),
            Node(
                nodes.compute_statistics,
                inputs=["prepared_index", "dataset_manifest", "params:class_statistics"],
                outputs=["class_statistics", "class_statistics_metrics"],
                name="compute_class_statistics",
            ),
            Node(
                nodes.plot_overview,
                inputs=["dataset_manifest", "prepared_index", "class_statistics", "params:preparation"],
                outputs="dataset_overview_figure",
                name="plot_dataset_overview",
            ),
        ]
    )

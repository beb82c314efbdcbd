"""``report``: reads data/08_reporting as it is on disk (no other pipeline's datasets as inputs), so
``kedro run --pipelines=report`` runs alone at any time."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.report import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.build_report,
                inputs=["params:report", "parameters"],
                outputs=["report_markdown", "report_html"],
                name="build_report",
            )
        ],
        tags={"report"},
    )

"""``evaluate``: ``evaluate.checkpoint`` on ``evaluate.dataset`` under a protocol and inference mode.

    kedro run --pipelines=evaluate --params="evaluate.checkpoint=data/06_models/caa/method.pt,evaluate.mode=slide"

Outputs: ``evaluation_per_class_iou`` (CSV), ``evaluation_table`` (markdown) and
``evaluation_metrics`` (mIoU / mAcc / aAcc, logged to the run's MLflow run by the project hook).
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.evaluate import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.run_evaluate,
                inputs="params:evaluate",
                outputs=["evaluation_per_class_iou", "evaluation_metrics", "evaluation_table"],
                name="evaluate_checkpoint",
            )
        ],
        tags={"inference"},
    )

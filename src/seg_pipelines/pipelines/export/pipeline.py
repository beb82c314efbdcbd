"""``export``: ``export.checkpoint`` to ONNX (dynamic height and width, whole-image inference, class names
and preprocessing in the model's metadata), checked against PyTorch on ``export.dataset``.

    kedro run --pipelines=export --params="export.checkpoint=data/06_models/caa/method.pt"

Outputs: the ``.onnx`` file (``export.output``, default: the checkpoint's path with ``.onnx``),
``onnx_export_report`` (JSON), ``onnx_export_metrics`` (max abs logit difference, mIoU of both; MLflow
metrics) and ``onnx_export_table`` (markdown). Parameters: ``export`` (conf/base/parameters_export.yml).
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.export import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.export_to_onnx,
                inputs="params:export",
                outputs=["onnx_export_report", "onnx_export_metrics", "onnx_export_table"],
                name="export_onnx",
            )
        ],
        tags={"inference"},
    )

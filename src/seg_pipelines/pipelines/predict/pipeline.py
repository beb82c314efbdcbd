"""``predict``: segment ``predict.input`` (an image or a folder) with ``predict.checkpoint``.

    kedro run --pipelines=predict --params="predict.input=photos/,predict.checkpoint=data/06_models/caa/method.pt"

Outputs: ``predictions`` (``<stem>_label.png`` class ids, ``<stem>_overlay.png``) and
``prediction_summary``. Parameters: ``predict`` (conf/base/parameters_predict.yml).
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.predict import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.run_predict,
                inputs="params:predict",
                outputs=["predictions", "prediction_summary"],
                name="predict_images",
            )
        ],
        tags={"inference"},
    )

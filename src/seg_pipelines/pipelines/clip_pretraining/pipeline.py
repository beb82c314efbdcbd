"""``clip_pretraining``: image–caption pairs → tiny CLIP state dict + config → retrieval and zero-shot probes."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.clip_pretraining import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.pretrain_tiny_clip,
                inputs=["dataset_manifest", "prepared_index", "params:clip_pretraining"],
                outputs=["tiny_clip_checkpoint", "clip_pretraining_curve"],
                name="pretrain_tiny_clip",
            ),
            Node(
                nodes.evaluate_tiny_clip,
                inputs=["tiny_clip_checkpoint", "dataset_manifest", "params:clip_pretraining"],
                outputs=["clip_pretraining_metrics", "clip_zero_shot_probe"],
                name="evaluate_tiny_clip",
            ),
            Node(
                nodes.describe_tiny_clip,
                inputs=["params:clip_pretraining", "tiny_clip_checkpoint", "dataset_manifest"],
                outputs="tiny_clip_config",
                name="describe_tiny_clip",
            ),
            Node(
                nodes.plot_clip_training_curve,
                inputs=["clip_pretraining_curve", "clip_pretraining_metrics"],
                outputs="clip_training_curve_figure",
                name="plot_clip_training_curve",
            ),
        ]
    )

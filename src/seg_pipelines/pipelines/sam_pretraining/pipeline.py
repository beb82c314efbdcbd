"""``sam_pretraining``: region masks of the train split → tiny SAM state dict (segment_anything's layout)
+ config → one-point mask IoU check on held-out images. ``lsmseg`` and ``lsmseg_ablations`` take
``tiny_sam_checkpoint`` as the SAM branch's weights, as a real ``sam_vit_b`` checkpoint enters."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.sam_pretraining import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.pretrain_tiny_sam,
                inputs=["dataset_manifest", "params:sam_pretraining"],
                outputs=["tiny_sam_checkpoint", "sam_pretraining_curve"],
                name="pretrain_tiny_sam",
            ),
            Node(
                nodes.evaluate_tiny_sam,
                inputs=["tiny_sam_checkpoint", "dataset_manifest", "params:sam_pretraining"],
                outputs="sam_point_prompt_check",
                name="evaluate_tiny_sam",
            ),
            Node(
                nodes.describe_tiny_sam,
                inputs=["params:sam_pretraining", "tiny_sam_checkpoint", "dataset_manifest"],
                outputs="tiny_sam_config",
                name="describe_tiny_sam",
            ),
        ]
    )

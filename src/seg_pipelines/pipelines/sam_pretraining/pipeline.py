"""``sam_pretraining``: region masks of the train split → two tiny SAM state dicts (segment_anything's
layout; ``tiny`` and the larger ``tiny_l``, the SAM-B and SAM-L stand-ins) + configs → one-point mask IoU
check of both on held-out images. ``lsmseg`` and ``lsmseg_ablations`` take ``tiny_sam_checkpoint`` /
``tiny_sam_l_checkpoint`` as the SAM branch's weights for ``sam_variant: tiny`` / ``tiny_l``, as a real
``sam_vit_b`` checkpoint enters."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.sam_pretraining import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.pretrain_tiny_sam,
                inputs=["dataset_manifest", "prepared_index", "params:sam_pretraining"],
                outputs=["tiny_sam_checkpoint", "sam_pretraining_curve"],
                name="pretrain_tiny_sam",
            ),
            Node(
                nodes.pretrain_tiny_sam_l,
                inputs=["dataset_manifest", "prepared_index", "params:sam_pretraining"],
                outputs=["tiny_sam_l_checkpoint", "sam_l_pretraining_curve"],
                name="pretrain_tiny_sam_l",
            ),
            Node(
                nodes.evaluate_tiny_sams,
                inputs=["tiny_sam_checkpoint", "tiny_sam_l_checkpoint", "dataset_manifest", "params:sam_pretraining"],
                outputs="sam_point_prompt_check",
                name="evaluate_tiny_sams",
            ),
            Node(
                nodes.describe_tiny_sam,
                inputs=["params:sam_pretraining", "tiny_sam_checkpoint", "dataset_manifest"],
                outputs="tiny_sam_config",
                name="describe_tiny_sam",
            ),
            Node(
                nodes.describe_tiny_sam_l,
                inputs=["params:sam_pretraining", "tiny_sam_l_checkpoint", "dataset_manifest"],
                outputs="tiny_sam_l_config",
                name="describe_tiny_sam_l",
            ),
        ]
    )

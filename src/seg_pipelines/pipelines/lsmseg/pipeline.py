"""``lsmseg``: validate inputs → train CAT-Seg baseline and LSMSeg (same budget) → evaluate → tables, figures.

Inputs from upstream: ``tiny_clip_checkpoint`` / ``tiny_clip_config`` (clip_pretraining),
``tiny_sam_checkpoint`` / ``tiny_sam_config`` and ``tiny_sam_l_checkpoint`` / ``tiny_sam_l_config``
(sam_pretraining; the SAM branch's weights for ``sam_variant: tiny`` / ``tiny_l``) and the optional
``prompt_set`` (lsmseg_attribute_selection; used when ``lsmseg.prompts: prompt_set``)."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.lsmseg import nodes

_EVAL_INPUTS = [
    "catseg_baseline_weights",
    "lsmseg_weights",
    "prepared_index",
    "dataset_manifest",
    "lsmseg_run_plan",
    "params:lsmseg",
]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.validate_lsmseg_inputs,
                inputs=[
                    "dataset_manifest",
                    "tiny_clip_config",
                    "tiny_clip_checkpoint",
                    "prompt_set",
                    "params:lsmseg",
                    "tiny_sam_config",
                    "tiny_sam_checkpoint",
                    "tiny_sam_l_config",
                    "tiny_sam_l_checkpoint",
                ],
                outputs="lsmseg_run_plan",
                name="validate_lsmseg_inputs",
            ),
            Node(
                nodes.train_baseline,
                inputs=["prepared_index", "dataset_manifest", "lsmseg_run_plan", "params:lsmseg"],
                outputs=["catseg_baseline_weights", "catseg_baseline_curve"],
                name="train_catseg_baseline",
            ),
            Node(
                nodes.train_lsmseg,
                inputs=["prepared_index", "dataset_manifest", "lsmseg_run_plan", "params:lsmseg"],
                outputs=["lsmseg_weights", "lsmseg_curve"],
                name="train_lsmseg",
            ),
            Node(
                nodes.describe_models,
                inputs=["params:lsmseg", "lsmseg_run_plan", "catseg_baseline_curve", "lsmseg_curve"],
                outputs="lsmseg_model_config",
                name="describe_ovss_models",
            ),
            Node(
                nodes.evaluate_ovss,
                inputs=_EVAL_INPUTS,
                outputs=[
                    "lsmseg_metrics",
                    "lsmseg_table_5_1",
                    "lsmseg_table_5_1_markdown",
                    "lsmseg_table_5_2",
                    "lsmseg_table_5_2_markdown",
                    "lsmseg_per_class_iou",
                ],
                name="evaluate_ovss_benchmarks",
            ),
            Node(nodes.plot_cost_maps, inputs=_EVAL_INPUTS, outputs="lsmseg_cost_map_figure", name="plot_cost_maps"),
            Node(
                nodes.compare_prompt_sources,
                inputs=["prepared_index", "dataset_manifest", "lsmseg_run_plan", "prompt_set", "params:lsmseg"],
                outputs=["lsmseg_prompt_comparison", "lsmseg_prompt_comparison_markdown"],
                name="compare_prompt_set_with_templates",
            ),
            Node(
                nodes.plot_qualitative,
                inputs=_EVAL_INPUTS,
                outputs="lsmseg_qualitative_figure",
                name="plot_ovss_predictions",
            ),
        ]
    )

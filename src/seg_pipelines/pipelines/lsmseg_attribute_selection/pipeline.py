"""``lsmseg_attribute_selection``: the four steps of thesis Figure 5.3 (only this pipeline's nodes;
the registry adds ``data_preparation`` and ``clip_pretraining`` upstream)."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.lsmseg_attribute_selection import nodes

PARAMS = "params:lsmseg_attribute_selection"


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.generate_candidate_attribute_list,
                inputs=PARAMS,
                outputs="candidate_attributes",
                name="generate_candidate_attributes",
            ),
            Node(
                nodes.generate_enriched_descriptions,
                inputs=["candidate_attributes", "dataset_manifest", PARAMS],
                outputs=["attribute_descriptions", "llm_generation_metrics"],
                name="generate_enriched_descriptions",
            ),
            Node(
                nodes.build_attribute_scorer,
                inputs=["dataset_manifest", "tiny_clip_checkpoint", "tiny_clip_config", PARAMS],
                outputs="attribute_scorer",
                name="cache_scoring_image_features",
            ),
            Node(
                nodes.score_attributes,
                inputs=["attribute_scorer", "attribute_descriptions", PARAMS],
                outputs=["attribute_scores_table", "attribute_scores"],
                name="score_attributes",
            ),
            Node(
                nodes.combine_attributes,
                inputs=["attribute_scorer", "attribute_descriptions", "attribute_scores", PARAMS],
                outputs=[
                    "attribute_combinations_table",
                    "llm_comparison_table",
                    "prompt_set",
                    "attribute_selection_summary",
                ],
                name="combine_attributes",
            ),
            Node(
                nodes.report_attribute_selection,
                inputs=[
                    "attribute_scores_table",
                    "attribute_combinations_table",
                    "llm_comparison_table",
                    "attribute_selection_summary",
                    "llm_generation_metrics",
                    "candidate_attributes",
                    "attribute_descriptions",
                    "prompt_set",
                    PARAMS,
                ],
                outputs=[
                    "attribute_scores_markdown",
                    "attribute_combinations_markdown",
                    "llm_comparison_markdown",
                    "attribute_scores_figure",
                    "attribute_combinations_figure",
                    "description_samples",
                    "attribute_selection_metrics",
                ],
                name="report_attribute_selection",
            ),
        ]
    )

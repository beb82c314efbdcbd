"""Nodes of ``lsmseg_attribute_selection`` (thesis 5.2.3, Tables 5.3, 5.4, 5.9): LLM attributes and
descriptions, attribute scoring, greedy combination, the prompt set and its report; the work is in
:mod:`seg_pipelines.experiments.attribute_selection`.
(imported when a node first runs: :mod:`seg_pipelines.pipelines.lazy`)."""

from seg_pipelines.pipelines.lazy import lazy

EXPERIMENT = "seg_pipelines.experiments.attribute_selection"
build_attribute_scorer = lazy(EXPERIMENT, "build_attribute_scorer")
combine_attributes = lazy(EXPERIMENT, "combine_attributes")
generate_candidate_attribute_list = lazy(EXPERIMENT, "generate_candidate_attribute_list")
generate_enriched_descriptions = lazy(EXPERIMENT, "generate_enriched_descriptions")
report_attribute_selection = lazy(EXPERIMENT, "report_attribute_selection")
score_attributes = lazy(EXPERIMENT, "score_attributes")

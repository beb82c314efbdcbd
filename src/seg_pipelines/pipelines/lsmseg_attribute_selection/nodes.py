"""Nodes of ``lsmseg_attribute_selection`` (thesis 5.2.3, Tables 5.3, 5.4, 5.9): LLM attributes and
descriptions, attribute scoring, greedy combination, the prompt set and its report; the work is in
:mod:`seg_pipelines.experiments.attribute_selection`."""

from seg_pipelines.experiments.attribute_selection import (
    build_attribute_scorer,
    combine_attributes,
    generate_candidate_attribute_list,
    generate_enriched_descriptions,
    report_attribute_selection,
    score_attributes,
)

__all__ = [
    "build_attribute_scorer",
    "combine_attributes",
    "generate_candidate_attribute_list",
    "generate_enriched_descriptions",
    "report_attribute_selection",
    "score_attributes",
]

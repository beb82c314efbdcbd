"""Nodes of ``lsmseg_attribute_selection`` (thesis 5.2.3, Tables 5.3, 5.4, 5.9): LLM attributes and
descriptions, attribute scoring, greedy combination, the prompt set and its report. Each validates
``lsmseg_attribute_selection`` into :class:`~seg_pipelines.parameters.AttributeSelection` and calls
:mod:`seg_pipelines.experiments.attribute_selection` (imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.parameters import AttributeSelection


def generate_candidate_attribute_list(params: AttributeSelection) -> dict[str, Any]:
    """Each LLM's candidate attributes (thesis 5.2.3, step 1)."""
    from seg_pipelines.experiments import attribute_selection

    return attribute_selection.generate_candidate_attribute_list(AttributeSelection.of(params))


def generate_enriched_descriptions(
    candidate_attributes: dict[str, Any], manifest: dict[str, Any], params: AttributeSelection
) -> tuple[dict[str, Any], dict[str, float]]:
    """Each LLM's description of every class under every attribute, and the generation metrics."""
    from seg_pipelines.experiments import attribute_selection

    return attribute_selection.generate_enriched_descriptions(
        candidate_attributes, manifest, AttributeSelection.of(params)
    )


def build_attribute_scorer(
    manifest: dict[str, Any], tiny_clip_checkpoint: Any, tiny_clip_config: dict[str, Any], params: AttributeSelection
) -> Any:
    """The attribute scorer (an ``AttributeScorer``: image features computed once, per benchmark)."""
    from seg_pipelines.experiments import attribute_selection

    return attribute_selection.build_attribute_scorer(
        manifest, tiny_clip_checkpoint, tiny_clip_config, AttributeSelection.of(params)
    )


def score_attributes(
    scorer: Any, descriptions: dict[str, Any], params: AttributeSelection
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Table 5.3: every attribute against the template, with its noise interval."""
    from seg_pipelines.experiments import attribute_selection

    return attribute_selection.score_attributes(scorer, descriptions, AttributeSelection.of(params))


def combine_attributes(
    scorer: Any, descriptions: dict[str, Any], attribute_scores: dict[str, Any], params: AttributeSelection
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict[str, Any]]:
    """Table 5.4's greedy combination, Table 5.9's LLM comparison, the prompt set and the summary."""
    from seg_pipelines.experiments import attribute_selection

    return attribute_selection.combine_attributes(scorer, descriptions, attribute_scores, AttributeSelection.of(params))


def report_attribute_selection(
    attribute_table: pd.DataFrame,
    combination_table: pd.DataFrame,
    comparison_table: pd.DataFrame,
    summary: dict[str, Any],
    generation_metrics: dict[str, float],
    candidate_attributes: dict[str, Any],
    descriptions: dict[str, Any],
    prompt_set: dict[str, str],
    params: AttributeSelection,
) -> tuple[str, str, str, Any, Any, str, dict[str, float]]:
    """The three tables' markdown, two figures, description samples and the MLflow metrics."""
    from seg_pipelines.experiments import attribute_selection

    return attribute_selection.report_attribute_selection(
        attribute_table,
        combination_table,
        comparison_table,
        summary,
        generation_metrics,
        candidate_attributes,
        descriptions,
        prompt_set,
        AttributeSelection.of(params),
    )

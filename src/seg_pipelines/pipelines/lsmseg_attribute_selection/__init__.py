"""``lsmseg_attribute_selection``: LLM attribute prompts → scored, ranked, combined → prompt set (thesis Figure 5.3)."""

from seg_pipelines.pipelines.lsmseg_attribute_selection.pipeline import create_pipeline

__all__ = ["create_pipeline"]

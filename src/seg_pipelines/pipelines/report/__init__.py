"""Report: every table and figure produced so far in one report.md / report.html."""

from seg_pipelines.pipelines.report.pipeline import create_pipeline

__all__ = ["create_pipeline"]

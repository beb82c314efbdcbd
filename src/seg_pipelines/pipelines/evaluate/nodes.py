"""Node of ``evaluate``; the work is in :mod:`seg_pipelines.experiments.inference`."""

from seg_pipelines.experiments.inference import run_evaluate

__all__ = ["run_evaluate"]

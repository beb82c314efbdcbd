"""Node of ``predict``; the work is in :mod:`seg_pipelines.experiments.inference`."""

from seg_pipelines.experiments.inference import run_predict

__all__ = ["run_predict"]

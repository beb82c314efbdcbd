"""Efficiency: thesis Tables 3.5, 3.6, 4.6 and 5.8 (parameters, MACs, training and inference time)."""

from seg_pipelines.pipelines.efficiency.pipeline import create_pipeline

__all__ = ["create_pipeline"]

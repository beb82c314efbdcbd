"""``export``: a checkpoint → an ONNX file, checked against PyTorch by ONNX Runtime in the same run."""

from seg_pipelines.pipelines.export.pipeline import create_pipeline

__all__ = ["create_pipeline"]

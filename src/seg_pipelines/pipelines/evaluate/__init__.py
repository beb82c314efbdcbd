"""``evaluate``: a checkpoint on a configured dataset → per-class IoU table, mIoU, an MLflow run."""

from seg_pipelines.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]

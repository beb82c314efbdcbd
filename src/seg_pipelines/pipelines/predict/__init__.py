"""``predict``: an image or a folder + a checkpoint → label and overlay PNGs."""

from seg_pipelines.pipelines.predict.pipeline import create_pipeline

__all__ = ["create_pipeline"]

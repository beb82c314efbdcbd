"""Dataset preparation: raw dataset → validated index → class statistics → overview figure."""

from seg_pipelines.pipelines.data_preparation.pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""seg_pipelines: Kedro pipelines for CAA, ECAC and LSMSeg semantic segmentation."""

__version__ = "0.1.0"

"""``lsmseg``: train the CAT-Seg baseline and LSMSeg on the seen vocabulary, evaluate on six benchmarks."""

from seg_pipelines.pipelines.lsmseg.pipeline import create_pipeline

__all__ = ["create_pipeline"]

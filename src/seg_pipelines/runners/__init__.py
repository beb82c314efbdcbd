"""Kedro runners that hand a pipeline's nodes to an existing cluster engine (nothing home-made):
:class:`DaskRunner` runs every node as a ``dask.distributed`` task, on a ``LocalCluster`` on this
machine, an existing scheduler, or a ``dask-jobqueue`` cluster (README "Ablation chapters").

    kedro run --pipelines=caa_ablations --runner=seg_pipelines.runners.DaskRunner
"""

from seg_pipelines.runners.dask_runner import (
    SCHEDULER_ENV,
    TRAINING_RESOURCES_ENV,
    TRAINING_TAG,
    DaskRunner,
    InMemoryHandoffError,
    NodeReport,
    in_memory_handoffs,
)

__all__ = [
    "SCHEDULER_ENV",
    "TRAINING_RESOURCES_ENV",
    "TRAINING_TAG",
    "DaskRunner",
    "InMemoryHandoffError",
    "NodeReport",
    "in_memory_handoffs",
]

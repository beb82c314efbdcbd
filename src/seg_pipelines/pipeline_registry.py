"""Project pipelines, discovered with ``find_pipelines()``."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# What `kedro run` (no --pipeline) runs on a fresh clone: the embedded-default main job.
DEFAULT_PIPELINES = ("synthetic_world", "data_preparation")


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([]))
    return pipelines

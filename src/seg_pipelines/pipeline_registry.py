"""Project pipelines, discovered with ``find_pipelines()`` and made runnable from a fresh clone.

Each user-facing pipeline is registered together with the upstream pipelines it needs, so
``kedro run --pipeline=lsmseg_attribute_selection`` works on a fresh clone (upstream steps reuse
what is already on disk: the synthetic world is rendered once per settings). The folder's own
nodes stay available under ``<name>_only`` for runs that start from existing outputs.
"""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# pipeline -> the pipelines whose outputs it consumes (in order)
UPSTREAM: dict[str, tuple[str, ...]] = {
    "clip_pretraining": ("data_preparation",),
    "lsmseg_attribute_selection": ("data_preparation", "clip_pretraining"),
    "lsmseg": ("data_preparation", "clip_pretraining"),
    "caa": ("data_preparation",),
    "ecac": ("data_preparation",),
}

# What `kedro run` (no --pipeline) runs: the main job on the embedded default.
DEFAULT_PIPELINE = "lsmseg_attribute_selection"


def compose(pipelines: dict[str, Pipeline], name: str) -> Pipeline:
    """``name``'s nodes plus those of every upstream pipeline it needs."""
    composed = Pipeline([])
    for upstream in UPSTREAM.get(name, ()):
        composed += compose(pipelines, upstream) if upstream in UPSTREAM else pipelines[upstream]
    return composed + pipelines[name]


def register_pipelines() -> dict[str, Pipeline]:
    found = find_pipelines(raise_errors=True)
    pipelines = dict(found)
    for name in UPSTREAM:
        if name in found:
            pipelines[f"{name}_only"] = found[name]
            pipelines[name] = compose(found, name)
    pipelines["__default__"] = pipelines.get(DEFAULT_PIPELINE, pipelines["data_preparation"])
    return pipelines

"""Project pipelines, discovered with ``find_pipelines()`` and made runnable from a fresh clone.

Each user-facing pipeline is registered together with the upstream pipelines it needs, so
``kedro run --pipeline=lsmseg_attribute_selection`` works on a fresh clone (upstream steps reuse
what is already on disk: the synthetic world is rendered once per settings).

Kedro 1.7's CLI makes ``find_pipelines()`` load only the requested pipeline folders, so an
upstream pipeline that was not requested is imported here directly.
"""

import importlib

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# pipeline -> the pipelines whose outputs it consumes (in order)
UPSTREAM: dict[str, tuple[str, ...]] = {
    "clip_pretraining": ("data_preparation",),
    "lsmseg_attribute_selection": ("data_preparation", "clip_pretraining"),
    "lsmseg": ("data_preparation", "clip_pretraining"),
    "caa": ("data_preparation",),
    "ecac": ("data_preparation",),
    "closed_set": ("data_preparation",),
    "caa_ablations": ("data_preparation",),
    "ecac_ablations": ("data_preparation",),
    "lsmseg_ablations": ("data_preparation", "clip_pretraining"),
}

# What `kedro run` (no --pipeline) runs: the main job on the embedded default.
DEFAULT_PIPELINE = "lsmseg_attribute_selection"


def _folder_pipeline(found: dict[str, Pipeline], name: str) -> Pipeline:
    if name not in found:
        found[name] = importlib.import_module(f"seg_pipelines.pipelines.{name}").create_pipeline()
    return found[name]


def compose(found: dict[str, Pipeline], name: str) -> Pipeline:
    """``name``'s own nodes plus those of every upstream pipeline it needs (recursively)."""
    composed = Pipeline([])
    for upstream in UPSTREAM.get(name, ()):
        composed += compose(found, upstream)
    return composed + _folder_pipeline(found, name)


def register_pipelines() -> dict[str, Pipeline]:
    found = find_pipelines(raise_errors=True)
    pipelines = dict(found)
    for name in UPSTREAM:
        if name in found:
            pipelines[name] = compose(dict(found), name)
    if "__default__" in found:  # find_pipelines loaded every folder (no CLI filter)
        pipelines["__default__"] = compose(dict(found), DEFAULT_PIPELINE)
    return pipelines

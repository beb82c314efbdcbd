"""Project pipelines, discovered with ``find_pipelines()`` and made runnable from a fresh clone.

Each user-facing pipeline is registered together with the upstream pipelines it needs, so
``kedro run --pipelines=lsmseg_attribute_selection`` works on a fresh clone (upstream steps reuse
what is already on disk: the synthetic world is rendered once per settings).

Kedro 1.7's CLI makes ``find_pipelines()`` load only the requested pipeline folders, so an
upstream pipeline that was not requested is imported here directly.
"""

import difflib
import importlib
import importlib.resources
import re
import warnings

import click
from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# pipeline -> the pipelines whose outputs it consumes (in order)
UPSTREAM: dict[str, tuple[str, ...]] = {
    "clip_pretraining": ("data_preparation",),
    "sam_pretraining": ("data_preparation",),
    "lsmseg_attribute_selection": ("data_preparation", "clip_pretraining"),
    "lsmseg": ("data_preparation", "clip_pretraining", "sam_pretraining"),
    "caa": ("data_preparation",),
    "ecac": ("data_preparation",),
    "closed_set": ("data_preparation",),
    "caa_ablations": ("data_preparation",),
    "ecac_ablations": ("data_preparation",),
    "lsmseg_ablations": ("data_preparation", "clip_pretraining", "sam_pretraining"),
}

# The order Kedro-Viz's pipeline list and `kedro registry list` show: the data, then chapter 5's
# prompt and OVSS pipelines, chapters 3-4, the ablations, efficiency and the report.
DISPLAY_ORDER: tuple[str, ...] = (
    "__default__",
    "data_preparation",
    "clip_pretraining",
    "sam_pretraining",
    "lsmseg_attribute_selection",
    "lsmseg",
    "caa",
    "ecac",
    "closed_set",
    "caa_ablations",
    "ecac_ablations",
    "lsmseg_ablations",
    "efficiency",
    "report",
    "predict",
    "evaluate",
    "export",  # fmt: skip
)

# What `kedro run` (no --pipelines) runs: the main job on the embedded default.
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


def pipeline_folders() -> set[str]:
    """The registered pipelines' folders (``pipelines/<name>/pipeline.py``)."""
    package = importlib.resources.files("seg_pipelines.pipelines")
    return {entry.name for entry in package.iterdir() if entry.is_dir() and (entry / "pipeline.py").is_file()}


def _find_pipelines() -> dict[str, Pipeline]:
    """``find_pipelines`` that raises when one of our own folders fails to import (with its
    traceback), but lets an unknown ``--pipelines`` name through to Kedro, which then answers
    "Failed to find the pipeline named …" with its "did you mean" list."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = find_pipelines(raise_errors=False)
    folders = pipeline_folders()
    for warning in caught:
        message = str(warning.message)
        broken = re.search(r"'seg_pipelines\.pipelines\.(\w+)'", message)
        if broken and broken.group(1) in folders:
            raise ImportError(message)
        if not broken:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return found


class UnknownPipelineError(click.UsageError, ValueError):
    """A ``--pipelines`` name that is no pipeline: click prints its one line (``Error: …``) and exits
    with status 2, with no traceback."""


class RegisteredPipelines(dict):
    """The registered pipelines; an unknown name (``kedro run --pipelines=caaa``) raises one line that
    names the closest pipelines and lists them all, instead of Kedro's multi-line KeyError answer."""

    def __missing__(self, name: str) -> Pipeline:
        known = sorted(pipeline_folders() | {"__default__"})
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownPipelineError(f"No pipeline named {name!r}.{hint} Pipelines: {', '.join(known)}.")


def register_pipelines() -> dict[str, Pipeline]:
    found = _find_pipelines()
    pipelines = dict(found)
    for name in UPSTREAM:
        if name in found:
            pipelines[name] = compose(dict(found), name)
    if "__default__" in found:  # find_pipelines loaded every folder (no CLI filter)
        pipelines["__default__"] = compose(dict(found), DEFAULT_PIPELINE)
    rank = {name: position for position, name in enumerate(DISPLAY_ORDER)}
    return RegisteredPipelines(sorted(pipelines.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))

"""MLflow tracking for every ``kedro run``: one run per run, named after the pipeline.

* Tracking URI: ``$MLFLOW_TRACKING_URI`` > ``mlflow.tracking_uri`` in ``conf/<env>/mlflow.yml``
  > ``sqlite:///<project root>/mlflow.db``. Relative sqlite paths resolve against the project root.
* Parameters: the run's Kedro parameters, flattened (``data_preparation.dataset.family``), logged
  once at the start.
* Metrics: a saved dataset whose catalog ``metadata`` has ``mlflow: metrics`` must hold a
  (nested) dict of numbers; it is flattened and logged with ``mlflow.log_metrics``.
* Artifacts: a saved dataset whose ``metadata`` has ``mlflow: artifact`` is logged as a file
  (its ``filepath``) under ``artifact_path`` (default: its layer).
* Errors: the run ends with status ``FAILED`` and the error message as a tag; nothing logged
  before the failure is lost.
* Tags: ``pipeline``, ``method``, ``head``, ``backbone``, ``dataset``, ``vocabulary`` and ``seed``
  (:func:`run_tags`, from the run's parameters; ``n/a`` where a pipeline has no such notion), so
  MLflow's compare view and ``mlflow.search_runs`` line runs up.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MAX_PARAM_LENGTH = 6000  # MLflow's limit for a parameter value


def flatten_dict(values: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings into ``{"a.b.c": value}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_dict(value, name, sep))
        else:
            flat[name] = value
    return flat


def resolve_tracking_uri(project_path: Path, configured: str | None = None) -> str:
    """Environment variable, then configuration, then the project-root sqlite default."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str((Path(project_path) / uri[len(prefix):]).resolve())
    return uri


def _mlflow_key(name: str) -> str:
    """``name`` with the characters MLflow rejects in param/metric keys (``[``, ``†``, ``+``…) as ``_``."""
    return re.sub(r"[^\w\-. :/]", "_", name)


def _numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    metrics = {}
    for key, value in flatten_dict(values).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            metrics[_mlflow_key(key.replace(" ", "_"))] = float(value)
    return metrics


# --- run tags ---------------------------------------------------------------------------------------

NOT_APPLICABLE = "n/a"
TAG_NAMES = ("pipeline", "method", "head", "backbone", "dataset", "vocabulary", "seed")
# Parameter blocks a pipeline reads ("" = the top level); others use the block named after them and,
# for ``<x>_ablations``, the block of ``<x>`` as fallback.
PIPELINE_BLOCKS: dict[str, tuple[str, ...]] = {
    "closed_set": ("caa", "ecac"),
    "data_preparation": ("",),
}
# Where each tag lives inside a block, first found wins (conf/base/parameters_*.yml).
TAG_KEYS: dict[str, tuple[str, ...]] = {
    "method": ("addon.name", "method"),
    "head": ("model.head", "head.name"),
    "backbone": ("model.backbone", "clip.model", "training.model_name", "backbone"),
    "vocabulary": ("train_vocabulary", "vocabulary", "training.vocabulary"),
    "seed": ("seeds", "training.seed", "seed", "scoring.seed", "timing.seed", "synthetic_world.seed"),
}


def _lookup(values: Any, dotted: str) -> Any:
    for key in dotted.split(".") if dotted else []:
        if not isinstance(values, Mapping) or key not in values:
            return None
        values = values[key]
    return values


def _tag_text(value: Any, key: str = "") -> str | None:
    if key == "seeds" and isinstance(value, int) and not isinstance(value, bool):
        value = list(range(value))  # ablation pipelines: a count n means seeds 0..n-1
    if value is None or isinstance(value, Mapping):
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else None
    return str(value)


def _blocks(pipeline_name: str, params: Mapping[str, Any]) -> list[list[Mapping[str, Any]]]:
    """Per parameter block of the pipeline, the blocks to search in order (block, its ``setup``,
    the base method's block for ``<x>_ablations``)."""
    names = PIPELINE_BLOCKS.get(pipeline_name, (pipeline_name,))
    blocks = []
    for name in names:
        chain = [name]
        if name.endswith("_ablations"):
            chain.append(name[: -len("_ablations")])
        found = [b for b in (params if n == "" else _lookup(params, n) for n in chain) if isinstance(b, Mapping)]
        if found and isinstance(found[0].get("setup"), Mapping):  # lsmseg_ablations: the shared model setup
            found.insert(1, found[0]["setup"])
        if found:
            blocks.append(found)
    return blocks


def _tags_of_one(pipeline_name: str, params: Mapping[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    chains = _blocks(pipeline_name, params)
    for tag, keys in TAG_KEYS.items():
        values = []
        for chain in chains:  # one value per block (closed_set: caa and ecac)
            value = next((v for block in chain for key in keys if (v := _tag_text(_lookup(block, key), key)) is not None), None)
            if value is not None and value not in values:
                values.append(value)
        if values:
            tags[tag] = "+".join(values)
    for chain in chains:  # OVSS pipelines: the architectures they compare (lsmseg: catseg+lsmseg)
        models = next((b["models"] for b in chain if isinstance(b.get("models"), Mapping)), None)
        if models and "head" not in tags:
            archs = [str(m["architecture"]) for m in models.values() if isinstance(m, Mapping) and "architecture" in m]
            if archs:
                tags["head"] = "+".join(dict.fromkeys(archs))
    if "method" not in tags:
        tags["method"] = pipeline_name[: -len("_ablations")] if pipeline_name.endswith("_ablations") else pipeline_name
    return tags


def run_tags(pipeline_name: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The comparison tags of a run of ``pipeline_name`` ("a+b" for several) from its parameters.

    ``method``: the add-on (``addon.name``: caa / ecac) or the pipeline (``<x>_ablations`` → x);
    ``head`` / ``backbone``: ``model.head`` / ``model.backbone`` (OVSS: the compared architectures and
    ``clip.model``); ``dataset``: ``dataset.family``; ``vocabulary``: the training vocabulary
    (``train_vocabulary``; closed-set: ``dataset.reader_kwargs.vocabulary``, else the dataset's own);
    ``seed``: ``seeds`` (comma-joined) or ``training.seed``. Values of several blocks or pipelines are
    joined with ``+``; a tag with no value is ``n/a``.
    """
    names = [n for n in str(pipeline_name).split("+") if n] or ["__default__"]
    merged: dict[str, list[str]] = {}
    for name in names:
        if name == "__default__":  # what `kedro run` without --pipeline runs
            from seg_pipelines.pipeline_registry import DEFAULT_PIPELINE

            name = DEFAULT_PIPELINE
        for tag, value in _tags_of_one(name, params).items():
            merged.setdefault(tag, [])
            for part in value.split("+"):
                if part not in merged[tag]:
                    merged[tag].append(part)
    dataset = _lookup(params, "dataset.family")
    tags = {tag: "+".join(merged[tag]) if merged.get(tag) else NOT_APPLICABLE for tag in TAG_NAMES}
    tags["pipeline"] = "+".join(names)
    tags["dataset"] = str(dataset) if dataset is not None else NOT_APPLICABLE
    if tags["vocabulary"] == NOT_APPLICABLE and dataset is not None:
        tags["vocabulary"] = str(_lookup(params, "dataset.reader_kwargs.vocabulary") or dataset)
    return tags


class MlflowTrackingHook:
    """Kedro hook that mirrors a run into MLflow (see module docstring)."""

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}
        self._params: dict[str, Any] = {}
        self._project_path: Path = Path.cwd()
        self._run_active = False
        self._catalog = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._project_path = Path(context.project_path)
        try:
            self._config = dict(context.config_loader["mlflow"] or {})
        except Exception:  # no mlflow.yml in this environment: defaults apply
            self._config = {}
        self._params = dict(context.params or {})

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if not self._config.get("enabled", True):
            return
        import mlflow

        mlflow.set_tracking_uri(resolve_tracking_uri(self._project_path, self._config.get("tracking_uri")))
        mlflow.set_experiment(self._config.get("experiment_name", "seg_pipelines"))
        names = run_params.get("pipeline_names") or ["__default__"]
        run_name = "+".join(names)
        tags = {
            "kedro.pipeline": run_name,
            "kedro.env": str(run_params.get("env")),
            "kedro.run_id": str(run_params.get("run_id")),
            "kedro.version": str(run_params.get("kedro_version")),
        }
        try:
            tags.update(run_tags(run_name, self._params))
        except Exception as error:  # tagging must never stop a run
            logger.warning("MLflow: could not derive run tags: %s", error)
        mlflow.start_run(run_name=run_name, tags=tags)
        self._run_active = True
        self._catalog = catalog
        params = flatten_dict(self._params)
        params.update(flatten_dict(run_params.get("runtime_params") or {}, "runtime"))
        mlflow.log_params({_mlflow_key(k): str(v)[:MAX_PARAM_LENGTH] for k, v in params.items()})

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        if not self._run_active or self._catalog is None:
            return
        import mlflow

        try:
            dataset = self._catalog.get(dataset_name)
        except Exception:
            dataset = None
        metadata = getattr(dataset, "metadata", None) or {}
        role = metadata.get("mlflow")
        if role == "metrics" and isinstance(data, Mapping):
            mlflow.log_metrics(_numeric_metrics(data))
        elif role == "artifact":
            filepath = getattr(dataset, "_filepath", None)
            if filepath is not None and Path(str(filepath)).exists():
                layer = metadata.get("kedro-viz", {}).get("layer", "artifacts")
                mlflow.log_artifact(str(filepath), artifact_path=metadata.get("artifact_path", layer))
            else:
                logger.warning("MLflow: dataset %s has no local file to log as an artifact", dataset_name)

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        self._end_run("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params, pipeline, catalog) -> None:
        if self._run_active:
            import mlflow

            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
        self._end_run("FAILED")

    def _end_run(self, status: str) -> None:
        if not self._run_active:
            return
        import mlflow

        mlflow.end_run(status=status)
        self._run_active = False
        self._catalog = None

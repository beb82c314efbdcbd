"""MLflow tracking for every ``kedro run``: one run per run, named after the pipeline. Everything it
says to MLflow goes through :mod:`seg_pipelines.engine.tracking` (the tracking URI, tags, keys).

* Parameters: the run's Kedro parameters, flattened (``data_preparation.dataset.family``), logged
  once at the start; the whole resolved configuration also as the artifact ``config/parameters.yml``.
* Metrics: a saved dataset whose catalog ``metadata`` has ``mlflow: metrics`` must hold a
  (nested) dict of numbers; it is flattened and logged with ``mlflow.log_metrics``.
* Artifacts: a saved dataset whose ``metadata`` has ``mlflow: artifact`` is logged as a file
  (its ``filepath``) under ``artifact_path`` (default: its layer).
* Curves: a saved dataset whose ``metadata`` has ``mlflow_curve: {step: iteration, name: …}`` (a
  DataFrame or list of rows) is also logged as step metrics ``<name>/<column>``.
* Errors: the run ends with status ``FAILED`` and the error message as a tag; nothing logged
  before the failure is lost.
* Tags: ``pipeline``, ``method``, ``head``, ``backbone``, ``dataset``, ``vocabulary`` and ``seed``
  (:func:`run_tags`, from the run's parameters; ``n/a`` where a pipeline has no such notion), so
  MLflow's compare view and ``mlflow.search_runs`` line runs up.
"""

from __future__ import annotations

import atexit
import difflib
import logging
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from kedro.config import OmegaConfigLoader
from kedro.framework.hooks import hook_impl
from pydantic import BaseModel

from seg_pipelines.engine import tracking
from seg_pipelines.parameters import SCHEMAS, plain_data

logger = logging.getLogger(__name__)


class MlflowTrackingHook:
    """Kedro hook that mirrors a run into MLflow (see module docstring)."""

    def __init__(self, default_pipeline: str | None = None) -> None:
        self._default_pipeline = default_pipeline  # what ``__default__`` runs, for the run tags
        self._default_env = "local"  # what a run without --env reads (settings: default_run_env)
        self._config: dict[str, Any] = {}
        self._params: dict[str, Any] = {}
        self._project_path: Path = Path.cwd()
        self._run_active = False
        self._catalog = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._project_path = Path(context.project_path)
        loader_env = getattr(getattr(context, "config_loader", None), "default_run_env", None)
        self._default_env = str(getattr(context, "env", None) or loader_env or "local")
        try:
            self._config = dict(context.config_loader["mlflow"] or {})
        except Exception:  # no mlflow.yml in this environment: defaults apply
            self._config = {}
        self._params = plain_data(context.params or {})  # validated blocks arrive as models

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if not self._config.get("enabled", True):
            return
        names = run_params.get("pipeline_names") or ["__default__"]
        run_name = "+".join(names)
        tags = {
            "kedro.pipeline": run_name,
            "kedro.env": str(run_params.get("env") or self._default_env),
            "kedro.run_id": str(run_params.get("run_id")),
            "kedro.version": str(run_params.get("kedro_version")),
        }
        try:
            tags.update(tracking.run_tags(run_name, self._params, self._default_pipeline))
        except Exception as error:  # tagging must never stop a run
            logger.warning("MLflow: could not derive run tags: %s", error)
        # what tells runs apart: the pipeline's own blocks and the data blocks (every parameter: the config artifact)
        params = tracking.run_params(
            run_name, self._params, pipeline, self._default_pipeline, run_params.get("runtime_params")
        )
        uri = tracking.resolve_tracking_uri(self._project_path, self._config.get("tracking_uri"))
        for moved in tracking.relocate_moved_store(uri, self._project_path):  # a moved or copied project
            logger.warning("MLflow: this project's store was moved or copied; artifact locations rewritten: %s", moved)
        experiment = self._config.get("experiment_name", "seg_pipelines")
        name = tracking.run_name(run_name, tags, self._params, tags["kedro.env"], self._default_pipeline)
        tracking.start_run(uri, experiment, name, tags, params)
        tracking.log_config(self._params)
        self._run_active = True
        self._catalog = catalog
        # Ctrl-C raises KeyboardInterrupt, which Kedro passes to no hook (on_pipeline_error sees
        # Exceptions only): without this the interpreter's exit ended the run as FINISHED.
        atexit.register(self._end_interrupted_run)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        if not self._run_active or self._catalog is None:
            return
        try:
            dataset = self._catalog.get(dataset_name)
        except Exception:
            dataset = None
        metadata = getattr(dataset, "metadata", None) or {}
        role = metadata.get("mlflow")
        curve = metadata.get("mlflow_curve")
        if isinstance(curve, Mapping):  # a training curve: also step metrics, plotted by MLflow
            tracking.log_curve(str(curve.get("name", dataset_name)), data, str(curve.get("step", "iteration")))
        if role == "metrics" and isinstance(data, Mapping):
            tracking.log_metrics(data)
        elif role == "artifact":
            filepath = getattr(dataset, "_filepath", None)
            if filepath is not None and Path(str(filepath)).exists():
                layer = metadata.get("kedro-viz", {}).get("layer", "artifacts")
                tracking.log_artifact(filepath, metadata.get("artifact_path", layer))
            else:
                logger.warning("MLflow: dataset %s has no local file to log as an artifact", dataset_name)

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        self._end_run("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params, pipeline, catalog) -> None:
        if self._run_active:
            tracking.fail_run(error)
        self._end_run("FAILED")

    def _end_interrupted_run(self) -> None:
        """At interpreter exit: a run neither finished nor failed was interrupted (KILLED, with why)."""
        if self._run_active:
            tracking.fail_run(KeyboardInterrupt("interrupted: the process ended before the pipeline run did"))
        self._end_run("KILLED")

    def _end_run(self, status: str) -> None:
        if not self._run_active:
            return
        atexit.unregister(self._end_interrupted_run)
        tracking.end_run(status)
        self._run_active = False
        self._catalog = None


class UnknownParameterError(click.UsageError, ValueError):
    """A ``--params`` key that names no setting: click prints its one line and exits with status 2."""


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The parameter model a field holds (through Optional, unions, Annotated and lists), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _nested_model(argument)
        if found is not None:
            return found
    return None


def _schema_knows(model: type[BaseModel], path: list[str]) -> bool:
    """Whether ``path`` names a field of ``model`` (nested models followed; a free mapping such as
    ``addon.cfg`` or ``reader_kwargs`` takes any key below it)."""
    for key in path:
        if key not in model.model_fields:
            return False
        nested = _nested_model(model.model_fields[key].annotation)
        if nested is None:
            return True
        model = nested
    return True


def unknown_parameter(path: list[str], known: Mapping[str, Any]) -> str | None:
    """Why ``path`` (a ``--params`` key, split at dots) names no setting of ``known`` (the project's
    parameters without the run's overrides) nor of the block's model, with the closest names; None
    when it does."""
    node: Any = known
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping):
            return None  # a value replaced by a mapping: the parameter models judge the value
        if key in node:
            node = node[key]
            continue
        if path[0] in SCHEMAS and _schema_knows(SCHEMAS[path[0]], path[1:]):
            return None
        where = ".".join(path[:depth]) or "the parameters"
        close = difflib.get_close_matches(key, [str(k) for k in node], n=3)
        hint = f"; did you mean {' or '.join(repr('.'.join([*path[:depth], c])) for c in close)}?" if close else ""
        return f"--params {'.'.join(path)!r}: {where} has no key {key!r}{hint}"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a single value"


def incompatible_override(path: list[str], value: Any, known: Mapping[str, Any]) -> str | None:
    """Why ``--params <path>=<value>`` cannot be merged into ``known`` (a list where the configuration
    has a mapping, a key below a single value, ...), naming the key; None when it can."""
    node: Any = known
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping):
            parent = ".".join(path[:depth])
            return (
                f"--params {'.'.join(path)!r}: {parent!r} is {_kind(node)} ({node!r}), so it has no key {key!r}; "
                f"set {parent!r} itself"
            )
        if key not in node:
            return None  # a new key: the unknown-key check and the parameter models judge it
        node = node[key]
    name = ".".join(path)
    if isinstance(node, Mapping) and not isinstance(value, Mapping):
        keys = ", ".join(map(str, list(node)[:4])) + (", ..." if len(node) > 4 else "")
        first = next(iter(node), "<key>")
        return (
            f"--params {name!r}: got {_kind(value)} ({value!r}) where the configuration has a mapping "
            f"(keys {keys}); set its keys one at a time, e.g. --params={name}.{first}=..."
        )
    if isinstance(node, (list, tuple)) and isinstance(value, Mapping):
        return f"--params {name!r}: got a mapping ({value!r}) where the configuration has a list ({list(node)!r})"
    return None


class RuntimeParameterCheckHook:
    """A ``--params`` key must name a setting that exists (in the configuration or its parameter
    model): a typo (``caa.trainig.iterations=2``, ``predict.mdoe=slide``) stops the run before any node
    with the closest names, instead of training the defaults."""

    def __init__(self) -> None:
        self._loader: OmegaConfigLoader | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._loader = getattr(context, "config_loader", None)
        # Kedro merges --params into the configuration when anything first reads ``context.params``;
        # a list given for a mapping would stop it with OmegaConf's "Cannot merge incompatible
        # container types", which names no key. Pluggy calls this hook first (registered last).
        runtime = getattr(self._loader, "runtime_params", None) or {}
        if runtime and isinstance(self._loader, OmegaConfigLoader):
            known = self._parameters_without_overrides()
            problems = [
                problem
                for key, value in tracking.flatten_dict(runtime).items()
                if (problem := incompatible_override(key.split("."), value, known)) is not None
            ]
            if problems:
                raise UnknownParameterError("\n".join(problems))

    def _parameters_without_overrides(self) -> Mapping[str, Any]:
        loader = self._loader
        without_overrides = type(loader)(  # the project loader: its data_root rule applies
            conf_source=loader.conf_source,
            env=loader.env,
            base_env=loader.base_env,
            default_run_env=loader.default_run_env,
            config_patterns=loader.config_patterns,
            merge_strategy=loader.merge_strategy,
        )
        return without_overrides["parameters"]

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        runtime = run_params.get("runtime_params") or {}
        if not runtime or not isinstance(self._loader, OmegaConfigLoader):
            return
        known = self._parameters_without_overrides()
        problems = [
            problem
            for key in tracking.flatten_dict(runtime)
            if (problem := unknown_parameter(key.split("."), known)) is not None
        ]
        if problems:
            raise UnknownParameterError("\n".join(problems))


class RunProvenanceHook:
    """Kedro hook that records what each finished ``kedro run`` was made with: the environment, its data
    root, the dataset it read and its parameter blocks (:mod:`seg_pipelines.engine.provenance`), one
    record per pipeline under ``<reporting_dir>/provenance/``. The report states each section's dataset,
    budget and seeds from it ("as run"), not from today's configuration."""

    DATASET_NAMES = frozenset({"dataset_manifest", "prepared_index", "preparation_report"})

    def __init__(self, default_pipeline: str | None = None) -> None:
        self._default_pipeline = default_pipeline  # what ``__default__`` runs: its record's name
        self._project_path: Path = Path.cwd()
        self._env = "local"
        self._data_root = "data"
        self._params: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        loader = getattr(context, "config_loader", None)
        self._project_path = Path(context.project_path)
        self._env = str(getattr(context, "env", None) or getattr(loader, "default_run_env", None) or "local")
        try:
            self._data_root = str((loader["globals"] or {}).get("data_root", "data"))
        except Exception:  # no globals: the default root
            self._data_root = "data"
        self._params = plain_data(context.params or {})

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result, pipeline, catalog) -> None:
        from seg_pipelines.engine import provenance

        names = [
            self._default_pipeline if name == "__default__" and self._default_pipeline else name
            for name in (run_params.get("pipeline_names") or ["__default__"])
        ]
        blocks = tracking.parameter_blocks(pipeline)
        parameters = self._params if blocks is None else {k: v for k, v in self._params.items() if k in blocks}
        dataset = None
        if self.DATASET_NAMES & set(pipeline.datasets()):
            try:
                dataset = provenance.dataset_summary(catalog.load("preparation_report"))
            except Exception as error:  # a record without its dataset beats no record
                logger.warning("run record: could not read the preparation report: %s", error)
        report = self._params.get("report") if isinstance(self._params.get("report"), Mapping) else {}
        reporting_dir = self._project_path / str(report.get("reporting_dir") or f"{self._data_root}/08_reporting")
        env = str(run_params.get("env") or self._env)
        for name in dict.fromkeys(names):
            record = provenance.run_record(
                name, env, self._data_root, parameters, dataset, str(run_params.get("run_id") or "") or None
            )
            try:
                provenance.write_run_record(reporting_dir, record)
            except OSError as error:  # recording must never fail a finished run
                logger.warning("run record of %s not written: %s", name, error)

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
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_MAX_PARAM_LENGTH = 6000  # MLflow's limit for a parameter value


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


def _numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    metrics = {}
    for key, value in flatten_dict(values).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            metrics[key.replace(" ", "_")] = float(value)
    return metrics


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
        mlflow.start_run(run_name=run_name, tags=tags)
        self._run_active = True
        self._catalog = catalog
        params = flatten_dict(self._params)
        params.update(flatten_dict(run_params.get("runtime_params") or {}, "runtime"))
        mlflow.log_params({k: str(v)[:_MAX_PARAM_LENGTH] for k, v in params.items()})

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

"""MLflow tracking, the one place the project talks to MLflow: key cleaning, flattening, the run
tags, tracking-URI resolution and nested child runs. Used by the project hook
(:mod:`seg_pipelines.hooks`: one MLflow run per ``kedro run``) and by the ablation runner (one child
run per variant × seed).

* Tracking URI: ``$MLFLOW_TRACKING_URI`` > ``mlflow.tracking_uri`` in ``conf/<env>/mlflow.yml``
  > ``sqlite:///<project root>/mlflow.db``. Relative sqlite paths resolve against the project root.
* Tags: ``pipeline``, ``method``, ``head``, ``backbone``, ``dataset``, ``vocabulary`` and ``seed``
  (:func:`run_tags`, from the run's parameters; ``n/a`` where a pipeline has no such notion), so
  MLflow's compare view and ``mlflow.search_runs`` line runs up.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# MLflow 3 phones home unless told not to; the project never does (set "false" yourself to opt in).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

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
        uri = prefix + str((Path(project_path) / uri[len(prefix) :]).resolve())
    return uri


def mlflow_key(text: str, component: bool = False) -> str:
    """``text`` as an MLflow param/metric key: every character MLflow rejects (``[``, ``†``, ``+``,
    ``=``…) becomes ``_``, one for one, so distinct keys stay distinct; ``/`` (MLflow's grouping
    separator) is kept. With ``component`` the text is one readable part of a key (a table row such
    as ``w/o L_aux``): ``/`` goes too, runs of rejected characters become one ``_`` and the ends are
    trimmed."""
    if not component:
        return re.sub(r"[^\w\-. :/]", "_", str(text))
    return re.sub(r"[^\w.\- :]+", "_", str(text)).strip(" _") or "_"


def param_values(values: Mapping[str, Any], component: bool = False) -> dict[str, str]:
    """``values`` flattened, as MLflow params: keys through :func:`mlflow_key`, values as text cut
    to MLflow's length limit."""
    return {mlflow_key(k, component): str(v)[:MAX_PARAM_LENGTH] for k, v in flatten_dict(values).items()}


def numeric_metrics(values: Mapping[str, Any], flatten: bool = True) -> dict[str, float]:
    """The finite numbers of a (nested, when ``flatten``) mapping, keyed by :func:`mlflow_key`;
    booleans, strings and NaN/inf are left out."""
    metrics = {}
    for key, value in (flatten_dict(values) if flatten else values).items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            continue
        if math.isfinite(float(value)):
            metrics[mlflow_key(str(key).replace(" ", "_"), component=not flatten)] = float(value)
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
            value = next(
                (v for block in chain for key in keys if (v := _tag_text(_lookup(block, key), key)) is not None), None
            )
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


def run_tags(pipeline_name: str, params: Mapping[str, Any], default_pipeline: str | None = None) -> dict[str, str]:
    """The comparison tags of a run of ``pipeline_name`` ("a+b" for several) from its parameters.

    ``method``: the add-on (``addon.name``: caa / ecac) or the pipeline (``<x>_ablations`` → x);
    ``head`` / ``backbone``: ``model.head`` / ``model.backbone`` (OVSS: the compared architectures and
    ``clip.model``); ``dataset``: ``dataset.family``; ``vocabulary``: the training vocabulary
    (``train_vocabulary``; closed-set: ``dataset.reader_kwargs.vocabulary``, else the dataset's own);
    ``seed``: ``seeds`` (comma-joined) or ``training.seed``. Values of several blocks or pipelines are
    joined with ``+``; a tag with no value is ``n/a``. ``__default__`` (``kedro run`` without
    ``--pipelines``) is tagged as ``default_pipeline``.
    """
    names = [n for n in str(pipeline_name).split("+") if n] or ["__default__"]
    merged: dict[str, list[str]] = {}
    for name in names:
        if name == "__default__" and default_pipeline:  # what `kedro run` without --pipelines runs
            name = default_pipeline
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


# --- nested child runs (ablation variants) --------------------------------------------------------


# The project run's id and tracking URI, exported by :func:`start_run` for the worker processes of
# ``ParallelRunner`` (they inherit the environment but not MLflow's active run): an ablation node
# running there still logs its variant × seed as a child run of the ``kedro run``.
PARENT_RUN_ID_ENV = "SEG_PIPELINES_MLFLOW_PARENT_RUN_ID"
PARENT_TRACKING_URI_ENV = "SEG_PIPELINES_MLFLOW_PARENT_TRACKING_URI"


def active_mlflow():
    """The ``mlflow`` module when a run is active, else None (MLflow is optional here)."""
    try:
        import mlflow
    except ImportError:  # pragma: no cover - mlflow is a project dependency
        return None
    return mlflow if mlflow.active_run() is not None else None


def parent_run() -> tuple[str, str] | None:
    """(tracking URI, run id) of the run that child runs of this process belong to: the active run,
    else (a ``ParallelRunner`` worker) the project run exported in the environment; None without."""
    mlflow = active_mlflow()
    if mlflow is not None:
        return mlflow.get_tracking_uri(), mlflow.active_run().info.run_id
    run_id, uri = os.environ.get(PARENT_RUN_ID_ENV), os.environ.get(PARENT_TRACKING_URI_ENV)
    return (uri, run_id) if run_id and uri else None


class ChildRun:
    """A nested run logged through ``MlflowClient`` (no fluent active-run state, so the same code runs
    in the main process and in worker processes; many may run at once against one store)."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id

    def end(self, metrics: Mapping[str, float], status: str, error: str | None, terminal: str) -> None:
        """Log the metrics, the ``status`` tag and the error, then end the run as ``terminal``
        (FINISHED, FAILED, KILLED); tracking trouble is logged, never raised."""
        import time

        from mlflow.entities import Metric, RunTag

        try:
            stamp = int(time.time() * 1000)
            tags = [RunTag("status", status)] + ([RunTag("error", error[:5000])] if error else [])
            values = [Metric(key, float(value), stamp, 0) for key, value in metrics.items()]
            self.client.log_batch(self.run_id, metrics=values, tags=tags)
        except Exception as failure:  # tracking trouble must not stop the study
            logger.warning("MLflow: could not log child run: %s", failure)
        finally:
            try:
                self.client.set_terminated(self.run_id, status=terminal)
            except Exception as failure:
                logger.warning("MLflow: could not end child run: %s", failure)


def start_child_run(run_name: str, tags: Mapping[str, str], overrides: Mapping[str, Any]) -> ChildRun | None:
    """A child run of :func:`parent_run` named ``run_name`` with ``tags`` and the ``overrides`` as
    parameters; None when there is no parent run or MLflow fails (logged)."""
    parent = parent_run()
    if parent is None:
        return None
    uri, parent_id = parent
    try:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiment_id = client.get_run(parent_id).info.experiment_id
        run_tags = {**dict(tags), "mlflow.parentRunId": parent_id}
        run = client.create_run(experiment_id, tags=run_tags, run_name=run_name)
        params = [Param(key, value) for key, value in param_values(overrides, component=True).items()]
        if params:
            client.log_batch(run.info.run_id, params=params)
        return ChildRun(client, run.info.run_id)
    except Exception as error:  # tracking trouble must not stop the study
        logger.warning("MLflow: could not start child run %s: %s", run_name, error)
        return None


def end_running_child_runs(parent: tuple[str, str] | None, reason: str) -> list[str]:
    """End every child run of ``parent`` ((tracking URI, run id), as :func:`parent_run` gives it)
    still RUNNING as KILLED, with tags ``status: killed`` and ``error: reason``: the runs of nodes whose
    process died (a cluster worker killed mid-node), which nobody else ends. A runner calls it once
    none of its nodes runs; returns the ended runs' names. Tracking trouble is logged, never raised."""
    if parent is None:
        return []
    uri, parent_id = parent
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiment_id = client.get_run(parent_id).info.experiment_id
        running = client.search_runs(
            [experiment_id],
            f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'",
            max_results=10000,
        )
        for run in running:
            client.set_tag(run.info.run_id, "status", "killed")
            client.set_tag(run.info.run_id, "error", reason[:5000])
            client.set_terminated(run.info.run_id, status="KILLED")
        return [run.info.run_name for run in running]
    except Exception as error:
        logger.warning("MLflow: could not end the orphaned child runs of %s: %s", parent_id, error)
        return []


def _project_run():
    """(``MlflowClient``, run id) of :func:`parent_run`, or None: logging through the client writes to
    the ``kedro run``'s run from any process (a ``ParallelRunner`` worker has no active run, and
    MLflow's fluent API would silently start an orphan run there)."""
    parent = parent_run()
    if parent is None:
        return None
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=parent[0]), parent[1]


def log_params(values: Mapping[str, Any]) -> None:
    """Log ``values`` (flattened, keys cleaned, values cut to MLflow's limit) to the project run, if
    any; tracking trouble is logged, never raised."""
    try:
        target = _project_run()
        if target is None:
            return
        from mlflow.entities import Param

        client, run_id = target
        client.log_batch(run_id, params=[Param(k, v) for k, v in param_values(values).items()])
    except Exception as error:
        logger.warning("MLflow: could not log parameters: %s", error)


# --- the project run (one per ``kedro run``, started by the project hook) --------------------------


def parameter_blocks(pipeline: Any) -> list[str] | None:
    """The top-level parameter blocks a Kedro pipeline's nodes read (``params:caa.training`` →
    ``caa``), sorted; ``None`` when a node reads all ``parameters`` (or there is no pipeline)."""
    if pipeline is None:
        return None
    blocks = []
    for name in sorted(pipeline.inputs()):
        if name == "parameters":
            return None
        if name.startswith("params:"):
            blocks.append(name[len("params:") :].split(".")[0])
    return list(dict.fromkeys(blocks))


# Blocks that say which data a run read: logged with every pipeline that reads them.
DATA_BLOCKS = ("dataset", "synthetic_world", "preparation", "class_statistics")
# Environments whose runs are the default's (a plain `kedro run`): their run names carry no env.
DEFAULT_ENVS = ("local", "base")
LONG_PARAM_TEXT = 250  # a longer value (a long list) is logged as its size and a fingerprint


def own_blocks(pipeline_name: str, default_pipeline: str | None = None) -> tuple[str, ...]:
    """The parameter blocks that belong to ``pipeline_name`` itself ("a+b": both; ``__default__``:
    ``default_pipeline``'s): ``closed_set`` → caa, ecac; ``data_preparation`` → the data blocks; any
    other → the block named after it."""
    blocks: list[str] = []
    for name in str(pipeline_name).split("+"):
        if name == "__default__" and default_pipeline:
            name = default_pipeline
        if name == "data_preparation":
            blocks += DATA_BLOCKS
        else:
            blocks += PIPELINE_BLOCKS.get(name, (name,))
    return tuple(dict.fromkeys(blocks))


def _short_param(value: Any) -> Any:
    """``value``, or for one whose text is longer than :data:`LONG_PARAM_TEXT` (a long list of
    variants or classes) ``list of 40 items, 3f2a9c1e``: the size and a fingerprint still tell runs
    apart; the value itself is in the run's ``config/parameters.yml``."""
    text = str(value)
    if len(text) <= LONG_PARAM_TEXT:
        return value
    import hashlib

    kind = type(value).__name__
    size = f"{kind} of {len(value)} items" if isinstance(value, (list, tuple, dict)) else f"{len(text)} characters"
    return f"{size}, {hashlib.sha1(text.encode()).hexdigest()[:8]} (in config/parameters.yml)"


def run_params(
    pipeline_name: str,
    params: Mapping[str, Any],
    pipeline: Any,
    default_pipeline: str | None = None,
    runtime_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters logged with a ``kedro run``: what tells its runs apart, not all of them (every
    parameter is in the run's ``config/parameters.yml`` artifact).

    The pipeline's own blocks (:func:`own_blocks`) and the data blocks it reads (:data:`DATA_BLOCKS`),
    flattened, long values shortened (:func:`_short_param`), plus the ``--params`` overrides as
    ``runtime.*``; another pipeline's block that it composes (``clip_pretraining`` in ``lsmseg``) is left
    to that pipeline's runs. A pipeline whose node reads all ``parameters`` (``report``) logs its own
    block only; without a pipeline, every block."""
    read = parameter_blocks(pipeline)
    if pipeline is None:
        chosen = list(params)
    else:
        own = own_blocks(pipeline_name, default_pipeline)
        candidates = list(params) if read is None else read
        chosen = [b for b in candidates if b in own or (read is not None and b in DATA_BLOCKS)]
    values = {
        key: _short_param(value) for key, value in flatten_dict({b: params[b] for b in chosen if b in params}).items()
    }
    values.update(flatten_dict(runtime_params or {}, "runtime"))
    return values


def _checkpoint_label(path: Any) -> str | None:
    """``caa/method`` for ``data/06_models/caa/method.pt``; ``lsmseg`` for ``data/06_models/lsmseg.pt``
    (a Kedro layer folder such as ``06_models`` says nothing)."""
    if not path:
        return None
    checkpoint = Path(str(path))
    parent = checkpoint.parent.name
    return checkpoint.stem if not parent or re.match(r"^\d\d_", parent) else f"{parent}/{checkpoint.stem}"


def _inference_parts(pipeline_name: str, params: Mapping[str, Any]) -> list[str]:
    """What tells a ``predict`` / ``evaluate`` run apart: the checkpoint (and model key), and the input
    folder or the evaluated dataset (and vocabulary)."""
    block = params.get(pipeline_name)
    if not isinstance(block, Mapping):
        return []
    parts = []
    checkpoint = _checkpoint_label(block.get("checkpoint"))
    if checkpoint:
        parts.append(checkpoint + (f" [{block['model_key']}]" if block.get("model_key") else ""))
    if pipeline_name == "predict" and block.get("input"):
        parts.append(Path(str(block["input"])).name or str(block["input"]))
    dataset = block.get("dataset")
    if pipeline_name == "evaluate" and isinstance(dataset, Mapping):
        parts.append(
            "/".join(str(v) for v in (dataset.get("family"), dataset.get("vocabulary"), dataset.get("split")) if v)
        )
    return parts


def run_name(
    pipeline_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    env: str | None = None,
    default_pipeline: str | None = None,
) -> str:
    """A run name that tells runs apart in MLflow's list without opening them: the pipeline
    (``__default__`` by the pipeline it runs, ``lsmseg_attribute_selection (default)``), then what differs
    between its runs (method when it is not the pipeline's own, head, dataset, seed; for ``predict`` /
    ``evaluate`` the checkpoint and the input or dataset) and the environment when it is not the
    default's, e.g. ``caa · fcn · synthetic · seed 0 · env test``."""
    names = [
        f"{default_pipeline} (default)" if name == "__default__" and default_pipeline else name
        for name in str(pipeline_name).split("+")
    ]
    parts = ["+".join(names)]
    method, head, dataset, seed = (tags.get(k, NOT_APPLICABLE) for k in ("method", "head", "dataset", "seed"))
    if method != NOT_APPLICABLE and method not in parts[0]:
        parts.append(method)
    if head != NOT_APPLICABLE:
        parts.append(head)
    for name in names:
        if name in ("predict", "evaluate"):
            parts += _inference_parts(name, params or {})
    if dataset != NOT_APPLICABLE and not any(name in ("predict", "evaluate") for name in names):
        parts.append(dataset)
    if seed != NOT_APPLICABLE:
        parts.append(f"seed {seed}")
    if env and env not in DEFAULT_ENVS:
        parts.append(f"env {env}")
    return " · ".join(parts)


def artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: ``mlruns/`` beside a sqlite store (MLflow's own
    default is ``./mlruns`` in whatever the working directory is), the server's choice otherwise."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return (Path(tracking_uri[len(prefix) :]).resolve().parent / "mlruns").as_uri()


def _local_path(location: str) -> tuple[str, str] | None:
    """(scheme prefix, local path) of a local artifact location (``file:///a/mlruns`` or ``/a/mlruns/0``)."""
    if location.startswith("file://"):
        return "file://", location[len("file://") :]
    if location.startswith("/"):
        return "", location
    return None


def _moved_mlruns(location: str, here: Path) -> str | None:
    """The folder prefix to replace when ``location`` is ``<elsewhere>/mlruns`` or
    ``<elsewhere>/mlruns/<id>`` (where the store's artifacts lived before its project moved), else None."""
    found = _local_path(location)
    if found is None:
        return None
    scheme, path = found
    parts = Path(path).parts
    if "mlruns" not in parts[-2:]:
        return None
    old = Path(*parts[: len(parts) - parts[::-1].index("mlruns")])
    return None if old == here else scheme + old.as_posix()


def relocate_moved_store(tracking_uri: str, project_path: Path) -> list[str]:
    """When the project's own sqlite store (``<project>/mlflow.db``) was moved or copied with its
    project, point its artifact locations at this project's ``mlruns/`` again; one line per rewritten
    folder (empty when nothing moved).

    MLflow records absolute artifact locations (``file:///old/place/mlruns/…``); after a move it lists
    no artifacts and writes new ones into the old folder (a copy: into the original project's). MLflow
    has no API to change an experiment's artifact location, so its tables are updated in place
    (``experiments.artifact_location``, ``runs.artifact_uri``, ``logged_models.artifact_location``), only
    for a store that is the project's own file and locations of the form ``<elsewhere>/mlruns[/<id>]``."""
    import sqlite3

    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return []
    db = Path(tracking_uri[len(prefix) :]).resolve()
    if db != (Path(project_path) / db.name).resolve() or not db.is_file():
        return []
    here = db.parent / "mlruns"
    changed: list[str] = []
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "experiments" not in tables:
            return []
        for (location,) in connection.execute("SELECT DISTINCT artifact_location FROM experiments").fetchall():
            old = _moved_mlruns(str(location or ""), here)
            if old is None:
                continue
            new = ("file://" if old.startswith("file://") else "") + here.as_posix()
            columns = [("experiments", "artifact_location"), ("runs", "artifact_uri")]
            columns += [("logged_models", "artifact_location")] if "logged_models" in tables else []
            for table, column in columns:
                if table in tables:
                    connection.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE {column} = ? OR {column} LIKE ?",
                        (new, len(old) + 1, old, old + "/%"),
                    )
            changed.append(f"{old} -> {new}")
    return changed


class TrackingStoreError(RuntimeError):
    """MLflow's store cannot be read (a damaged sqlite file): names the store and what to do."""


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return error


def _is_sqlite_corruption(error: BaseException) -> bool:
    """Whether ``error`` comes from a sqlite file that is not a database or is malformed."""
    import sqlite3

    root = _root_cause(error)
    return isinstance(root, sqlite3.DatabaseError) and not isinstance(root, sqlite3.OperationalError)


def start_run(
    tracking_uri: str, experiment: str, run_name: str, tags: Mapping[str, str], params: Mapping[str, Any]
) -> None:
    """Start the run of a ``kedro run`` in ``experiment`` with ``tags`` and the (flattened,
    key-cleaned, length-limited) ``params``."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        existing = mlflow.get_experiment_by_name(experiment)
    except Exception as error:
        if not _is_sqlite_corruption(error):
            raise
        raise TrackingStoreError(
            f"MLflow's store {tracking_uri} cannot be read ({_root_cause(error)}): the file is damaged. Move it "
            "aside to start a new one (e.g. `mv mlflow.db mlflow.db.broken`; the runs it held are in it), or point "
            "MLFLOW_TRACKING_URI (or conf mlflow.yml tracking_uri) at another store"
        ) from error
    if existing is None:
        mlflow.create_experiment(experiment, artifact_location=artifact_location(tracking_uri))
    mlflow.set_experiment(experiment)
    run = mlflow.start_run(run_name=run_name, tags=dict(tags))
    os.environ[PARENT_RUN_ID_ENV], os.environ[PARENT_TRACKING_URI_ENV] = run.info.run_id, tracking_uri
    mlflow.log_params(param_values(params))


def log_config(values: Mapping[str, Any], artifact_file: str = "config/parameters.yml") -> None:
    """The run's resolved configuration (every parameter, runtime overrides included) as a YAML
    artifact of the active run: what `kedro run` actually ran with, beyond MLflow's param limits."""
    import mlflow

    mlflow.log_dict(json.loads(json.dumps(dict(values), default=str)), artifact_file)


def _log_metric_batch(metrics: Mapping[str, float], step: int = 0) -> None:
    target = _project_run()
    if target is None or not metrics:
        return
    import time

    from mlflow.entities import Metric

    client, run_id = target
    stamp = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), stamp, int(step)) for k, v in metrics.items()])


def log_metrics(values: Mapping[str, Any]) -> None:
    """The finite numbers of a (nested) mapping as metrics of the project run (:func:`parent_run`)."""
    _log_metric_batch(numeric_metrics(values))


def log_curve(name: str, rows: Any, step_key: str = "iteration") -> int:
    """A training curve (a DataFrame or a list of row dicts with ``step_key``) as step metrics
    ``<name>/<column>`` of the project run, so MLflow plots loss against iteration; returns the
    number of steps logged. Non-numeric and non-finite values are left out."""
    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows or [])
    logged = 0
    for row in records:
        if not isinstance(row, Mapping) or step_key not in row:
            continue
        values = {k: v for k, v in row.items() if k != step_key}
        metrics = {f"{name}/{key}": value for key, value in numeric_metrics(values, flatten=False).items()}
        if metrics:
            _log_metric_batch(metrics, step=int(row[step_key]))
            logged += 1
    return logged


def log_artifact(path: str | Path, artifact_path: str) -> None:
    """A local file as an artifact of the project run, under ``artifact_path``."""
    target = _project_run()
    if target is not None:
        client, run_id = target
        client.log_artifact(run_id, str(path), artifact_path=artifact_path)


def fail_run(error: BaseException) -> None:
    """Tag the active run with the error that stopped it."""
    import mlflow

    mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])


def end_run(status: str) -> None:
    """End the active run with ``status`` (FINISHED, FAILED, KILLED) and withdraw its export to
    worker processes."""
    import mlflow

    os.environ.pop(PARENT_RUN_ID_ENV, None)
    os.environ.pop(PARENT_TRACKING_URI_ENV, None)
    mlflow.end_run(status=status)


def main(argv: list[str] | None = None) -> int:
    """``python -m seg_pipelines.engine.tracking relocate [project]``: after moving or copying a project,
    point its ``mlflow.db`` at its own ``mlruns/`` (what every ``kedro run`` also does first)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "relocate":
        print("usage: python -m seg_pipelines.engine.tracking relocate [project folder, default: .]")
        return 2
    project = Path(args[1] if len(args) > 1 else ".").resolve()
    changed = relocate_moved_store(f"sqlite:///{project / 'mlflow.db'}", project)  # the project's own store
    print("\n".join(f"rewritten: {line}" for line in changed) or f"{project / 'mlflow.db'}: nothing to rewrite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

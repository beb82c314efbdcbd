"""``DaskRunner``: Table 3.2 on a 2-worker ``LocalCluster`` equals ``SequentialRunner``'s table, a
worker killed mid-node still gives the complete table (and no MLflow run stays RUNNING), an in-memory
hand-off between tasks is refused before any node runs, and training nodes ask for their resources."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import CachedDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro_datasets.json import JSONDataset

from seg_pipelines.runners import DaskRunner, InMemoryHandoffError, in_memory_handoffs
from seg_pipelines.runners.dask_runner import EVENT_TOPIC, parse_resources
from seg_pipelines.thesis_tables import SEED_SLOTS_ENV
from tests.conftest import PROJECT_ROOT

TABLE = "table_3_2"
OUTPUTS = [f"caa_ablations_{TABLE}_{o}" for o in ("summary", "runs", "md", "metrics")]
KILLED_NODE = f"caa_ablations.{TABLE}.CC_seed0"
KILLED_RUN = "caa_ablations/table_3_2/CC/seed0"  # its MLflow child run
# the test env trains one seed: one seed node per row (3 data preparation + 4 rows + 1 summary nodes)
NODES = 3 + 4 + 1


@pytest.fixture
def one_seed_slot(monkeypatch) -> None:
    monkeypatch.setenv(SEED_SLOTS_ENV, "1")


def _project(root: Path) -> Path:
    """A throw-away copy of the project (as ``tests.conftest.project_copy``) under ``root``."""
    root.mkdir(parents=True)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    (root / "src").mkdir()
    return root


def _run_table(root: Path, runner=None) -> dict[str, pd.DataFrame]:
    """Table 3.2 (and the data preparation it needs) on ``--env test``; the table and its runs."""
    bootstrap_project(root)
    with KedroSession.create(project_path=root, env="test") as session:
        session.run(pipeline_names=["caa_ablations"], runner=runner, to_outputs=OUTPUTS)
    out = root / "data/test/08_reporting/caa_ablations"
    return {
        "table": pd.read_csv(out / f"{TABLE}.csv", keep_default_na=False, dtype=str),
        # every column but the seconds a run took
        "runs": pd.read_csv(out / f"{TABLE}_runs.csv").drop(columns="seconds"),
    }


@pytest.fixture(scope="module")
def sequential_table(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Table 3.2 by ``SequentialRunner`` at one torch thread (as each Dask worker computes)."""
    import torch

    tmp = tmp_path_factory.mktemp("sequential")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        patch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
        patch.setenv(SEED_SLOTS_ENV, "1")
        patch.chdir(_project(tmp / "project"))
        torch.set_num_threads(1)
        try:
            return _run_table(Path.cwd())
        finally:
            torch.set_num_threads(threads)


def _mlflow_runs(tracking_uri: str) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.search_runs(search_all_experiments=True)


# --- end to end on a local cluster ---------------------------------------------------------------


@pytest.mark.slow
def test_table_3_2_on_a_two_worker_local_cluster_equals_sequential_runner(
    sequential_table, project_copy: Path, one_seed_slot
):
    runner = DaskRunner(n_workers=2, dashboard_address=":0")
    tables = _run_table(project_copy, runner)

    pd.testing.assert_frame_equal(tables["table"], sequential_table["table"])
    pd.testing.assert_frame_equal(tables["runs"], sequential_table["runs"])
    assert (tables["runs"]["status"] == "ok").all() and len(set(tables["runs"]["row"])) == 4
    # every node ran once, as a task of one of the two workers
    assert len(runner.node_reports) == len({r.node for r in runner.node_reports}) == NODES
    assert len({r.worker for r in runner.node_reports}) == 2
    # the workers wrote the settings-hash cache in the project, where a rerun (any runner) reuses it
    assert len(list((project_copy / "data/test/06_models/caa_ablations_runs/results").glob("*.json"))) == 4
    # MLflow: each (row, seed) a finished child run of the kedro run's run
    runs = _mlflow_runs(os.environ["MLFLOW_TRACKING_URI"])
    parent = runs[runs["tags.kedro.pipeline"] == "caa_ablations"]
    children = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"].item()]
    assert sorted(children["tags.mlflow.runName"]) == sorted(
        f"caa_ablations/table_3_2/{row}/seed0" for row in ("Baseline", "CC", "SA", "CC+SA")
    )
    assert (runs["status"] == "FINISHED").all()


@pytest.mark.slow
def test_a_worker_killed_during_a_node_still_gives_the_complete_table(
    sequential_table, project_copy: Path, one_seed_slot
):
    """A cluster the runner joins by address; the worker running ``CC_seed0`` is killed (SIGKILL) once
    that node's MLflow child run exists, i.e. mid-training; Dask reruns the node on a worker."""
    from distributed import Client, LocalCluster
    from mlflow.tracking import MlflowClient

    tracking_uri = os.environ["MLFLOW_TRACKING_URI"]
    killed: list[int] = []
    stop = threading.Event()

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        with Client(cluster) as watcher:
            pids: dict[str, int] = {}
            watcher.subscribe_topic(EVENT_TOPIC, lambda event: pids.setdefault(event[1]["node"], event[1]["pid"]))

            def kill_when_training() -> None:
                mlflow, experiments = MlflowClient(tracking_uri), []
                while not stop.is_set() and not killed:
                    time.sleep(0.1)
                    if KILLED_NODE not in pids:
                        continue
                    try:
                        experiments = experiments or [e.experiment_id for e in mlflow.search_experiments()]
                        query = f"attributes.run_name = '{KILLED_RUN}' and attributes.status = 'RUNNING'"
                        runs = mlflow.search_runs(experiments, query)
                    except Exception:  # the store is being created
                        continue
                    if runs:
                        os.kill(pids[KILLED_NODE], signal.SIGKILL)
                        killed.append(pids[KILLED_NODE])

            thread = threading.Thread(target=kill_when_training, daemon=True)
            thread.start()
            runner = DaskRunner(scheduler_address=cluster.scheduler_address)
            try:
                tables = _run_table(project_copy, runner)
            finally:
                stop.set()
                thread.join()

    assert killed, "the node's worker was never killed: the test did not test anything"
    assert runner.node_starts[KILLED_NODE] == 2  # rescheduled once by Dask
    pd.testing.assert_frame_equal(tables["table"], sequential_table["table"])
    pd.testing.assert_frame_equal(tables["runs"], sequential_table["runs"])
    # the killed attempt's child run was ended as KILLED, the rerun's finished; nothing left RUNNING
    runs = _mlflow_runs(tracking_uri)
    attempts = runs[runs["tags.mlflow.runName"] == KILLED_RUN]
    assert sorted(attempts["status"]) == ["FINISHED", "KILLED"]
    assert set(attempts["tags.status"]) == {"ok", "killed"}
    assert not (runs["status"] == "RUNNING").any()


# --- refused before it runs --------------------------------------------------------------------


def _write_marker(value: dict) -> dict:
    Path(value["marker"]).write_text("ran", encoding="utf-8")
    return value


def _read(value: dict) -> dict:
    return value


def test_an_in_memory_handoff_between_tasks_is_refused_before_any_node_runs(tmp_path, monkeypatch):
    marker = tmp_path / "first_node_ran"
    catalog = DataCatalog(
        {
            "config": MemoryDataset({"marker": str(marker)}),  # a free input: travels with the task
            "result": JSONDataset(filepath=str(tmp_path / "result.json")),
        }
    )
    pipeline = Pipeline(
        [
            Node(_write_marker, "config", "features", name="make_features"),  # features: no catalog entry
            Node(_read, "features", "result", name="use_features"),
        ]
    )
    started = []
    monkeypatch.setattr(DaskRunner, "_client", lambda self, pipeline: started.append(1))
    with pytest.raises(InMemoryHandoffError) as refused:
        DaskRunner(n_workers=1).run(pipeline, catalog)
    message = str(refused.value)
    assert "'features' (MemoryDataset): written by node 'make_features', read by 'use_features'" in message
    assert "catalog entry on storage every worker reads" in message
    assert "features:\n    type: pickle.PickleDataset" in message
    assert not marker.exists() and not started  # no node ran, no cluster started

    # what counts as in memory between tasks, and what does not
    catalog["features"] = CachedDataset(JSONDataset(filepath=str(tmp_path / "features.json")))
    assert [(h.dataset, h.kind) for h in in_memory_handoffs(pipeline, catalog)] == [("features", "CachedDataset")]
    catalog["features"] = JSONDataset(filepath="memory://features.json")
    assert [h.kind for h in in_memory_handoffs(pipeline, catalog)] == ["JSONDataset on memory://"]
    catalog["features"] = JSONDataset(filepath=str(tmp_path / "features.json"))
    assert in_memory_handoffs(pipeline, catalog) == []


def test_the_ablation_chapters_hand_nothing_between_nodes_in_memory(project_copy: Path):
    from kedro.framework.project import pipelines

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        catalog = session.load_context().catalog
    for name in ("caa_ablations", "ecac_ablations", "lsmseg_ablations"):
        assert in_memory_handoffs(pipelines[name], catalog) == [], name


# --- worker resources for training nodes ----------------------------------------------------------


def _task_resources(value: dict) -> dict:
    """The worker resources the running task asked for, as its worker knows them."""
    from distributed import get_worker

    worker = get_worker()
    return {"resources": worker.state.tasks[worker.get_current_task()].resource_restrictions or {}}


def test_training_nodes_ask_dask_for_the_training_resources(tmp_path, monkeypatch):
    assert parse_resources("GPU=1, memory=16e9") == {"GPU": 1.0, "memory": 16e9}
    with pytest.raises(ValueError, match="'GPU': amount 'one' is not a number"):
        parse_resources("GPU=one")
    monkeypatch.setenv("SEG_PIPELINES_DASK_TRAINING_RESOURCES", "GPU=1")
    runner = DaskRunner(n_workers=1, dashboard_address=":0")  # local workers offer the resources
    catalog = DataCatalog(
        {
            "config": MemoryDataset({}),
            "trained": JSONDataset(filepath=str(tmp_path / "trained.json")),
            "reported": JSONDataset(filepath=str(tmp_path / "reported.json")),
        }
    )
    pipeline = Pipeline(
        [
            Node(_task_resources, "config", "trained", name="train", tags={"training"}),
            Node(_task_resources, "trained", "reported", name="report"),
        ]
    )
    assert runner.resources_for(pipeline.nodes[0]) == {"GPU": 1.0} and runner.resources_for(pipeline.nodes[1]) is None
    # the ablation chapters' variant nodes are training nodes; their summaries are not
    from seg_pipelines.pipelines.caa_ablations import create_pipeline

    caa = {node.name: node for node in create_pipeline().nodes}
    assert runner.resources_for(caa[KILLED_NODE]) == {"GPU": 1.0}
    assert runner.resources_for(caa["caa_ablations.table_3_2.summary"]) is None

    runner.run(pipeline, catalog)
    assert json.loads((tmp_path / "trained.json").read_text()) == {"resources": {"GPU": 1.0}}
    assert json.loads((tmp_path / "reported.json").read_text()) == {"resources": {}}


# --- a node that raises --------------------------------------------------------------------------


def _fail(value: dict) -> dict:
    raise ValueError(f"cannot summarise {value}")


def test_a_node_that_raises_fails_the_run_after_the_independent_nodes_finish(tmp_path):
    catalog = DataCatalog(
        {
            "config": MemoryDataset({"marker": str(tmp_path / "independent_ran")}),
            **{name: JSONDataset(filepath=str(tmp_path / f"{name}.json")) for name in ("a", "b", "c")},
        }
    )
    pipeline = Pipeline(
        [
            Node(_fail, "config", "a", name="broken"),
            Node(_read, "a", "b", name="downstream_of_broken"),
            Node(_write_marker, "config", "c", name="independent"),
        ]
    )
    runner = DaskRunner(n_workers=1, dashboard_address=":0")
    with pytest.raises(ValueError, match="cannot summarise"):
        runner.run(pipeline, catalog)
    assert (tmp_path / "independent_ran").exists() and (tmp_path / "c.json").exists()
    assert not (tmp_path / "b.json").exists()
    assert [r.node for r in runner.node_reports] == ["independent"]


# --- the workers' process: allocator and imports ---------------------------------------------------


def _worker_environ(value: dict) -> dict:
    import dask

    environ = {name: os.environ.get(name) for name in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}
    return {**environ, "profiling": dask.config.get("distributed.worker.profile.enabled")}


def test_local_workers_keep_glibcs_allocator_defaults_and_one_thread(tmp_path, monkeypatch):
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_ in their workers (slower training steps,
    benchmarks/bench_dask_worker.py); the runner's local workers start without it, as ParallelRunner's
    do, keep Dask's one-thread limits, and run Dask's bookkeeping at the lean rates."""
    import dask

    assert dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"]  # Dask's default
    # a nanny started in this process earlier (another test's cluster) put it into os.environ
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    catalog = DataCatalog({"config": MemoryDataset({}), "env": JSONDataset(filepath=str(tmp_path / "env.json"))})
    DaskRunner(n_workers=1, dashboard_address=":0").run(Pipeline([Node(_worker_environ, "config", "env")]), catalog)
    expected = {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1", "profiling": False}
    assert json.loads((tmp_path / "env.json").read_text()) == expected
    DaskRunner(n_workers=1, dashboard_address=":0", lean_workers=False).run(
        Pipeline([Node(_worker_environ, "config", "env")]), catalog
    )
    assert json.loads((tmp_path / "env.json").read_text()) == {**expected, "profiling": True}
    with pytest.raises(ValueError, match="lean_workers must be true or false, got 'no'"):
        DaskRunner(lean_workers="no")


def test_workers_import_the_pipeline_ahead_and_a_tuned_allocator_on_a_joined_cluster_is_named(caplog):
    import ast
    import sys

    from distributed import Client, LocalCluster

    from seg_pipelines.pipelines.caa_ablations import create_pipeline
    from seg_pipelines.runners.dask_runner import (
        ProjectWarmup,
        _TaskContext,
        _warn_allocator_environ,
        node_modules,
        worker_environ_variable,
    )

    modules = node_modules(create_pipeline())
    assert modules and all(m.startswith("seg_pipelines.") for m in modules)
    context = _TaskContext("run", None, str(PROJECT_ROOT), None, None)
    probe = "email.mime.multipart"  # imported by nothing the worker loads by itself
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
        assert not any(client.run(lambda: probe in sys.modules).values())
        client.register_plugin(ProjectWarmup(context, [*modules, probe]))
        assert all(client.run(lambda: probe in sys.modules and all(m in sys.modules for m in modules)).values())
        # a cluster started with Dask's defaults (as `dask worker` does): the warning names the fix
        with caplog.at_level("WARNING", logger="seg_pipelines.runners.dask_runner"):
            _warn_allocator_environ(client)
    assert "1 of the cluster's workers run with MALLOC_TRIM_THRESHOLD_=65536" in caplog.text
    setting = worker_environ_variable()
    assert setting in caplog.text
    environ = ast.literal_eval(setting.split("=", 1)[1].strip('"'))
    assert "MALLOC_TRIM_THRESHOLD_" not in environ and environ["OMP_NUM_THREADS"] == 1


def test_the_readmes_worker_settings_leave_the_allocator_at_its_defaults():
    """The README's `dask worker` line and SLURM recipe give the nannies an environment without
    MALLOC_TRIM_THRESHOLD_ (checked the way Dask reads it: from the shell variable), and the recipe compiles."""
    import re
    import subprocess
    import sys

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    recipe = re.search(r"```python\n(# run_on_slurm\.py.*?)```", readme, re.S)
    assert recipe, "the SLURM recipe is gone from the README"
    compile(recipe.group(1), "run_on_slurm.py", "exec")
    values = re.findall(r"""DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=\\?"(\{.*?\})\\?\"""", readme)
    assert len(values) == 2  # the hand-started worker and the SLURM recipe
    for value in values:
        read = subprocess.run(
            [sys.executable, "-c", "import dask; print(dask.config.get('distributed.nanny.pre-spawn-environ'))"],
            env={**os.environ, "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": value},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "MALLOC" not in read and "OMP_NUM_THREADS" in read


def test_the_nodes_of_one_function_are_one_dask_task_group():
    """Dask queues a large task group on the scheduler (handing its tasks out as threads free up) only
    when the group's tasks share their key's leading word."""
    from dask.utils import key_split

    from seg_pipelines.pipelines.caa_ablations import create_pipeline
    from seg_pipelines.runners.dask_runner import task_key

    nodes = create_pipeline().nodes
    keys = [task_key(node, index, "0123456789ab") for index, node in enumerate(nodes)]
    assert len(set(keys)) == len(nodes)
    groups = {key_split(key) for key, node in zip(keys, nodes) if "_seed" in node.name}
    assert groups == {"CAAVariant"}
    assert key_split(keys[[n.name for n in nodes].index("caa_ablations.table_3_2.summary")]) == "CAASummary"

"""``DaskRunner``: a Kedro runner on ``dask.distributed`` (the pattern of Kedro's deployment docs for
Dask, on Kedro 1.7's ``AbstractRunner``).

* **One task per node.** Every node is submitted as one Dask task whose arguments include the
  futures of the nodes it reads from, so Dask starts it once they have finished, and the catalog
  entries of its own datasets (:func:`node_catalog`). The task loads the
  node's inputs from the catalog on the worker, runs the node with the project's hooks (as Kedro's
  ``ParallelRunner`` does in its worker processes) and saves its outputs there: what one node hands
  the next goes through the catalog, never through Dask's memory.
* **Where.** By default a ``LocalCluster`` on this machine: one worker process per core (at most as
  many as the pipeline can keep busy), one thread each. With a scheduler address (the runner's
  ``scheduler_address`` or ``$SEG_PIPELINES_DASK_SCHEDULER``) it joins that cluster instead: workers
  started by hand, by ``dask-jobqueue`` on SLURM, ... (README "Ablation chapters").
* **Workers as fast as ParallelRunner's.** The local workers start with glibc's allocator at its
  defaults (:func:`local_worker_environ`) and Dask's bookkeeping at lower rates
  (:data:`LEAN_WORKER_SETTINGS`); they import the node functions' modules as they join
  (:class:`ProjectWarmup`); one function's nodes form one Dask task group (:func:`task_key`), which the
  scheduler hands out as worker threads free up.
* **Nothing in memory between tasks.** Before any node runs, a pipeline that hands a dataset from
  one node to another in memory (``MemoryDataset``, a cached or single-process dataset, a
  ``memory://`` file) is refused with :class:`InMemoryHandoffError`, naming the dataset and the fix.
* **Faults.** A worker that dies mid-node has its task rescheduled by Dask on another worker
  (``distributed.scheduler.allowed-failures``, ``allowed_failures`` for the local cluster). A node
  that raises fails the run once every node that does not depend on it has finished (their results
  are kept: an ablation's finished settings are reused by their hash on the next run).
* **MLflow.** The ``kedro run``'s run (``engine.tracking.parent_run``) is handed to every task, so
  an ablation node on any worker logs its variant x seed as a child run of it; child runs left
  RUNNING by a worker that died are ended as KILLED when the run ends.
* **Progress.** Nodes done / running / failed are logged whenever a node starts or ends, with the
  Dask dashboard's address at the start; :attr:`DaskRunner.node_reports` keeps where and when each
  node ran.
* **Resources.** Nodes tagged ``training`` ask for ``training_resources`` (e.g. ``{"GPU": 1}``; or
  ``$SEG_PIPELINES_DASK_TRAINING_RESOURCES=GPU=1``): Dask runs them only on workers started with
  those resources (``dask worker ... --resources GPU=1``), one training per GPU.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin
from kedro.io import DataCatalog
from kedro.runner import AbstractRunner
from kedro.runner.task import Task

from seg_pipelines.engine import tracking

if TYPE_CHECKING:
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node
    from pluggy import PluginManager

logger = logging.getLogger(__name__)

SCHEDULER_ENV = "SEG_PIPELINES_DASK_SCHEDULER"
TRAINING_RESOURCES_ENV = "SEG_PIPELINES_DASK_TRAINING_RESOURCES"
TRAINING_TAG = "training"
EVENT_TOPIC = "seg_pipelines.runners.node"


# --- what crosses tasks ------------------------------------------------------------------------


@dataclass(frozen=True)
class InMemoryHandoff:
    """Dataset ``dataset`` (a ``kind``) written by node ``producer`` and read by ``consumers``."""

    dataset: str
    kind: str
    producer: str
    consumers: tuple[str, ...]


class InMemoryHandoffError(ValueError):
    """A pipeline hands data from one task to another in memory, which does not travel between workers."""

    def __init__(self, handoffs: Sequence[InMemoryHandoff]) -> None:
        self.handoffs = list(handoffs)
        lines = [
            f"  - {h.dataset!r} ({h.kind}): written by node {h.producer!r}, read by {', '.join(map(repr, h.consumers))}"
            for h in self.handoffs
        ]
        example = self.handoffs[0].dataset
        super().__init__(
            "DaskRunner runs every node as its own Dask task, possibly on another machine, and an in-memory "
            "dataset does not travel between workers; these datasets would be handed from one node to another "
            "in memory:\n" + "\n".join(lines) + "\nGive each a catalog entry on storage every worker reads "
            f"(a shared filesystem or an object store), e.g. in conf/base/catalog.yml:\n  {example}:\n"
            f"    type: pickle.PickleDataset\n    filepath: data/02_intermediate/{example}.pkl\n"
            "(no node ran)."
        )


def _kind_in_memory(dataset: Any) -> str | None:
    """Why ``dataset`` lives in one process's memory (its type, or its ``memory://`` protocol), or None."""
    if dataset is None:
        return "no catalog entry: MemoryDataset"
    if getattr(dataset, "_EPHEMERAL", False) or getattr(dataset, "_SINGLE_PROCESS", False):
        return type(dataset).__name__
    if getattr(dataset, "_protocol", None) == "memory":
        return f"{type(dataset).__name__} on memory://"
    return None


def in_memory_handoffs(pipeline: Pipeline, catalog: CatalogProtocol) -> list[InMemoryHandoff]:
    """Every dataset that one node of ``pipeline`` writes and another reads while it lives in memory
    (``MemoryDataset``, ``SharedMemoryDataset``, ``CachedDataset``, a single-process dataset, a file
    on ``memory://``, or no catalog entry at all): what a cluster runner cannot hand between tasks."""
    consumers: dict[str, list[str]] = defaultdict(list)
    for node in pipeline.nodes:
        for name in node.inputs:
            consumers[name].append(node.name)
    found = []
    for node in pipeline.nodes:
        for name in node.outputs:
            if name not in consumers:
                continue
            kind = _kind_in_memory(catalog.get(name, fallback_to_runtime_pattern=True))
            if kind is not None:
                found.append(InMemoryHandoff(name, kind, node.name, tuple(sorted(consumers[name]))))
    return found


def parse_resources(value: Mapping[str, Any] | str | None) -> dict[str, float]:
    """Worker resources from a mapping or ``"GPU=1,MEMORY=16e9"``; a bad amount names the key."""
    if not value:
        return {}
    items = value.items() if isinstance(value, Mapping) else (p.partition("=")[::2] for p in str(value).split(","))
    resources = {}
    for key, amount in items:
        key = str(key).strip()
        try:
            resources[key] = float(amount)
        except (TypeError, ValueError):
            raise ValueError(f"worker resource {key!r}: amount {amount!r} is not a number (e.g. GPU=1)") from None
        if not key or resources[key] <= 0:
            raise ValueError(f"worker resource {key!r}: needs a name and a positive amount (e.g. GPU=1)")
    return resources


# --- on the worker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeReport:
    """Where and when (``time.time()`` on the worker) one node ran."""

    node: str
    worker: str
    host: str
    pid: int
    started: float
    finished: float


@dataclass(frozen=True)
class _TaskContext:
    """What every task of one run needs besides its node: the project, the run's MLflow run."""

    run_key: str
    package_name: str | None
    project_path: str
    logging_config: dict[str, Any] | None
    mlflow_parent: tuple[str, str] | None  # (tracking URI, run id) of the kedro run's MLflow run


_WORKER_HOOKS: dict[str, Any] = {}  # one hook manager per worker process and project


def _worker_hook_manager(context: _TaskContext) -> PluginManager:
    """The project's hooks (``settings.HOOKS``) in this worker process, as ``ParallelRunner`` registers
    them in its workers; a fresh worker is first pointed at the project (package, working directory,
    logging). Plugins' hooks stay in the ``kedro run`` process: they never saw this worker's context or
    catalog (kedro-viz's dataset statistics only warn there)."""
    key = f"{context.package_name}@{context.project_path}"
    if key in _WORKER_HOOKS:
        return _WORKER_HOOKS[key]
    from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks
    from kedro.framework.project import PACKAGE_NAME, configure_logging, configure_project, settings

    project = Path(context.project_path)
    if Path.cwd().resolve() != project.resolve():
        if not project.is_dir():
            raise RuntimeError(
                f"Dask worker on {socket.gethostname()} cannot see the project at {project}: the catalog's paths "
                "are relative to it; start workers where that path is on shared storage"
            )
        os.chdir(project)  # the catalog's relative paths resolve against the project root
    if context.package_name and PACKAGE_NAME != context.package_name:
        configure_project(context.package_name)
        if context.logging_config:
            configure_logging(context.logging_config)
    hook_manager = _create_hook_manager()
    _register_hooks(hook_manager, settings.HOOKS)
    _WORKER_HOOKS[key] = hook_manager
    return hook_manager


@contextmanager
def _child_runs_of(parent: tuple[str, str] | None) -> Iterator[None]:
    """Within: ablation nodes log their runs as children of ``parent`` (the same environment variables
    a ``ParallelRunner`` worker inherits from the ``kedro run`` process)."""
    names = (tracking.PARENT_TRACKING_URI_ENV, tracking.PARENT_RUN_ID_ENV)
    before = {name: os.environ.get(name) for name in names}
    if parent is not None:
        os.environ.update(dict(zip(names, parent)))
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_node_task(
    node: Node, catalog: CatalogProtocol, is_async: bool, run_id: str | None, context: _TaskContext, *upstream: Any
) -> NodeReport:
    """The Dask task of one node: load its inputs from ``catalog``, run it with the project's hooks,
    save its outputs. ``upstream`` are the reports of the nodes it depends on (Dask passes their
    results once they are done; only the order matters)."""
    from distributed import get_worker

    worker = get_worker()
    started = time.time()
    event = {"run": context.run_key, "node": node.name, "worker": worker.address, "pid": os.getpid()}
    worker.log_event(EVENT_TOPIC, {**event, "event": "started", "time": started})
    hook_manager = _worker_hook_manager(context)
    with _child_runs_of(context.mlflow_parent):
        Task(node=node, catalog=catalog, is_async=is_async, hook_manager=hook_manager, run_id=run_id).execute()
    return NodeReport(node.name, worker.address, socket.gethostname(), os.getpid(), started, time.time())


class ProjectWarmup(WorkerPlugin):
    """A Dask worker plugin: on every worker of the run, as soon as it joins (a worker that replaces a
    dead one too), point the process at the project and import the modules of the pipeline's node
    functions (torch, the models, MLflow), while the first nodes still run elsewhere. ``ParallelRunner``'s
    forked workers inherit these imports; a fresh Dask worker process would pay them in its first node."""

    name = "seg_pipelines-project-warmup"

    def __init__(self, context: _TaskContext, modules: Sequence[str]) -> None:
        self.context = context
        self.modules = tuple(modules)

    def setup(self, worker: Any) -> None:
        _worker_hook_manager(self.context)
        for module in self.modules:
            importlib.import_module(module)


def node_modules(pipeline: Pipeline) -> list[str]:
    """The modules that define the node functions of ``pipeline`` (what a worker imports to run them)."""
    modules = {getattr(node.func, "__module__", None) for node in pipeline.nodes}
    return sorted(m for m in modules if m and m != "__main__")


# glibc reads MALLOC_TRIM_THRESHOLD_ when a process starts. Dask's nannies set it (65536) in every worker
# they spawn (distributed.nanny.pre-spawn-environ); setting it turns off glibc's adaptive mmap threshold,
# so every freed tensor above 128 KiB goes back to the OS and is faulted in again on the next allocation.
# Two busy Dask workers ran a chapter-3 training step in 1.23x the time of two plain processes with
# Dask's defaults and 0.99x with this variable unset (benchmarks/bench_dask_worker.py, 4 rounds, 64x64
# crops, one thread). ParallelRunner's workers have glibc's defaults. None unsets a variable there.
ALLOCATOR_VARIABLES = ("MALLOC_TRIM_THRESHOLD_",)


# Dask's own bookkeeping in every process of a local cluster, at its default rates: each worker samples
# the stack of its running task every 10 ms (the dashboard's Profile page), every event loop checks its
# ticks every 20 ms, workers report system metrics every 500 ms and nannies check memory every 100 ms.
# With one worker per core it takes its time from the cores that train: on two busy workers a chapter-3
# training step took 0.99x the time of two plain processes with the allocator fix alone and 0.92x with
# these rates as well (benchmarks/bench_dask_worker.py, 4 rounds; Dask's defaults: 1.23x).
# ``lean_workers=False`` keeps Dask's defaults.
LEAN_WORKER_SETTINGS: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def local_worker_environ() -> dict[str, Any]:
    """The environment Dask's nannies give each worker (``distributed.nanny.pre-spawn-environ`` of
    Dask's configuration) with glibc's allocator left at its defaults (:data:`ALLOCATOR_VARIABLES`
    unset), as in a ``ParallelRunner`` worker; the thread limits (``OMP_NUM_THREADS=1``, ...) stay."""
    import dask

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", {})
    return {**environ, **dict.fromkeys(ALLOCATOR_VARIABLES)}


def local_cluster_settings(allowed_failures: int = 3, lean_workers: bool = True) -> dict[str, Any]:
    """The Dask configuration the runner starts its ``LocalCluster`` under: the retries of a node whose
    worker died, the workers' environment (:func:`local_worker_environ`) and, with ``lean_workers``,
    :data:`LEAN_WORKER_SETTINGS`."""
    return {
        "distributed.scheduler.allowed-failures": int(allowed_failures),
        "distributed.nanny.pre-spawn-environ": local_worker_environ(),
        **(LEAN_WORKER_SETTINGS if lean_workers else {}),
    }


def worker_environ_variable() -> str:
    """The shell setting that starts ``dask worker`` nannies with :func:`local_worker_environ` (a
    dict given this way replaces Dask's whole default, so it repeats the thread limits)."""
    kept = {name: value for name, value in local_worker_environ().items() if value is not None}
    return f'DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{kept!r}"'


def _allocator_environ() -> dict[str, str]:
    """Runs on a worker: the allocator variables set in its environment."""
    return {name: os.environ[name] for name in ALLOCATOR_VARIABLES if name in os.environ}


# --- on the client ------------------------------------------------------------------------------


def task_key(node: Node, index: int, run_key: str) -> str:
    """The Dask key of ``node``'s task: ``<function>-<index>-<run>``. Dask groups tasks by the key's
    leading word, so the nodes of one function (chapter 3's 120 ``CAAVariant`` nodes) form one task
    group, and a large group with few dependencies is queued on the scheduler and handed to a worker
    when one of its threads is free. With the node's name as the key, every task was its own group and
    went to a worker's queue as soon as it was ready; at the end of chapter 3 one worker then stood idle
    while the other worked through its queue (150-190 worker-seconds between trainings in all, most in
    the last 40 % of the run, against 28-57 under ParallelRunner: the runs' MLflow stores read with
    benchmarks/bench_chapter_runners.child_run_usage).
    The node's name stays in the log and in :attr:`DaskRunner.node_reports`."""
    func = node.func
    name = getattr(func, "__name__", None) or type(func).__name__
    word = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "node"
    return f"{word}-{index}-{run_key}"


def node_catalog(catalog: CatalogProtocol, node: Node) -> DataCatalog:
    """The datasets ``node`` loads, saves or confirms, as the catalog its task carries (not every
    dataset and parameter of the project with every task)."""
    names = {*node.inputs, *node.outputs, *node.confirms}
    return DataCatalog(datasets={name: catalog.get(name, fallback_to_runtime_pattern=True) for name in names})


@dataclass
class _Progress:
    """Nodes done / running / failed of one run, logged whenever one starts or ends (start events
    come from the workers, ends from the futures; a node started twice lost its worker)."""

    run_key: str
    total: int
    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    running: dict[str, str] = field(default_factory=dict)  # node -> worker
    starts: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self) -> str:
        return f"{len(self.done)} of {self.total} nodes done, {len(self.running)} running, {len(self.failed)} failed"

    def on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        message = event[1]
        if not isinstance(message, Mapping) or message.get("run") != self.run_key:
            return
        name, worker = str(message["node"]), str(message["worker"])
        with self.lock:
            self.starts[name] += 1
            if name in self.done or name in self.failed:
                return
            self.running[name] = worker
            again = f" (attempt {self.starts[name]}: its previous worker died)" if self.starts[name] > 1 else ""
            logger.info("DaskRunner: started %s on %s%s; %s", name, worker, again, self.line())

    def ended(self, name: str, error: BaseException | None, detail: str = "") -> None:
        with self.lock:
            self.running.pop(name, None)
            (self.failed if error is not None else self.done).add(name)
            if error is None:
                logger.info("DaskRunner: completed %s%s; %s", name, detail, self.line())
            else:
                logger.error("DaskRunner: node %s failed%s: %s; %s", name, detail, _describe(error), self.line())


def _describe(error: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(error, KilledWorker):
        return (
            f"{error} (its worker died each time it ran it: distributed.scheduler.allowed-failures "
            "bounds the retries; look for a node that exhausts the worker's memory)"
        )
    return f"{type(error).__name__}: {error}"


class DaskRunner(AbstractRunner):
    """Runs each node of a pipeline as a ``dask.distributed`` task (see the module docstring).

    From the command line, arguments go through ``--runner-params``::

        kedro run --pipelines=caa_ablations --runner=seg_pipelines.runners.DaskRunner \\
            --runner-params=scheduler_address=tcp://head:8786,training_resources.GPU=1
    """

    def __init__(
        self,
        scheduler_address: str | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        allowed_failures: int = 3,
        memory_limit: str | int = 0,
        dashboard_address: str = ":8787",
        lean_workers: bool = True,
        training_resources: Mapping[str, float] | str | None = None,
        is_async: bool = False,
    ) -> None:
        """Args:
        scheduler_address: join the Dask cluster whose scheduler listens there (default
            ``$SEG_PIPELINES_DASK_SCHEDULER``); without one, start a ``LocalCluster`` for the run.
        n_workers: worker processes of the local cluster (default: one per core, at most as many as
            the pipeline can keep busy).
        threads_per_worker: threads of each local worker (1: one node per process, like ParallelRunner).
        allowed_failures: how often the local scheduler reruns a node whose worker died before it
            gives up on it (an existing scheduler uses its own ``distributed.scheduler.allowed-failures``).
        memory_limit: memory per local worker before its nanny restarts it (0: no limit, like
            ParallelRunner's processes; e.g. "8GB").
        dashboard_address: where the local cluster serves its dashboard (":0": any free port).
        lean_workers: run the local cluster's bookkeeping at lower rates (:data:`LEAN_WORKER_SETTINGS`:
            no task profiling, 1 s ticks, 5 s system metrics); False keeps Dask's defaults (the
            dashboard's Profile page needs them).
        training_resources: worker resources each node tagged ``training`` needs, e.g. ``{"GPU": 1}``
            (default ``$SEG_PIPELINES_DASK_TRAINING_RESOURCES``, e.g. ``GPU=1``).
        is_async: load and save each node's datasets with threads.
        """
        super().__init__(is_async=is_async)
        if threads_per_worker < 1 or allowed_failures < 0:
            raise ValueError(
                f"DaskRunner: threads_per_worker must be >= 1 and allowed_failures >= 0, "
                f"got {threads_per_worker} and {allowed_failures}"
            )
        self._scheduler_address = scheduler_address or os.environ.get(SCHEDULER_ENV) or None
        self._n_workers = None if n_workers is None else self._validate_max_workers(int(n_workers))
        self._threads_per_worker = int(threads_per_worker)
        self._allowed_failures = int(allowed_failures)
        self._memory_limit = memory_limit
        if not isinstance(lean_workers, bool):
            raise ValueError(f"DaskRunner: lean_workers must be true or false, got {lean_workers!r}")
        self._lean_workers = lean_workers
        self._dashboard_address = dashboard_address
        self._training_resources = parse_resources(
            training_resources if training_resources is not None else os.environ.get(TRAINING_RESOURCES_ENV)
        )
        self.node_reports: list[NodeReport] = []
        self.node_starts: Counter = Counter()

    def _get_executor(self, max_workers: int) -> None:
        return None  # nodes go to Dask, not to a concurrent.futures executor

    def resources_for(self, node: Node) -> dict[str, float] | None:
        """The worker resources ``node``'s task asks for: ``training_resources`` for a training node."""
        return dict(self._training_resources) if self._training_resources and TRAINING_TAG in node.tags else None

    def _validate_catalog(self, catalog: CatalogProtocol, pipeline: Pipeline | None = None) -> None:
        if pipeline is None:
            return
        handoffs = in_memory_handoffs(pipeline, catalog)
        if handoffs:
            raise InMemoryHandoffError(handoffs)

    @contextmanager
    def _client(self, pipeline: Pipeline) -> Iterator[Any]:
        """A client of the scheduler at the configured address, or of a local cluster for this run."""
        import dask
        from distributed import Client, LocalCluster

        if self._scheduler_address:
            client = Client(self._scheduler_address)
            try:
                workers = client.scheduler_info(n_workers=-1).get("workers", {})
                logger.info(
                    "DaskRunner: joined the cluster at %s (%d workers); dashboard: %s",
                    self._scheduler_address,
                    len(workers),
                    _dashboard(client),
                )
                yield client
            finally:
                client.close()
            return
        n_workers = self._n_workers or min(
            self._validate_max_workers(None), len(pipeline.nodes) - len(pipeline.grouped_nodes) + 1
        )
        settings = local_cluster_settings(self._allowed_failures, self._lean_workers)
        level = _project_log_level("distributed")
        if level is not None:  # the local workers log Dask's own messages at the project's level too
            settings["distributed.nanny.pre-spawn-environ"]["DASK_LOGGING__DISTRIBUTED"] = level.lower()
        with dask.config.set(settings):
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=self._threads_per_worker,
                processes=True,
                memory_limit=self._memory_limit,
                dashboard_address=self._dashboard_address,
                resources=self._training_resources or None,
            )
        client = Client(cluster)
        try:
            logger.info(
                "DaskRunner: local cluster of %d workers x %d thread(s) at %s; dashboard: %s",
                n_workers,
                self._threads_per_worker,
                cluster.scheduler_address,
                _dashboard(client),
            )
            yield client
        finally:
            client.close()
            cluster.close()

    def _warn_without_resources(self, client: Any, pipeline: Pipeline) -> None:
        wanted = {name for node in pipeline.nodes for name in (self.resources_for(node) or {})}
        if not wanted:
            return
        workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
        offered = {name for worker in workers for name in (worker.get("resources") or {})}
        if not wanted <= offered:
            logger.warning(
                "DaskRunner: nodes tagged %r need worker resources %s, which no worker offers yet: they wait "
                "for a worker started with e.g. `dask worker <scheduler> --resources GPU=1`",
                TRAINING_TAG,
                self._training_resources,
            )

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
    ) -> None:
        from distributed import as_completed
        from kedro.framework.project import LOGGING, PACKAGE_NAME

        nodes = pipeline.nodes
        self._validate_catalog(catalog, pipeline)  # before any cluster starts or node runs
        _keep_project_log_levels(LOGGING)
        self.node_reports, self.node_starts = [], Counter()
        parent = tracking.parent_run()
        context = _TaskContext(
            run_key=uuid.uuid4().hex[:12],
            package_name=PACKAGE_NAME,
            project_path=str(Path.cwd()),
            logging_config=dict(LOGGING) if LOGGING else None,
            mlflow_parent=parent,
        )
        load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
        dependencies = pipeline.node_dependencies
        progress = _Progress(context.run_key, len(nodes))
        try:
            with self._client(pipeline) as client:
                self._warn_without_resources(client, pipeline)
                if self._scheduler_address:
                    _warn_allocator_environ(client)
                client.subscribe_topic(EVENT_TOPIC, progress.on_event)
                futures: dict[Node, Any] = {}
                for index, node in enumerate(nodes):  # topological order: upstream futures exist already
                    futures[node] = client.submit(
                        run_node_task,
                        node,
                        node_catalog(catalog, node),
                        self._is_async,
                        run_id,
                        context,
                        *[futures[upstream] for upstream in dependencies[node]],
                        key=task_key(node, index, context.run_key),
                        pure=False,
                        resources=self.resources_for(node),
                    )
                # the workers import the project while the first nodes run (one is already on its way)
                _register_warmup(client, ProjectWarmup(context, node_modules(pipeline)))
                node_of = {future.key: node for node, future in futures.items()}
                done_nodes: set[Node] = set()
                errors: dict[Node, BaseException] = {}
                for future in as_completed(list(futures.values())):
                    node = node_of[future.key]
                    if future.status == "finished":
                        report = future.result()
                        self.node_reports.append(report)
                        done_nodes.add(node)
                        seconds = report.finished - report.started
                        progress.ended(node.name, None, f" on {report.worker} in {seconds:.1f} s")
                        self._release_datasets(node, catalog, load_counts, pipeline)
                        continue
                    # an upstream failure errs its dependents too, in any order as_completed yields them
                    upstream_failed = [up.name for up in dependencies[node] if futures[up].status == "error"]
                    error = future.exception()
                    errors[node] = error
                    detail = f" (not run: upstream {', '.join(upstream_failed)} failed)" if upstream_failed else ""
                    progress.ended(node.name, error, detail)
                client.unsubscribe_topic(EVENT_TOPIC)
                _unregister_warmup(client)
                self.node_starts = Counter(progress.starts)
            if errors:
                self._suggest_resume_scenario(pipeline, done_nodes, catalog)
                first = next(n for n in nodes if n in errors and not any(u in errors for u in dependencies[n]))
                raise errors[first]
            logger.info("DaskRunner: %s", progress.line())
        finally:
            # a worker that died mid-node left that node's MLflow child run RUNNING; no node runs now
            ended = tracking.end_running_child_runs(parent, "killed: the worker running this node died")
            if ended:
                logger.warning("DaskRunner: ended %d orphaned MLflow child run(s) as KILLED: %s", len(ended), ended)


def _dashboard(client: Any) -> str:
    """The dashboard's address, or why there is none."""
    link = client.dashboard_link
    if importlib.util.find_spec("bokeh") is None:
        return f"{link} (serves nothing without bokeh: pip install bokeh)"
    return link


def _register_warmup(client: Any, plugin: ProjectWarmup) -> None:
    """Register ``plugin`` on every worker; a worker that cannot import the project only warns here
    (its nodes fail with the reason when they run)."""
    try:
        client.register_plugin(plugin, name=plugin.name)
    except Exception as error:  # noqa: BLE001 - the nodes report the same failure with their names
        logger.warning("DaskRunner: a worker could not import the project ahead of its nodes: %s", _describe(error))


def _unregister_warmup(client: Any) -> None:
    """An existing cluster keeps registered plugins: take this run's off it (new workers joining later
    would warm up for a finished run)."""
    try:
        client.unregister_worker_plugin(ProjectWarmup.name)
    except Exception as error:  # noqa: BLE001 - nothing depends on it
        logger.debug("DaskRunner: could not unregister the warm-up plugin: %s", error)


def _warn_allocator_environ(client: Any) -> None:
    """Warn when the workers of a joined cluster run with glibc's allocator tuned by Dask's nannies
    (see :data:`ALLOCATOR_VARIABLES`), naming the setting that leaves it at its defaults."""
    tuned = {worker: env for worker, env in client.run(_allocator_environ).items() if env}
    if tuned:
        example = next(iter(tuned.values()))
        logger.warning(
            "DaskRunner: %d of the cluster's workers run with %s (set by Dask's nannies): training "
            "steps took 1.2x as long so (benchmarks/bench_dask_worker.py). Start them with %s",
            len(tuned),
            ", ".join(f"{k}={v}" for k, v in example.items()),
            worker_environ_variable(),
        )


def _project_log_level(name: str) -> str | None:
    """The level the project's logging configuration gives logger ``name``, if any."""
    from kedro.framework.project import LOGGING

    level = (((LOGGING or {}).get("loggers") or {}).get(name) or {}).get("level")
    return None if level is None else str(level)


def _keep_project_log_levels(logging_config: Mapping[str, Any] | None) -> None:
    """Importing ``distributed`` sets its loggers' levels from Dask's config (INFO), over the project's
    logging configuration (conf/logging.yml: WARNING); put back the levels the project gives them."""
    for name, settings in ((logging_config or {}).get("loggers") or {}).items():
        if (name == "distributed" or name.startswith("distributed.")) and "level" in (settings or {}):
            logging.getLogger(name).setLevel(settings["level"])

"""Thesis Table 3.2 on ``--env test`` under SequentialRunner, ParallelRunner and DaskRunner, in one run.

Each runner runs ``kedro run --env test --pipelines=caa_ablations --namespaces=caa_ablations.table_3_2``
(every (row, seed slot) node and the table's summary) in its own child process, on its own copy of
the project: the prepared synthetic world is made once beforehand (``data_preparation``) and copied,
while the ablation results, their settings-hash cache and the MLflow store start empty for every
runner, so nothing is reused between them. ``OMP_NUM_THREADS=1`` for all: one node per process and
one thread per node, as ``make ablations`` runs them. ``ParallelRunner`` and ``DaskRunner`` get
``--workers`` processes (DaskRunner: a ``LocalCluster`` of that many workers, one thread each).

Reported per runner: ``wall_s`` (``session.run``, cluster start and stop included) and
``process_wall_s`` (the child process, imports included), the nodes' own seconds (load + run + save,
measured where they ran; the first node on a fresh worker process also imports the project and torch),
``nodes_span_s`` (first node start to last node end) and ``outside_nodes_s`` (``wall_s`` minus it:
the session, MLflow run and, for Dask, the cluster's start and stop), and ``scheduling_overhead_s``:
the median seconds between the end of one node and the start of the next node on the same worker
when that next node was already ready (all its upstream nodes had ended) — the time a free worker
waits for the engine. Ratios are against
SequentialRunner and against ParallelRunner of the same run. The machine's load average is recorded
around each runner: quote it with the numbers.

    python benchmarks/bench_runners.py [--runners sequential parallel dask] [--workers 2] [--output f.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from kedro.runner.task import Task  # noqa: E402

from _project import emit_report  # noqa: E402

NAMESPACE = "caa_ablations.table_3_2"
RUNNERS = ("sequential", "parallel", "dask")
TIMINGS_ENV = "BENCH_RUNNERS_TIMINGS"


def _project_copy(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, root / name)
    (root / "src").mkdir()
    return root


# --- child process: one runner ----------------------------------------------------------------


class TimedTask(Task):
    """kedro's Task, recording (node, pid, start, end) of each execution to ``$BENCH_RUNNERS_TIMINGS``
    (one JSON line per node, one file per process): how Sequential- and ParallelRunner's nodes are timed
    (a module-level class: ParallelRunner pickles its tasks)."""

    def execute(self):
        started = time.time()
        node = super().execute()
        line = {"node": node.name, "worker": str(os.getpid()), "started": started, "finished": time.time()}
        with open(Path(os.environ[TIMINGS_ENV]) / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as stream:
            stream.write(json.dumps(line) + "\n")
        return node


def run_child(runner_name: str, project: Path, workers: int, output: Path) -> None:
    """Run the table under ``runner_name`` in ``project``; write timings and dependencies to ``output``."""
    import kedro.runner.runner
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.pipeline import Pipeline
    from kedro.runner import ParallelRunner, SequentialRunner

    from seg_pipelines.runners import DaskRunner

    timings_dir = output.parent / f"{runner_name}_timings"
    timings_dir.mkdir()
    os.environ[TIMINGS_ENV] = str(timings_dir)
    kedro.runner.runner.Task = TimedTask  # AbstractRunner._run builds its tasks from this name
    os.chdir(project)
    bootstrap_project(project)
    runner = {
        "sequential": lambda: SequentialRunner(),
        "parallel": lambda: ParallelRunner(max_workers=workers),
        "dask": lambda: DaskRunner(n_workers=workers, dashboard_address=":0"),
    }[runner_name]()
    load_before = os.getloadavg()
    with KedroSession.create(project_path=project, env="test") as session:
        started = time.perf_counter()
        session.run(pipeline_names=["caa_ablations"], namespaces=[NAMESPACE], runner=runner)
        wall = time.perf_counter() - started
    if isinstance(runner, DaskRunner):
        reports = [
            {"node": r.node, "worker": str(r.pid), "started": r.started, "finished": r.finished}
            for r in runner.node_reports
        ]
    else:
        reports = [json.loads(line) for path in timings_dir.glob("*.jsonl") for line in path.read_text().splitlines()]
    table = Pipeline([n for n in pipelines["caa_ablations"].nodes if n.name.startswith(NAMESPACE + ".")])
    dependencies = {node.name: sorted(up.name for up in ups) for node, ups in table.node_dependencies.items()}
    summary = (project / "data/test/08_reporting/caa_ablations/table_3_2.csv").read_text(encoding="utf-8")
    output.write_text(
        json.dumps(
            {
                "wall_s": wall,
                "nodes": reports,
                "dependencies": dependencies,
                "table_csv": summary,
                "load_before": load_before,
                "load_after": os.getloadavg(),
            }
        )
    )


# --- parent: prepare, run each runner, compare -----------------------------------------------------


def scheduling_gaps(nodes: list[dict], dependencies: dict[str, list[str]]) -> list[float]:
    """Seconds from the end of a node to the start of the next node on the same worker, for every next
    node that was ready (its upstream nodes all ended) by the time the worker became free."""
    ended = {n["node"]: n["finished"] for n in nodes}
    by_worker: dict[str, list[dict]] = {}
    for node in nodes:
        by_worker.setdefault(node["worker"], []).append(node)
    gaps = []
    for runs in by_worker.values():
        runs.sort(key=lambda n: n["started"])
        for before, after in zip(runs, runs[1:]):
            ready_at = max((ended.get(up, 0.0) for up in dependencies.get(after["node"], [])), default=0.0)
            if ready_at <= before["finished"]:
                gaps.append(after["started"] - before["finished"])
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--workers", type=int, default=2, help="processes of ParallelRunner / Dask workers")
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    parser.add_argument("--child", choices=RUNNERS, help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, Path(args.project), args.workers, Path(args.child_output))
        return

    env = {**os.environ, "OMP_NUM_THREADS": "1", "KEDRO_DISABLE_TELEMETRY": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    kedro = [str(Path(sys.executable).with_name("kedro"))]
    with tempfile.TemporaryDirectory(prefix="bench_runners_") as tmp:
        work = Path(tmp)
        template = _project_copy(work / "template")
        subprocess.run(
            [*kedro, "run", "--env", "test", "--pipelines=data_preparation"],
            cwd=template,
            env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'template.db'}"},
            check=True,
            capture_output=True,
        )
        results = {}
        for name in args.runners:
            project = work / name
            shutil.copytree(template, project)
            output = work / f"{name}.json"
            started = time.perf_counter()
            child = subprocess.run(
                [sys.executable, __file__, "--child", name, "--workers", str(args.workers)]
                + ["--project", str(project), "--child-output", str(output)],
                env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{work / (name + '.db')}"},
                capture_output=True,
                text=True,
            )
            if child.returncode != 0:
                raise SystemExit(f"{name}: the run failed:\n{child.stderr[-4000:]}")
            measured = json.loads(output.read_text())
            measured["process_wall_s"] = time.perf_counter() - started
            results[name] = measured

    report: dict = {"table": "3.2", "env": "test", "workers": args.workers, "cpu_count": os.cpu_count(), "runners": {}}
    for name, measured in results.items():
        gaps = scheduling_gaps(measured["nodes"], measured["dependencies"])
        nodes = measured["nodes"]
        node_seconds = [n["finished"] - n["started"] for n in nodes]
        span = max(n["finished"] for n in nodes) - min(n["started"] for n in nodes)
        first_on_worker = {}
        for node in sorted(nodes, key=lambda n: n["started"]):
            first_on_worker.setdefault(node["worker"], node["finished"] - node["started"])
        report["runners"][name] = {
            "wall_s": round(measured["wall_s"], 2),
            "process_wall_s": round(measured["process_wall_s"], 2),
            "nodes": len(measured["nodes"]),
            "workers_used": len({n["worker"] for n in measured["nodes"]}),
            "node_seconds_sum": round(sum(node_seconds), 2),
            "node_seconds_median": round(statistics.median(node_seconds), 3),
            "first_node_on_each_worker_s": sorted(round(v, 2) for v in first_on_worker.values()),
            "nodes_span_s": round(span, 2),
            "outside_nodes_s": round(measured["wall_s"] - span, 2),
            "scheduling_overhead_s": round(statistics.median(gaps), 4) if gaps else None,
            "scheduling_gaps_counted": len(gaps),
            "load_average_1min_before_after": [round(measured[k][0], 2) for k in ("load_before", "load_after")],
        }
    for baseline in ("sequential", "parallel"):
        if baseline in results:
            report[f"wall_ratio_vs_{baseline}"] = {
                name: round(results[name]["wall_s"] / results[baseline]["wall_s"], 3) for name in results
            }
    tables = {results[name]["table_csv"] for name in results}
    report["same_table"] = len(tables) == 1
    emit_report(report, None, args.output)


if __name__ == "__main__":
    main()

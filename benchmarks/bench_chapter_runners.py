"""A whole ablation chapter under ParallelRunner and DaskRunner, as ``make ablations`` runs it, in one run.

For each runner: a fresh ``git clone`` of this project's last commit (fresh ``data/``, MLflow store and
settings-hash cache: nothing is reused between runners), then
``OMP_NUM_THREADS=1 kedro run --pipelines=<chapter> --runner=<runner>`` with this interpreter's
environment (the clone's ``src`` first on ``PYTHONPATH``), timed from outside (process start to exit).
Reported per runner: ``seconds``, the chapter's findings line, and, from the clone's MLflow store, the
(row, seed) child runs that trained (over 1 s): their count, summed seconds, the span from the first's
start to the last's end, and ``idle_worker_seconds`` in that span (the integral of ``workers`` minus the
child runs running at once; per tenth of the span too). Then the wall-time ratio against ParallelRunner
and whether the chapter's CSVs (tables and per-run rows, without the runs' seconds) are identical.
Chapter 3 at its 5 seeds takes ~20 min per runner on 2 cores: run it alone.

    python benchmarks/bench_chapter_runners.py [--chapter caa_ablations] [--runners parallel dask] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _project import emit_report  # noqa: E402

RUNNERS = {"parallel": "ParallelRunner", "dask": "seg_pipelines.runners.DaskRunner"}


def child_run_usage(store: Path, chapter: str, workers: int) -> dict:
    """Training child runs of ``chapter`` in the MLflow store ``store`` and the idle worker-seconds between them."""
    with sqlite3.connect(store) as db:
        runs = db.execute(
            "select start_time / 1000.0, end_time / 1000.0 from runs "
            "where name like ? and end_time - start_time > 1000",
            (f"{chapter}/%",),
        ).fetchall()
    if not runs:
        return {"trained_runs": 0}
    first, last = min(s for s, _ in runs), max(e for _, e in runs)
    events = sorted([(s, 1) for s, _ in runs] + [(e, -1) for _, e in runs])
    running, previous, idle, tenths = 0, first, 0.0, [0.0] * 10
    for moment, change in events:
        gap = (workers - running) * (moment - previous)
        idle += gap
        tenths[min(int((previous - first) / max(last - first, 1e-9) * 10), 9)] += gap
        running, previous = running + change, moment
    return {
        "trained_runs": len(runs),
        "trained_seconds_sum": round(sum(e - s for s, e in runs), 1),
        "span_s": round(last - first, 1),
        "idle_worker_seconds": round(idle, 1),
        "idle_worker_seconds_by_tenth": [round(v, 1) for v in tenths],
    }


def comparable_tables(folder: Path) -> dict[str, str]:
    """Every CSV the chapter wrote, as text, without the ``seconds`` column (a run's duration; which of
    two identical settings trained and which reused it may differ between runners)."""
    import pandas as pd

    tables = {}
    for path in sorted(folder.glob("*.csv")):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        tables[path.name] = table.drop(columns=["seconds"], errors="ignore").to_csv(index=False)
    return tables


def run_chapter(runner: str, chapter: str, workdir: Path, workers: int) -> dict:
    clone = workdir / runner
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(clone / "src"), env.get("PYTHONPATH")]))
    env.pop("MLFLOW_TRACKING_URI", None)  # the clone's own store (conf/base/mlflow.yml)
    kedro = str(Path(sys.executable).with_name("kedro"))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(clone / "run.log", "w", encoding="utf-8") as log:
        code = subprocess.run(
            [kedro, "run", f"--pipelines={chapter}", f"--runner={RUNNERS[runner]}"],
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        ).returncode
    seconds = time.perf_counter() - started
    report_md = clone / "data/08_reporting" / f"{chapter}.md"
    findings = next((line for line in report_md.read_text().splitlines() if "findings" in line), None)
    tables = comparable_tables(clone / "data/08_reporting" / chapter)
    return {
        "runner": RUNNERS[runner],
        "commit": subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "exit_code": code,
        "seconds": round(seconds, 1),
        "findings": findings.strip("- ") if findings else None,
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **child_run_usage(clone / "mlflow.db", chapter, workers),
        "_tables": tables,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--chapter", default="caa_ablations", choices=["caa_ablations", "ecac_ablations", "lsmseg_ablations"]
    )
    parser.add_argument("--runners", nargs="+", choices=list(RUNNERS), default=list(RUNNERS))
    parser.add_argument("--keep", default=None, help="keep the clones (and their run.log) under this folder")
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench_chapter_") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = {name: run_chapter(name, args.chapter, workdir, workers) for name in args.runners}
    tables = {name: r.pop("_tables") for name, r in results.items()}
    report: dict = {"chapter": args.chapter, "workers": workers, "runners": results}
    if "parallel" in results:
        report["seconds_ratio_vs_parallel"] = {
            name: round(r["seconds"] / results["parallel"]["seconds"], 3) for name, r in results.items()
        }
    report["same_tables"] = len({tuple(sorted(t.items())) for t in tables.values()}) == 1
    emit_report(report, None, args.output)


if __name__ == "__main__":
    main()

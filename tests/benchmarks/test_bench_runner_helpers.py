"""The arithmetic of benchmarks/bench_chapter_runners.py (idle worker-seconds between MLflow child runs)
and the Dask settings benchmarks/bench_dask_worker.py compares."""

from __future__ import annotations

import sqlite3

import pytest

from tests.benchmarks.conftest import load_benchmark


def _store(path, runs):
    with sqlite3.connect(path) as db:
        db.execute("create table runs (name text, start_time integer, end_time integer)")
        db.executemany("insert into runs values (?, ?, ?)", runs)
    return path


def test_idle_worker_seconds_integrate_the_free_workers_between_training_runs(tmp_path):
    bench = load_benchmark("bench_chapter_runners")
    # 2 workers; seconds: a 0-10, b 0-4, c 6-10 (b's worker idle 4-6), d 10-20 alone (10 idle); a reused run
    # (under 1 s) and the parent run are not training runs
    runs = [("ch/a/seed0", 0, 10_000), ("ch/b/seed0", 0, 4_000), ("ch/c/seed0", 6_000, 10_000)]
    runs += [("ch/d/seed0", 10_000, 20_000), ("ch/e/seed0", 5_000, 5_300), ("ch · fcn", -5_000, 21_000)]
    usage = bench.child_run_usage(_store(tmp_path / "mlflow.db", runs), "ch", workers=2)
    assert usage["trained_runs"] == 4
    assert usage["trained_seconds_sum"] == 28.0 and usage["span_s"] == 20.0
    assert usage["idle_worker_seconds"] == pytest.approx(2 + 10)
    assert usage["idle_worker_seconds_by_tenth"][2] == pytest.approx(2)  # 4-6 s
    assert sum(usage["idle_worker_seconds_by_tenth"][5:]) == pytest.approx(10)


def test_the_worker_benchmark_compares_what_the_runner_starts_its_workers_with():
    bench = load_benchmark("bench_dask_worker")
    assert bench._dask_settings("dask_defaults") == {}
    environ = bench._dask_settings("dask_runner_environ")["distributed.nanny.pre-spawn-environ"]
    assert environ["MALLOC_TRIM_THRESHOLD_"] is None and environ["OMP_NUM_THREADS"] == 1
    runner = bench._dask_settings("dask_runner")
    assert runner["distributed.worker.profile.enabled"] is False
    assert runner["distributed.nanny.pre-spawn-environ"] == environ

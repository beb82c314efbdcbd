"""benchmarks/bench_default_runs.py's summary: ratios and the parallel pair's per-model wall time,
from hand-made child records (the children themselves train for minutes: run the script)."""

from __future__ import annotations

import pytest


def _record(train_s: float, process_s: float, miou: float) -> dict:
    return {
        "iterations": 100,
        "default_iterations": 800,
        "build_s": 2.0,
        "train_s": train_s,
        "evaluate_s": 8.0,
        "mIoU": miou,
        "step_gflop": 1.5,
        "matmul_peak_gflops": 100.0,
        "process_s": process_s,
    }


def test_summary_ratios_and_parallel_pair(bench):
    old, new = _record(40.0, 60.0, 20.0), _record(20.0, 40.0, 20.5)
    pair = [_record(30.0, 45.0, 20.25), _record(31.0, 48.0, 20.75)]
    result = bench._summarise(old, new, pair)
    assert result["ratio_it_per_s"] == pytest.approx(2.0)
    assert result["ratio_wall"] == pytest.approx(50.0 / 30.0)
    # 800 default iterations at 0.4 / 0.2 s each, plus build and evaluation
    assert old["estimated_default_run_s"] == pytest.approx(2.0 + 320.0 + 8.0)
    assert new["gflops"] == pytest.approx(1.5 * 5.0)
    assert new["fraction_of_matmul_peak"] == pytest.approx(0.075)
    parallel = result["parallel"]
    assert parallel["pair_process_s"] == 48.0  # the later of the two, both started together
    assert parallel["wall_per_model_s"] == pytest.approx(24.0)
    assert parallel["ratio_old_vs_parallel_per_model"] == pytest.approx(60.0 / 24.0)
    assert parallel["ratio_new_vs_parallel_per_model"] == pytest.approx(40.0 / 24.0)
    assert parallel["mIoU_difference_parallel_minus_new"] == pytest.approx(-0.25)


def test_summary_without_the_parallel_path(bench):
    result = bench._summarise(_record(40.0, 60.0, 20.0), _record(20.0, 40.0, 20.0))
    assert "parallel" not in result
    assert result["mIoU_difference_new_minus_old"] == 0.0

"""benchmarks/bench_folder_reader.py at a tiny size: the folder reader's index equals the ADE20K reader's on
the same files (class ids and RGB copies with a palette), and the report has its ratios."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.conftest import load_benchmark


def test_folder_reader_benchmark_reads_the_ade_files_identically_and_reports_ratios(tmp_path):
    bench = load_benchmark("bench_folder_reader")
    output = tmp_path / "report.json"
    report = bench.main(["--n", "10", "--size", "32", "48", "--repeats", "1", "--output", str(output)])
    assert json.loads(output.read_text()) == report
    assert report["index_equal_to_ade"] == {"folder_ids": True, "folder_rgb": True}
    rows = report["readers"]
    assert set(rows) == {"ade20k_150", "folder_ids", "folder_rgb"}
    assert report["ratio_folder_ids_over_ade_images_per_s"] == pytest.approx(
        rows["ade20k_150"]["index_s"] / rows["folder_ids"]["index_s"], rel=0.02
    )

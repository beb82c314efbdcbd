"""The thesis-size smoke run (benchmarks/thesis_smoke.py). The full rows take minutes each and ~6 GB:
they are marked ``thesis_size`` and deselected by default (``pytest -m thesis_size tests/benchmarks``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "thesis_smoke.py"


@pytest.fixture(scope="module")
def smoke():
    spec = importlib.util.spec_from_file_location("thesis_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_cover_the_issue_and_memory_guard_reports_not_run(smoke, monkeypatch, tmp_path):
    assert len(smoke.CLOSED_SET_ROWS) == 7 * 3 + 1 and "fcn@r101" in smoke.ROWS
    assert {"catseg", "lsmseg", "lsmseg+sam1024"} <= set(smoke.ROWS)
    monkeypatch.setattr(smoke, "available_gib", lambda: 3.0)
    rows = smoke.main(["--rows", "lsmseg+sam1024", "fcn", "--workdir", str(tmp_path)])
    assert [r["status"] for r in rows] == ["not run", "not run"]
    assert rows[0]["reason"] == "needs ~16.0 GiB, 3.0 GiB available"
    assert smoke.thesis_params("fcn") == 11.87 and smoke.thesis_params("pspnet+caa") == 26.75


@pytest.mark.thesis_size
@pytest.mark.parametrize("row", ["fcn", "fcn+caa"])
def test_thesis_size_closed_set_row(smoke, tmp_path, row):
    result = smoke.run_row_here(row, tmp_path)
    assert result["status"] == "ok", result.get("trace")
    if row == "fcn":  # Table 4.6: the FCN decode head at 150 classes
        assert result["head_params_M"] == pytest.approx(11.87, rel=0.01)
    assert len(result["losses"]) == 2 and result["eval_whole_mIoU"] >= 0 and result["eval_slide_mIoU"] >= 0

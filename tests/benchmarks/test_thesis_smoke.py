"""The thesis-size smoke run (benchmarks/thesis_smoke.py). The full rows take minutes each and ~6 GB:
they are marked ``thesis_size`` and deselected by default (``pytest -m thesis_size tests/benchmarks``)."""

from __future__ import annotations

import pytest


def test_rows_cover_the_issue_and_memory_guard_reports_not_run(smoke, monkeypatch, tmp_path):
    assert len(smoke.CLOSED_SET_ROWS) == 7 * 3 + 1 and "fcn@r101" in smoke.ROWS
    assert {"catseg", "lsmseg", "lsmseg+sam1024"} <= set(smoke.ROWS)
    assert [smoke.group_of(r) for r in ("pspnet+ecac", "fcn@r101", "catseg", "lsmseg", "lsmseg+sam1024")] == [
        "pspnet@r50",
        "fcn@r101",
        "ovss",
        "ovss",
        "ovss+sam1024",
    ]
    monkeypatch.setattr(smoke, "available_gib", lambda: 3.0)
    rows = smoke.main(["--rows", "lsmseg+sam1024", "fcn", "--workdir", str(tmp_path)])
    assert [(r["row"], r["status"]) for r in rows] == [
        ("fcn", "not run"),
        ("lsmseg+sam1024", "not run"),
    ]  # largest last
    assert rows[1]["reason"] == "needs ~18.0 GiB, 3.0 GiB available"
    assert smoke.thesis_params("fcn") == 11.87 and smoke.thesis_params("pspnet+caa") == 26.75


def test_node_meter_measures_each_node_from_its_own_start(smoke):
    meter = smoke.NodeMeter()

    class FakeNode:
        name = "n"

    meter.before_node_run(FakeNode())
    block = bytearray(200 * 2**20)  # 200 MiB touched inside the node
    block[::4096] = b"x" * len(block[::4096])
    meter.after_node_run(FakeNode())
    del block
    assert meter.nodes["n"]["seconds"] >= 0 and meter.nodes["n"]["peak_rss_GiB"] > 0.19


@pytest.mark.thesis_size
def test_thesis_size_closed_set_rows(smoke, tmp_path):
    results = smoke.run_group_here("fcn@r50", ["fcn", "fcn+caa"], tmp_path)
    assert [r["status"] for r in results] == ["ok", "ok"], results[0].get("trace")
    assert results[0]["head_params_M"] == pytest.approx(11.87, rel=0.01)  # Table 4.6: FCN decode head, 150 classes
    for result in results:
        assert len(result["losses"]) == 2 and result["eval_whole_mIoU"] >= 0 and result["eval_slide_mIoU"] >= 0

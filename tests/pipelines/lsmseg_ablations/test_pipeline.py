"""``lsmseg_ablations`` end to end through Kedro (smoke settings): the thesis's rows and columns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

# Row and column labels as the thesis prints them (Tables 5.5, 5.6, 5.7, 5.10, 5.11).
SIX = ["A-847", "PC-459", "A-150", "PC-59", "VOC", "VOCb"]


EXPECTED = {
    "table_5_5": ("K", ["16", "32", "48", "64", "96"], SIX + ["avg."]),
    "table_5_6": (
        "Methods",
        ["CATSeg [†]", "LSMSeg(w/o SAM)", "LSMSeg(w/ Dinov2-B)", "LSMSeg(w/ SAM-B)", "LSMSeg(w/ SAM-L)"],
        SIX,
    ),
    "table_5_7": ("Methods", ["Baseline", "Concat", "Attn", "Weighted"], SIX + ["avg."]),
    "table_5_10": ("Methods", ["Freeze", "CLIP_qk", "CLIP_kv", "CLIP_qv"], SIX + ["avg."]),
    "table_5_11": (
        "Methods",
        [
            f"{m} ({d})"
            for d in ("COCO-Stuff", "PC-59", "A-150")
            for m in ("ZegFormer [49]", "SimSeg [48]", "CAT-Seg [100]", "LSMSeg (ours)")
        ],
        SIX,
    ),
}


def test_lsmseg_ablations_pipeline_runs_end_to_end(project_copy: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow.tracking import MlflowClient

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(
            pipeline_names=["lsmseg_ablations"]
        )  # data_preparation, clip_pretraining, sam_pretraining come with it
    folder = project_copy / "data/test/08_reporting/lsmseg_ablations"
    for key, (header, rows, columns) in EXPECTED.items():
        table = pd.read_csv(folder / f"{key}.csv", keep_default_na=False, dtype={header: str})
        judged = ["Δ vs baseline", "verdict"]
        measured = [c for c in table.columns if not c.startswith("thesis ") and c not in ["Training dataset", *judged]]
        assert measured == [header, *columns], key
        assert list(table.columns[len(measured) : len(measured) + 2]) == judged or key == "table_5_11", key
        assert list(table[header]) == rows, key
        assert [c for c in table.columns if c.startswith("thesis ")] == [f"thesis {c}" for c in columns]
        markdown = (folder / f"{key}.md").read_text()
        assert markdown.startswith(f"## Table {key[6:].replace('_', '.')}:") and "Budget: 1 iterations" in markdown
        runs = pd.read_csv(folder / f"{key}.runs.csv")
        seeds = {0, 1} if key == "table_5_7" else {0}  # smoke: two seeds for Table 5.7 only
        assert set(runs["seed"]) == seeds
        for row in rows:
            cells = table.loc[table[header] == row, columns].iloc[0]
            if "Dinov2" in row or "ZegFormer" in row or "SimSeg" in row:  # not implemented: reported failed
                assert all(str(c).startswith("failed: NotImplementedError") for c in cells), (key, row)
                continue
            for cell in cells:  # "mean ± std" over two seeds, the plain mean for one; mIoU in %
                values = [float(x) for x in str(cell).split(" ± ")]
                assert len(values) == len(seeds) and 0 <= values[0] <= 100 and values[-1] >= 0, (key, row, cell)
            ok = runs[(runs["row"] == row) & (runs["metric"] == "avg.")]
            six = runs[(runs["row"] == row) & runs["metric"].isin(SIX)].groupby("seed")["value"].mean()
            assert (ok["status"] == "ok").all() and ok.set_index("seed")[
                "value"
            ].sort_index().tolist() == pytest.approx(six.sort_index().tolist())
        metrics = json.loads((folder / f"{key}.metrics.json").read_text())
        assert metrics[f"{key}/seconds"] > 0
        assert {f"{key}/findings/{v}" for v in ("reproduced", "contradicted", "unresolved")} <= set(metrics)
        assert "findings (t95 interval of the paired difference over seeds):" in markdown
    # the chapter's report: every table, opening with the verdict counts summed over the tables
    chapter = (project_copy / "data/test/08_reporting/lsmseg_ablations.md").read_text(encoding="utf-8")
    assert chapter.startswith("# Chapter 5 ablations (LSMSeg)")
    assert all(f"## Table {key[6:].replace('_', '.')}:" in chapter for key in EXPECTED)
    table_metrics = {key: json.loads((folder / f"{key}.metrics.json").read_text()) for key in EXPECTED}
    totals = {
        verdict: sum(int(flat[f"{key}/findings/{verdict}"]) for key, flat in table_metrics.items())
        for verdict in ("reproduced", "contradicted", "unresolved")
    }
    assert sum(totals.values()) > 0
    assert (
        f"{totals['reproduced']} reproduced, {totals['contradicted']} contradicted, {totals['unresolved']} unresolved"
        in chapter.split("\n\n")[1]
    )
    table_5_11 = pd.read_csv(folder / "table_5_11.csv")
    assert list(table_5_11["Training dataset"]) == [d for d in ("COCO-Stuff", "PC-59", "A-150") for _ in range(4)]
    # rows with identical settings are trained once per seed (Table 5.10 CLIP_qv = Table 5.6 LSMSeg(w/ SAM-L))
    qv = pd.read_csv(folder / "table_5_10.runs.csv").query("row == 'CLIP_qv' and metric == 'A-847'")["value"].tolist()
    sam_l = (
        pd.read_csv(folder / "table_5_6.runs.csv")
        .query("row == 'LSMSeg(w/ SAM-L)' and metric == 'A-847'")["value"]
        .tolist()
    )
    assert qv == sam_l
    # MLflow: one child run per row x seed under the kedro run, the table's mean/std as metrics
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id], max_results=500)
    children = [r for r in runs if r.data.tags.get("ablation") == "lsmseg_ablations/table_5_7"]
    assert len(children) == 4 * 2 and {r.data.tags["seed"] for r in children} == {"0", "1"}
    assert all("mlflow.parentRunId" in r.data.tags and r.data.tags["method"] == "lsmseg" for r in children)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert "table_5_5/16/A-847_mean" in parent.data.metrics and "table_5_7/Weighted/avg._std" in parent.data.metrics

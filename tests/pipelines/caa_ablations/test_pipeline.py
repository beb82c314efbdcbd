"""``caa_ablations`` in smoke mode end to end through Kedro: the tables carry exactly the thesis's
rows and columns (Tables 3.2, 3.3, 3.4, 3.7), every variant x seed is an MLflow child run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from seg_pipelines.engine.ablations import AblationVariant
from seg_pipelines.experiments.caa_ablations import build_table
from seg_pipelines.experiments.closed_set_ablations import closed_set_variant_config

CELL = re.compile(r"^-?\d+\.\d{2}( \(\+|\(−| \(−)?")  # "12.34" (1 seed) or "12.34 (+1.00)"

EXPECTED = {
    "table_3_2": (
        ["Variant", "Baseline", "CC", "SA", "Backbone", "mIoU(%)", "Δ vs baseline", "verdict", "thesis mIoU(%)"],
        ["Baseline", "CC", "SA", "CC+SA"],
    ),
    "table_3_3": (
        [
            "Variant",
            "Baseline",
            "Intra-class",
            "Inter-class",
            "Backbone",
            "mIoU(%)",
            "Δ vs baseline",
            "verdict",
            "thesis mIoU(%)",
        ],
        ["Baseline", "Intra-class", "Inter-class", "Intra+Inter"],
    ),
    "table_3_4": (
        ["Variant", "CAA", "Aux", "Aff", "Backbone", "mIoU(%)", "Δ vs baseline", "verdict", "thesis mIoU(%)"],
        ["CAA", "CAA+Aux", "CAA+Aff", "CAA+Aux+Aff"],
    ),
    "table_3_7": (
        [
            "Method",
            "Backbone",
            "synthetic",
            "Δ vs baseline",
            "verdict",
            "thesis ADE20K",
            "thesis COCO-Stuff",
            "thesis Pascal-Context",
        ],
        [
            "FCN",
            "FCN+CAA",
            "CCNet",
            "CCNet+CAA",
            "UperNet",
            "UperNet+CAA",
            "PSPNet",
            "PSPNet+CAA",
            "Deeplabv3",
            "Deeplabv3+CAA",
            "ISNet",
            "ISNet+CAA",
        ],
    ),
}


def test_variant_switches_reach_the_caa_module():
    params = {"model": {"head": "fcn", "backbone": "resnet_tiny"}, "addon": {"name": "caa", "cfg": {"channels": 8}}}
    manifest = {"num_classes": 5, "ignore_index": 255, "family": "synthetic"}
    spec = build_table("3.2", params, manifest)
    configs = {
        v.row: closed_set_variant_config(params, v.overrides, manifest, pd.DataFrame())[0] for v in spec.variants
    }
    assert "addon" not in configs["Baseline"]
    assert configs["CC"]["addon_cfg"] == {"ignore_index": 255, "channels": 8, "use_semantic_affinity": False}
    assert configs["SA"]["addon_cfg"]["use_class_center"] is False
    assert configs["CC+SA"]["addon"] == "caa" and configs["CC+SA"]["addon_cfg"] == {"ignore_index": 255, "channels": 8}
    loss = build_table("3.4", params, manifest).variants[0].overrides["addon_cfg"]
    assert loss == {"affinity_loss_weight": 0.0, "aux_loss_weight": 0.0}
    heads = build_table("3.7", {**params, "table_3_7_heads": ["pspnet"]}, manifest)
    assert [v.row for v in heads.variants] == ["PSPNet", "PSPNet+CAA"] and heads.comparisons == [
        ("PSPNet+CAA", "PSPNet")
    ]
    with pytest.raises(KeyError, match="known heads"):
        build_table("3.7", {**params, "table_3_7_heads": ["segformer"]}, manifest)
    with pytest.raises(KeyError, match="unknown closed-set variant overrides"):
        closed_set_variant_config(params, AblationVariant("x", "y", {"lr": 1}).overrides, manifest, pd.DataFrame())


def test_caa_ablations_smoke_run_produces_the_thesis_tables(project_copy: Path):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["caa_ablations"])  # data_preparation runs as its upstream

    out = project_copy / "data/test/08_reporting/caa_ablations"
    for key, (columns, rows) in EXPECTED.items():
        table = pd.read_csv(out / f"{key}.csv", keep_default_na=False, dtype=str)
        assert list(table.columns) == columns, key
        assert table[columns[0]].tolist() == rows, key
        measured = table[columns[columns.index("Backbone") + 1]]
        assert all(CELL.match(str(cell)) for cell in measured), (key, measured.tolist())
        runs = pd.read_csv(out / f"{key}_runs.csv")
        assert set(runs["row"]) == set(rows) and (runs["status"] == "ok").all() and set(runs["seed"]) == {0}
        assert runs.loc[runs["metric"] == "mIoU", "value"].between(0, 100).all()
        text = (out / f"{key}.md").read_text(encoding="utf-8")
        assert text.startswith(f"## Table {key[6:].replace('_', '.')}:") and "| " + " | ".join(columns) + " |" in text
        metrics = json.loads((out / f"{key}_metrics.json").read_text())
        assert all(metrics[f"{key}/{r.replace('+', '_')}/failed_seeds"] == 0 for r in rows)
    table_3_2 = pd.read_csv(out / "table_3_2.csv", keep_default_na=False, dtype=str)
    assert table_3_2["CC"].tolist() == ["", "✓", "", "✓"] and table_3_2["thesis mIoU(%)"].tolist() == [
        "36.10",
        "40.39",
        "42.43",
        "43.12",
    ]
    # the same setting in several tables is one training + evaluation per seed: identical numbers
    runs = pd.concat(pd.read_csv(out / f"{key}_runs.csv", dtype={"table": str}) for key in EXPECTED).set_index(
        ["table", "row", "metric"]
    )["value"]
    same = [("3.2", "CC+SA"), ("3.3", "Intra+Inter"), ("3.4", "CAA+Aux+Aff"), ("3.7", "FCN+CAA")]
    assert len({runs[(t, r, "mIoU")].item() for t, r in same}) == 1
    assert (
        runs[("3.2", "Baseline", "mIoU")].item()
        == runs[("3.3", "Baseline", "mIoU")].item()
        == runs[("3.7", "FCN", "mIoU")].item()
    )
    # one smoke seed: every finding is there, none resolved (no interval from one seed)
    verdicts = pd.read_csv(out / "table_3_7.csv", dtype=str, keep_default_na=False)
    assert all((v == "unresolved") == (i % 2 == 1) for i, v in enumerate(verdicts["verdict"]))
    assert all(d.endswith("(n=1, no interval)") == (i % 2 == 1) for i, d in enumerate(verdicts["Δ vs baseline"]))
    report = (project_copy / "data/test/08_reporting/caa_ablations.md").read_text(encoding="utf-8")
    assert all(f"## Table 3.{n}:" in report for n in (2, 3, 4, 7)) and "smoke" in report
    assert "0 reproduced, 0 contradicted, 15 unresolved" in report  # 3 + 3 + 3 + 6 findings, chapter total

    client = MlflowClient()
    parent = client.search_runs(
        client.search_experiments()[0].experiment_id, "tags.`kedro.pipeline` = 'caa_ablations'"
    )[0]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=100
    )
    assert len(children) == sum(len(rows) for _, rows in EXPECTED.values())  # 1 seed
    assert {c.data.tags["table"] for c in children} == {"3.2", "3.3", "3.4", "3.7"}
    assert all(c.data.tags["method"] == "caa" and c.data.tags["budget"] == "smoke" for c in children)
    assert "table_3_2/CC_SA/mIoU_mean" in parent.data.metrics

"""``ecac_ablations`` in smoke mode end to end through Kedro: Tables 4.2-4.5, 4.7, 4.8 carry exactly
the thesis's rows and columns, Figure 4.7 is drawn, every variant x seed is an MLflow child run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from seg_pipelines.experiments.closed_set import build_segmentor
from seg_pipelines.experiments.closed_set_ablations import closed_set_variant_config
from seg_pipelines.experiments.ecac_ablations import build_table, per_class_variants

CELL = re.compile(r"^(-?\d+\.\d{2}|–)$")  # one seed: "12.34"
L43 = "L_{rceS} + L_{rceT} + L_M"
EXPECTED = {
    "table_4_2": (
        [
            "Variant",
            "Baseline",
            "ECAC",
            "L_{rce}",
            "L_{mem}",
            "L_{KL}",
            "L_{mse}",
            "mIoU(%)",
            "Δ vs baseline",
            "verdict",
            "thesis mIoU(%)",
        ],
        [
            "Baseline",
            "Baseline + L_{rce}",
            "ECAC + L_{rce}",
            "ECAC + L_{rce} + L_{mem}",
            "ECAC + L_{rce} + L_{mem} + L_{KL}",
            "ECAC + L_{rce} + L_{mem} + L_{KL} + L_{mse}",
        ],
    ),
    "table_4_3": (
        ["Loss", "mIoU(%)", "Δ vs baseline", "verdict", "thesis mIoU(%)"],
        [
            L43,
            f"{L43} + 0.1 · L_{{KL}}",
            f"{L43} + 1 · L_{{KL}}",
            f"{L43} + 10 · L_{{KL}}",
            f"{L43} + L_{{KL}}",
            f"{L43} + L_{{KL}} + 50 · L_{{iv}}",
            f"{L43} + L_{{KL}} + 100 · L_{{iv}}",
            f"{L43} + L_{{KL}} + 200 · L_{{iv}}",
        ],
    ),
    "table_4_4": (
        ["Method", "Backbone", "mIoU(%)", "Δ vs baseline", "verdict", "thesis mIoU(%)"],
        ["Baseline", "Baseline + ECAC(cosine)", "Baseline + ECAC(ours)"],
    ),
    "table_4_5": (
        ["Method", "Backbone", "mIoU(%)", "Δ vs baseline", "verdict", "thesis mIoU(%)"],
        ["DeeplabV3plus", "DeeplabV3plus + ECAC", "DeeplabV3plus + ECAC + Calibration"],
    ),
    "table_4_7": (
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
            "FCN + ECAC",
            "UperNet",
            "UperNet + ECAC",
            "PSPNet",
            "PSPNet + ECAC",
            "DeeplabV3plus",
            "DeeplabV3plus + ECAC",
        ],
    ),
}
PARAMS = {
    "model": {"head": "fcn", "backbone": "resnet_tiny", "channels": 8, "aux_channels": 8},
    "addon": {
        "name": "ecac",
        "class_weights_from_statistics": True,
        "cfg": {"kl_weight": 1, "intra_variance_weight": 50},
    },
}


def test_variant_switches_reach_the_ecac_module_and_equal_settings_share_a_config():
    manifest = {"num_classes": 4, "ignore_index": 255, "family": "synthetic"}
    statistics = pd.DataFrame({"class_id": range(4), "weight": [0.1, 0.2, 0.3, 0.4]})
    configs = {}
    for table in ("4.2", "4.3", "4.4", "4.5", "4.7"):
        for variant in build_table(table, PARAMS, manifest).variants:
            configs[(table, variant.row)] = closed_set_variant_config(PARAMS, variant.overrides, manifest, statistics)
    config, weights = configs[("4.2", "Baseline + L_{rce}")]
    assert "addon" not in config and weights == [0.1, 0.2, 0.3, 0.4]  # re-weighted main CE, no ECAC
    assert configs[("4.2", "Baseline")][1] is None
    only_rce = build_segmentor(configs[("4.2", "ECAC + L_{rce}")][0]).addon
    assert (only_rce.memory_loss_weight, only_rce.kl_weight, only_rce.intra_variance_weight) == (0.0, 0.0, 0.0)
    assert np.allclose(only_rce.class_weights.numpy(), [0.1, 0.2, 0.3, 0.4])  # L_rce inside ECAC (eq. 4.13)
    assert build_segmentor(configs[("4.4", "Baseline + ECAC(cosine)")][0]).addon.memory_update == "cosine"
    assert build_segmentor(configs[("4.5", "DeeplabV3plus + ECAC")][0]).addon.use_calibration is False
    assert build_segmentor(configs[("4.3", f"{L43} + 10 · L_{{KL}}")][0]).addon.kl_weight == 10.0
    full = configs[("4.2", "ECAC + L_{rce} + L_{mem} + L_{KL} + L_{mse}")]
    assert full == configs[("4.4", "Baseline + ECAC(ours)")] == configs[("4.7", "FCN + ECAC")]  # trained once
    assert full == configs[("4.3", f"{L43} + L_{{KL}} + 50 · L_{{iv}}")]
    assert configs[("4.3", f"{L43} + 1 · L_{{KL}}")] == configs[("4.3", f"{L43} + L_{{KL}}")]
    assert configs[("4.5", "DeeplabV3plus + ECAC + Calibration")] == configs[("4.7", "DeeplabV3plus + ECAC")]
    label, variants = per_class_variants(PARAMS)
    assert label == "DeeplabV3plus" and [v.row for v in variants] == ["DeeplabV3plus", "DeeplabV3plus + ECAC"]


def test_ecac_ablations_smoke_run_produces_the_thesis_tables(project_copy: Path):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["ecac_ablations"])  # data_preparation runs as its upstream

    out = project_copy / "data/test/08_reporting/ecac_ablations"
    for key, (columns, rows) in EXPECTED.items():
        table = pd.read_csv(out / f"{key}.csv", keep_default_na=False, dtype=str)
        assert list(table.columns) == columns, key
        assert table[columns[0]].tolist() == rows, key
        measured = table[columns[columns.index("Δ vs baseline") - 1]]
        assert all(CELL.match(cell) for cell in measured), (key, measured.tolist())
        runs = pd.read_csv(out / f"{key}_runs.csv")
        assert set(runs["row"]) == set(rows) and set(runs["seed"]) == {0}
        assert (runs["status"] == "ok").all(), runs.loc[runs["status"] != "ok", ["row", "error"]].to_string()
        assert (out / f"{key}.md").read_text(encoding="utf-8").startswith(f"## Table {key[6:].replace('_', '.')}:")
    assert pd.read_csv(out / "table_4_2.csv", keep_default_na=False, dtype=str)["L_{KL}"].tolist() == [
        "",
        "",
        "",
        "",
        "✓",
        "✓",
    ]
    verdicts = pd.read_csv(out / "table_4_7.csv", dtype=str, keep_default_na=False)["verdict"]
    assert all((v == "unresolved") == (i % 2 == 1) for i, v in enumerate(verdicts))  # one smoke seed

    # Table 4.8: one sub-table per representative group, the group's classes as columns
    statistics = pd.read_csv(project_copy / "data/test/04_feature/class_statistics.csv").sort_values("rank")
    text = (out / "table_4_8.md").read_text(encoding="utf-8")
    tidy = pd.read_csv(out / "table_4_8.csv", keep_default_na=False, dtype=str)
    for group, title in (("head", "Major"), ("mid", "Moderate"), ("tail", "Minor")):
        members = statistics[statistics["table_4_8_group"] == group]
        assert len(members) > 0
        header = [f"Method ({title} Class)"] + [
            f"{n}({100 * f:.2f}%)" for n, f in zip(members["name"], members["frequency"])
        ]
        assert "| " + " | ".join(header + ["mIoU(%)", "thesis mIoU(%)"]) + " |" in text
        part = tidy[tidy["Group"] == title]
        assert part["Method"].unique().tolist() == ["DeeplabV3plus", "DeeplabV3plus + ECAC"]
        assert part["Class"].tolist()[: len(header) + 1] == header[1:] + ["mIoU(%)", "thesis mIoU(%)"]
    runs = pd.read_csv(out / "table_4_8_runs.csv")
    assert {"head mIoU(%)", "mid mIoU(%)", "tail mIoU(%)", "mIoU"} <= set(runs["metric"])

    assert (out / "figure_4_7.png").stat().st_size > 10_000
    silhouettes = json.loads((out / "figure_4_7_metrics.json").read_text())
    assert set(silhouettes) == {"figure_4_7/baseline_silhouette", "figure_4_7/ecac_silhouette"}
    assert all(-1 <= v <= 1 for v in silhouettes.values())
    report = (project_copy / "data/test/08_reporting/ecac_ablations.md").read_text(encoding="utf-8")
    assert all(f"## Table 4.{n}:" in report for n in (2, 3, 4, 5, 7, 8)) and "figure_4_7.png" in report
    # 5 + 7 + 3 + 3 + 4 + 3 findings; one smoke seed resolves none (4.3's thesis column has all 8 rows)
    assert "chapter findings (t95 interval of the paired difference over seeds): 0 reproduced, 0 contradicted" in report

    client = MlflowClient()
    parent = client.search_runs(
        client.search_experiments()[0].experiment_id, "tags.`kedro.pipeline` = 'ecac_ablations'"
    )[0]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=200
    )
    assert len(children) == sum(len(rows) for _, rows in EXPECTED.values()) + 2  # + Table 4.8's two rows
    assert {c.data.tags["table"] for c in children} == {"4.2", "4.3", "4.4", "4.5", "4.7", "4.8"}
    assert "figure_4_7/ecac_silhouette" in parent.data.metrics

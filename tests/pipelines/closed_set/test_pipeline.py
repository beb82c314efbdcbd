"""The ``caa`` / ``ecac`` closed-set comparison pipelines end to end through Kedro (test env)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from seg_pipelines.experiments import closed_set


def test_caa_and_ecac_pipelines_run_end_to_end_and_are_tracked(project_copy: Path):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["data_preparation"])
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["caa", "ecac"])

    manifest = json.loads((project_copy / "data/test/01_raw/dataset_manifest.json").read_text())
    statistics = pd.read_csv(project_copy / "data/test/04_feature/class_statistics.csv")
    num_classes = manifest["num_classes"]
    reporting = project_copy / "data/test/08_reporting"
    for method, display in (("caa", "FCN+CAA"), ("ecac", "FCN+ECAC")):
        metrics = json.loads((reporting / f"{method}_closed_set_metrics.json").read_text())[method]
        assert set(metrics) == {"baseline", "method", "delta", "chance"}
        assert 0 < metrics["chance"]["mIoU"] < 100 / num_classes  # uniform random: about a class's pixel share
        for tag in ("baseline", "method"):
            assert {"mIoU", "mAcc", "aAcc"} <= set(metrics[tag]) and 0 <= metrics[tag]["aAcc"] <= 100
            assert set(metrics[tag]["table_4_8_group_mIoU"]) == {"head", "mid", "tail"}
        per_class = pd.read_parquet(reporting / f"{method}_per_class_iou.parquet")
        assert len(per_class) == num_classes
        assert 100 * np.nanmean(per_class["iou_method"]) == pytest.approx(metrics["method"]["mIoU"])
        table = (reporting / f"{method}_results_table.md").read_text().splitlines()
        assert table[2] == "| Method | Backbone | synthetic |"
        assert table[4].startswith("| FCN | resnet_tiny | ") and table[5].startswith(f"| {display} | resnet_tiny | ")
        assert f"{metrics['method']['mIoU']:.2f}" in table[5]
        assert table[6] == f"| chance (uniform random) | – | {metrics['chance']['mIoU']:.2f} |"
        for figure in ("training_curves", "qualitative"):
            assert (reporting / f"{method}_{figure}.png").stat().st_size > 10_000
        checkpoint = closed_set.load_segmentor(
            project_copy / f"data/test/06_models/{method}/method.pt", num_classes=num_classes
        )
        assert checkpoint.addon is not None and checkpoint.num_classes == num_classes
        curve = pd.read_parquet(project_copy / f"data/test/07_model_output/{method}/method_training_curve.parquet")
        assert list(curve["iteration"]) == [2, 4, 6]

    ecac_config = json.loads((project_copy / "data/test/06_models/ecac/method_model_config.json").read_text())
    np.testing.assert_allclose(ecac_config["addon_cfg"]["class_weights"], statistics.sort_values("class_id")["weight"])
    caa_curve = pd.read_parquet(project_copy / "data/test/07_model_output/caa/method_training_curve.parquet")
    assert {"loss_ce", "loss_aux", "loss_addon_aux", "loss_affinity"} <= set(caa_curve.columns)
    ecac_curve = pd.read_parquet(project_copy / "data/test/07_model_output/ecac/method_training_curve.parquet")
    assert {"loss_ce_main", "loss_kl", "loss_intra_variance", "loss_memory"} <= set(ecac_curve.columns)
    assert "loss_ce" not in ecac_curve.columns  # ECAC's re-weighted CE replaces the plain one
    assert (ecac_curve.loc[ecac_curve["iteration"] <= 2, "loss_memory"] == 0).all()  # delayed L_M
    assert (ecac_curve.loc[ecac_curve["iteration"] == 6, "loss_memory"] > 0).all()

    # a finished run is reused, not retrained: same settings → same run folder → same weights
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(project_copy / "conf"), base_env="base", default_run_env="test")
    settings = loader["parameters"]["caa"]  # interpolated from _closed_set (conf/test/parameters_closed_set.yml)
    assert (
        settings["training"]
        == loader["parameters"]["ecac"]["training"]
        == loader["parameters"]["_closed_set"]["training"]
    )
    config = json.loads((project_copy / "data/test/06_models/caa/method_model_config.json").read_text())
    index = pd.read_parquet(project_copy / "data/test/03_primary/prepared_index.parquet")
    again, curve = closed_set.train_segmentor(
        config,
        manifest,
        index,
        settings["training"],
        settings["augmentation"],
        settings["checkpoint_root"],
        show_progress=False,
    )
    saved = torch.load(project_copy / "data/test/06_models/caa/method.pt", weights_only=True)["model"]
    assert all(torch.equal(again["model"][k], saved[k]) for k in saved) and list(curve["iteration"]) == [2, 4, 6]

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    (run,) = [r for r in runs if r.data.tags.get("kedro.pipeline") == "caa+ecac"]
    assert run.info.run_name == "caa+ecac · fcn · synthetic · seed 0 · env test"
    assert run.info.status == "FINISHED"
    caa_metrics = json.loads((reporting / "caa_closed_set_metrics.json").read_text())["caa"]
    assert run.data.metrics["caa.method.mIoU"] == pytest.approx(caa_metrics["method"]["mIoU"])
    assert "ecac.baseline.table_4_8_group_mIoU.head" in run.data.metrics
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "reporting")}
    assert {
        "reporting/caa_results_table.md",
        "reporting/ecac_qualitative.png",
        "reporting/ecac_per_class_iou.parquet",
    } <= logged
    assert "models/caa/method.pt" in {a.path for a in client.list_artifacts(run.info.run_id, "models/caa")}

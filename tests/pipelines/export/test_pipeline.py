"""``kedro run --pipelines=export`` on ``--env test``: the ONNX file, the report, the MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from kedro.framework.cli.utils import _split_params
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.synthetic import ensure_synthetic_world
from seg_pipelines.experiments.closed_set import build_segmentor


def test_export_pipeline_writes_a_checked_onnx_file_and_logs_it(project_copy: Path):
    world = project_copy / "data/test/01_raw/synthetic_test"
    ensure_synthetic_world(world, seed=0, image_size=48, n_train=2, n_val=3)
    reader = create_reader("synthetic", world)
    config = {"name": "fcn", "num_classes": reader.num_classes, "backbone": "resnet_tiny", "channels": 16}
    torch.manual_seed(0)
    checkpoint = project_copy / "data/06_models/caa/method.pt"
    checkpoint.parent.mkdir(parents=True)
    model = build_segmentor(config)
    torch.save({"model": model.state_dict(), "model_config": config, "class_names": reader.class_names}, checkpoint)

    bootstrap_project(project_copy)
    params = _split_params(None, None, "export.checkpoint=data/06_models/caa/method.pt,export.compare_sizes=67x93")
    with KedroSession.create(project_path=project_copy, env="test", runtime_params=params) as session:
        session.run(pipeline_names=["export"])

    assert (project_copy / "data/06_models/caa/method.onnx").is_file()
    report = json.loads((project_copy / "data/test/08_reporting/onnx_export_report.json").read_text())
    assert report["passed"] and report["max_abs_difference"] <= 1e-4
    assert report["mIoU_onnx"] == report["mIoU_pytorch"] and report["images_evaluated"] == 3
    assert [(r["height"], r["width"]) for r in report["logit_comparison"]][-1] == (67, 93)
    assert "| class_names |" in (project_copy / "data/test/08_reporting/onnx_export_report.md").read_text()

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    (run,) = [r for r in runs if r.data.tags.get("kedro.pipeline") == "export"]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["export.max_abs_difference"] == pytest.approx(report["max_abs_difference"])
    assert run.data.metrics["export.mIoU_onnx"] == pytest.approx(report["mIoU_pytorch"])
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "reporting")}
    assert "reporting/onnx_export_report.json" in logged

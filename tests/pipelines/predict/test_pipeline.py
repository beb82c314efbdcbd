"""``predict`` and ``evaluate`` through Kedro, as the README runs them (``--params``), with MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.framework.cli.utils import _split_params
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient
from PIL import Image

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.synthetic import ensure_synthetic_world
from seg_pipelines.experiments.closed_set import build_segmentor


def _run(project: Path, pipeline: str, params: dict) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test", runtime_params=params) as session:
        session.run(pipeline_names=[pipeline])


def test_predict_and_evaluate_pipelines_on_the_embedded_world(project_copy: Path):
    world = project_copy / "data/test/01_raw/synthetic_test"
    ensure_synthetic_world(world, seed=0, image_size=48, n_train=2, n_val=3)
    reader = create_reader("synthetic", world)
    config = {"name": "fcn", "num_classes": reader.num_classes, "backbone": "resnet_tiny", "channels": 16}
    torch.manual_seed(0)
    model = build_segmentor(config)
    checkpoint = project_copy / "data/test/06_models/fcn.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "model_config": config, "class_names": reader.class_names}, checkpoint)
    images = project_copy / "photos"
    images.mkdir()
    for sample in reader.list_samples("val"):
        Image.open(sample.image_path).convert("RGB").save(images / f"{sample.sample_id}.png")

    _run(
        project_copy,
        "predict",
        {
            "predict": {
                "input": "photos",
                "checkpoint": "data/test/06_models/fcn.pt",
                "show_progress": False,
                "output_dir": "data/test/07_model_output/mine",
            }
        },
    )
    written = sorted(p.name for p in (project_copy / "data/test/07_model_output/mine").iterdir())
    assert written[-1] == "summary.json"  # the summary lies beside the images it describes
    written = written[:-1]
    assert len(written) == 2 * 3 and all(name.endswith(("_label.png", "_overlay.png")) for name in written)
    label = np.asarray(Image.open(project_copy / "data/test/07_model_output/mine" / written[0]))
    assert label.max() < reader.num_classes
    summary = json.loads((project_copy / "data/test/07_model_output/mine/summary.json").read_text())
    assert summary["images"] == 3 and summary["kind"] == "closed_set"
    stem = Path(written[0]).name.removesuffix("_label.png")
    shares = np.bincount(label.reshape(-1), minlength=reader.num_classes) / label.size
    top = summary["per_image"][stem]["top_classes"]  # this image's classes, largest pixel share first
    assert list(top) == [reader.class_names[c] for c in np.argsort(-shares, kind="stable")[: len(top)]]
    assert list(top.values()) == pytest.approx(sorted(shares[shares > 0], reverse=True)[: len(top)], abs=1e-4)

    # the README's command line: `kedro run --pipelines=evaluate --params="..."`, parsed as Kedro's CLI does
    command_line = (
        f"evaluate.checkpoint={checkpoint},evaluate.mode=slide,evaluate.crop_size=32,evaluate.stride=16,"
        f"evaluate.dataset.root={world},evaluate.show_progress=false"
    )
    _run(project_copy, "evaluate", _split_params(None, None, command_line))
    metrics = json.loads((project_copy / "data/test/08_reporting/evaluation_metrics.json").read_text())["evaluate"]
    per_class = pd.read_csv(project_copy / "data/test/08_reporting/evaluation_per_class_iou.csv")
    assert len(per_class) == reader.num_classes
    assert metrics["mIoU"] == pytest.approx(per_class["iou"].mean(skipna=True))
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    (run,) = [r for r in runs if r.data.tags.get("kedro.pipeline") == "evaluate"]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["evaluate.mIoU"] == pytest.approx(metrics["mIoU"])
    assert run.data.params["evaluate.mode"] == "slide"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "reporting")}
    assert "reporting/evaluation_per_class_iou.csv" in logged


def test_a_bad_mode_stops_the_run_before_any_node(project_copy: Path):
    from kedro.validation.exceptions import ParameterValidationError

    with pytest.raises(ParameterValidationError, match=r"(?s)'evaluate'.*mode.*'sliding'"):
        _run(project_copy, "evaluate", {"evaluate": {"checkpoint": "x.pt", "mode": "sliding"}})

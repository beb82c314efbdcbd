"""The ``lsmseg`` pipeline end to end through Kedro on the test env."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from seg_pipelines.engine.training import CheckpointError


def test_lsmseg_pipeline_runs_end_to_end(project_copy: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow.tracking import MlflowClient

    from seg_pipelines.experiments import lsmseg as nodes

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["data_preparation", "clip_pretraining", "sam_pretraining", "lsmseg"])
    reporting = project_copy / "data/test/08_reporting"
    table = pd.read_csv(reporting / "lsmseg_table_5_1.csv")
    assert list(table["Method"]) == ["CAT-Seg (baseline)", "LSMSeg"]
    assert [c.split(" ")[0] for c in table.columns[1:]] == ["A-847", "PC-459", "A-150", "PC-59", "VOC", "VOCb"]
    values = table.iloc[:, 1:].to_numpy(dtype=float)
    assert ((values >= 0) & (values <= 100)).all()
    seen_table = pd.read_csv(reporting / "lsmseg_table_5_2.csv")
    assert "seen mIoU" in seen_table.columns and "unseen: background" in seen_table.columns
    metrics = json.loads((reporting / "lsmseg_metrics.json").read_text())["ovss"]
    assert set(metrics) == {"baseline", "lsmseg", "chance"} and "syn847_unseen_mIoU" in metrics["lsmseg"]
    assert 0 < metrics["chance"]["syn847"]["mIoU"] < 1 / 20  # uniform random predictor: ~ pixel share per class
    assert metrics["chance"]["syn847_unseen_mIoU"] < metrics["chance"]["syn847_seen_mIoU"]
    curve = json.loads((reporting / "lsmseg_curve.json").read_text())
    assert len(curve) == 3 and all(row["loss"] > 0 for row in curve)
    for figure in ("lsmseg_cost_maps.png", "lsmseg_predictions.png"):
        assert (reporting / figure).stat().st_size > 5_000
    state = torch.load(project_copy / "data/test/06_models/lsmseg.pt", weights_only=True)
    assert any(key.startswith("fusion.") for key in state) and any(key.startswith("sam.") for key in state)
    tiny_sam = torch.load(project_copy / "data/test/06_models/tiny_sam.pt", weights_only=True)
    key = "blocks.1.attn.qkv.weight"  # the frozen SAM branch holds the sam_pretraining weights
    torch.testing.assert_close(state[f"sam.encoder.{key}"], tiny_sam[f"image_encoder.{key}"], atol=0, rtol=0)
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    assert any("ovss.lsmseg.synvoc21b.mIoU" in run.data.metrics for run in runs)

    # bad input fails in the first node, before any training
    manifest = json.loads((project_copy / "data/test/01_raw/dataset_manifest.json").read_text())
    clip_config = json.loads((project_copy / "data/test/06_models/tiny_clip_config.json").read_text())
    from kedro.config import OmegaConfigLoader

    params = OmegaConfigLoader(str(project_copy / "conf"), base_env="base", default_run_env="test")["parameters"][
        "lsmseg"
    ]
    params = json.loads(json.dumps(params))
    weights = str(project_copy / "data/test/06_models/tiny_clip.pt")
    with pytest.raises(ValueError, match="no prompt for classes"):
        nodes.validate_lsmseg_inputs(
            manifest, clip_config, weights, {"sky": "blue sky"}, {**params, "prompts": "prompt_set"}
        )
    with pytest.raises(FileNotFoundError, match="lsmseg_attribute_selection"):  # prompt set not written yet
        nodes.validate_lsmseg_inputs(manifest, clip_config, weights, None, {**params, "prompts": "prompt_set"})
    with pytest.raises(ValueError, match="prompts must be one of"):
        nodes.validate_lsmseg_inputs(manifest, clip_config, weights, None, {**params, "prompts": "synthetic-world"})
    from seg_pipelines.datasets.synthetic.concepts import CONCEPT_BY_NAME

    models = project_copy / "data/test/06_models"
    sams = nodes.tiny_sam_inputs(
        json.loads((models / "tiny_sam_config.json").read_text()),
        str(models / "tiny_sam.pt"),
        json.loads((models / "tiny_sam_l_config.json").read_text()),
        str(models / "tiny_sam_l.pt"),
    )
    world = {**params, "prompts": "world"}
    plan = nodes.validate_lsmseg_inputs(manifest, clip_config, weights, None, world, sams)
    assert plan["clip_pretrained"] == weights  # clip.pretrained null: the catalog's tiny CLIP
    # sam_variant tiny, no sam_checkpoint: the catalog's tiny SAM (tiny_l is not used here)
    assert plan["sam_pretrained"] == {"tiny": str(models / "tiny_sam.pt")}
    fine = plan["benchmarks"]["syn847"]
    assert fine["prompts"][fine["class_names"].index("lime")] == [CONCEPT_BY_NAME["lime"].describe() + "."]
    voc = plan["benchmarks"]["synvoc21b"]
    assert voc["prompts"][voc["class_names"].index("background")] == ["a photo of a background."]
    with pytest.raises(ValueError, match="larger than the training vocabulary"):
        nodes.validate_lsmseg_inputs(
            manifest,
            clip_config,
            weights,
            None,
            {**params, "models": {**params["models"], "lsmseg": {**params["models"]["lsmseg"], "top_k": 500}}},
        )
    with pytest.raises(CheckpointError, match="trained as"):
        nodes.validate_lsmseg_inputs(manifest, {**clip_config, "model_name": "ViT-B-16"}, weights, None, params)

    # a finished training state is reused only for the same inputs: other prompts train afresh
    index = pd.read_parquet(project_copy / "data/test/03_primary/prepared_index.parquet")
    saved = torch.load(project_copy / "data/test/06_models/lsmseg.pt", weights_only=True)
    same, _ = nodes.train_ovss(index, manifest, plan, params, "lsmseg")  # the run's own settings: resumed
    assert all(torch.equal(value, saved[key]) for key, value in same.state_dict().items())
    templates = {**params, "prompts": "templates"}
    other_plan = nodes.validate_lsmseg_inputs(manifest, clip_config, weights, None, templates, sams)
    retrained, curve = nodes.train_ovss(index, manifest, other_plan, templates, "lsmseg")
    assert len(curve) == len(json.loads((reporting / "lsmseg_curve.json").read_text()))
    assert not all(torch.equal(value, saved[key]) for key, value in retrained.state_dict().items())

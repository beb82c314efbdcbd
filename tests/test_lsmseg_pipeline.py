"""OVSS training pieces (loss, prompts, input checks) and the lsmseg pipeline end to end on the test env."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.engine.ovss_training import (
    OVSSTrainConfig,
    check_clip_checkpoint,
    check_top_k,
    class_prompts,
    load_prompt_set,
    masked_per_pixel_bce,
    train_ovss_model,
)
from seg_pipelines.engine.training import CheckpointError
from seg_pipelines.models.ovss.catseg import per_pixel_bce_loss
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, load_clip
from seg_pipelines.models.registry import create_model


def test_masked_bce_equals_catseg_loss_without_filtering_and_counts_only_kept_classes():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3))
    target[0, 0, 0] = 255
    torch.testing.assert_close(masked_per_pixel_bce(logits, target, None, 255), per_pixel_bce_loss(logits, target))
    kept = torch.tensor([[0, 2], [1, 3]])
    one_hot = F.one_hot(torch.where(target == 255, 0, target), 4).permute(0, 3, 1, 2).float() * (target != 255).unsqueeze(1)
    losses = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
    expected = torch.cat([losses[0, [0, 2]].flatten(), losses[1, [1, 3]].flatten()]).mean()
    torch.testing.assert_close(masked_per_pixel_bce(logits, target, kept, 255), expected)


def test_prompt_sets_and_input_checks(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps({"lime": "a lime is small, round, green and smooth", "sky": ["sky is blue", "blue sky"]}))
    prompts = load_prompt_set(path)
    assert prompts == {"lime": ["a lime is small, round, green and smooth"], "sky": ["sky is blue", "blue sky"]}
    assert class_prompts(["sky", "lime"], ["a photo of a {}."], prompts)[0] == ["sky is blue", "blue sky"]
    assert class_prompts(["sky"], ["a photo of a {}.", "a {}."]) == [["a photo of a sky.", "a sky."]]
    with pytest.raises(ValueError, match=r"no prompt for classes \['tire'\]"):
        class_prompts(["sky", "tire"], ["{}"], prompts)
    (tmp_path / "bad.json").write_text(json.dumps({"lime": ""}))
    with pytest.raises(ValueError, match="lime"):
        load_prompt_set(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="top_k=64 is larger"):
        check_top_k(64, 50, "lsmseg")
    check_top_k(32, 50, "lsmseg")
    reference = load_clip(TINY_CLIP_NAME)
    state = reference.state_dict()
    check_clip_checkpoint(state, reference, "tiny.pt")
    other = dict(state)
    other["visual.proj"] = torch.zeros(64, 96)
    with pytest.raises(CheckpointError, match="different architecture"):
        check_clip_checkpoint(other, reference, "other.pt")


def test_ovss_training_lowers_the_loss():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("lsmseg", image_size=32, use_sam=False, top_k=0, hidden_dim=8, appearance_guidance_dim=4,
                         text_guidance_dim=4, decoder_channels=(4, 4), decoder_guidance_dims=(2, 2), num_heads=1,
                         window_size=2, num_layers=1)
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    samples = []
    for index in range(4):
        label = torch.zeros(32, 32, dtype=torch.long)
        label[:, 16:] = 1 + index % 2
        image = colours[label].permute(2, 0, 1).contiguous()
        samples.append({"image": image, "label": label})
    tokens = model.clip.tokenize([["red"], ["blue"], ["green"]])
    config = OVSSTrainConfig(iterations=12, batch_size=2, lr=1e-3, log_interval=4)
    curve = train_ovss_model(model, samples, tokens, config, ignore_index=255, show_progress=False)
    assert len(curve) == 3 and curve[0]["loss"] > curve[1]["loss"] > curve[2]["loss"]


def test_lsmseg_pipeline_runs_end_to_end(project_copy: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow.tracking import MlflowClient

    from seg_pipelines.pipelines.lsmseg import nodes

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["data_preparation", "clip_pretraining", "lsmseg"])
    reporting = project_copy / "data/08_reporting"
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
    state = torch.load(project_copy / "data/06_models/lsmseg.pt", weights_only=True)
    assert any(key.startswith("fusion.") for key in state) and any(key.startswith("sam.") for key in state)
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    assert any("ovss.lsmseg.synvoc21b.mIoU" in run.data.metrics for run in runs)

    # bad input fails in the first node, before any training
    manifest = json.loads((project_copy / "data/01_raw/dataset_manifest.json").read_text())
    clip_config = json.loads((project_copy / "data/06_models/tiny_clip_config.json").read_text())
    from kedro.config import OmegaConfigLoader

    params = OmegaConfigLoader(str(project_copy / "conf"), base_env="base", default_run_env="test")["parameters"]["lsmseg"]
    params = json.loads(json.dumps(params))
    bad_prompts = project_copy / "prompts.json"
    bad_prompts.write_text(json.dumps({"sky": "blue sky"}))
    with pytest.raises(ValueError, match="no prompt for classes"):
        nodes.validate_lsmseg_inputs(manifest, clip_config, {**params, "prompt_set_path": str(bad_prompts)})
    from seg_pipelines.datasets.synthetic.concepts import CONCEPT_BY_NAME

    plan = nodes.validate_lsmseg_inputs(manifest, clip_config, {**params, "prompt_set_path": "synthetic-world"})
    fine = plan["benchmarks"]["syn847"]
    assert fine["prompts"][fine["class_names"].index("lime")] == [CONCEPT_BY_NAME["lime"].describe() + "."]
    voc = plan["benchmarks"]["synvoc21b"]
    assert voc["prompts"][voc["class_names"].index("background")] == ["a photo of a background."]
    with pytest.raises(ValueError, match="larger than the training vocabulary"):
        nodes.validate_lsmseg_inputs(manifest, clip_config, {**params, "models": {**params["models"], "lsmseg": {**params["models"]["lsmseg"], "top_k": 500}}})
    with pytest.raises(CheckpointError, match="trained as"):
        nodes.validate_lsmseg_inputs(manifest, {**clip_config, "model_name": "ViT-B-16"}, params)

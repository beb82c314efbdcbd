"""``clip_pretraining`` end to end through Kedro on the test env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seg_pipelines.datasets.synthetic.concepts import CONCEPTS


def test_clip_pretraining_pipeline_runs_end_to_end(project_copy: Path, monkeypatch):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow.tracking import MlflowClient

    from seg_pipelines.models.ovss.clip import load_clip
    from seg_pipelines.parameters import plain_data

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["data_preparation", "clip_pretraining"])
        params = plain_data(session.load_context().params["clip_pretraining"])
    checkpoint = project_copy / "data/test/06_models/tiny_clip.pt"
    state = torch.load(checkpoint, weights_only=True)
    config = json.loads((project_copy / "data/test/06_models/tiny_clip_config.json").read_text())
    assert config["model_name"] == "TinyCLIP-ViT-8-96" and config["image_size"] == 64
    clip = load_clip(config["model_name"], checkpoint, image_size=config["image_size"])
    torch.testing.assert_close(clip.visual.proj, state["visual.proj"])
    clip_default_size = load_clip(config["model_name"], checkpoint)  # position embedding resized on load
    assert clip_default_size.visual.positional_embedding.shape[0] == 1 + 12 * 12
    probe = json.loads((project_copy / "data/test/08_reporting/clip_zero_shot_probe.json").read_text())[
        "clip_zero_shot"
    ]
    for prompts in ("name_prompts", "attribute_prompts"):
        assert 0.0 <= probe[prompts]["pixel_accuracy"] <= 1.0
        assert {"pixel_accuracy_head", "pixel_accuracy_tail", "pixel_accuracy_unseen"} <= set(probe[prompts])
    assert probe["chance_pixel_accuracy"] == pytest.approx(1 / len(CONCEPTS))
    assert (project_copy / "data/test/08_reporting/clip_training_curve.png").stat().st_size > 5_000
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    metrics = {key for run in runs for key in run.data.metrics}
    assert "clip_retrieval.image_to_text_recall_at_1" in metrics
    assert "clip_zero_shot.attribute_prompts.pixel_accuracy_tail" in metrics

    # issue 30, item 12: a rerun reuses the held-out probes (about a minute) of the same weights,
    # settings and data; other weights are evaluated afresh
    from seg_pipelines.experiments import clip_pretraining, tiny_clip

    manifest = json.loads((project_copy / "data/test/01_raw/dataset_manifest.json").read_text())
    computed = []
    real_probes = clip_pretraining.held_out_probes
    monkeypatch.setattr(clip_pretraining, "held_out_probes", lambda *args: computed.append(1) or real_probes(*args))
    _, reused = tiny_clip.evaluate_tiny_clip(str(checkpoint), manifest, params)
    assert computed == [] and reused["clip_zero_shot"] == probe
    state["visual.proj"] = state["visual.proj"] + 0.01  # other weights: recomputed (the numbers may coincide)
    tiny_clip.evaluate_tiny_clip(state, manifest, params)
    assert computed == [1]

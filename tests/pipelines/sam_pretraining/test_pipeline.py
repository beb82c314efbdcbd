"""``sam_pretraining`` end to end through Kedro on the test env."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seg_pipelines.models.ovss.sam import SAMImageEncoder


def test_sam_pretraining_pipeline_runs_end_to_end(project_copy: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["sam_pretraining"])  # data_preparation comes with it
    models, reporting = project_copy / "data/06_models", project_copy / "data/08_reporting"
    state = torch.load(models / "tiny_sam.pt", weights_only=True)
    assert {key.split(".")[0] for key in state} == {"image_encoder", "prompt_encoder", "mask_decoder"}
    config = json.loads((models / "tiny_sam_config.json").read_text())
    assert config["variant"] == "tiny" and config["image_size"] == 96 and config["training"]["steps"] == 4
    assert config["training"]["focal_weight"] == 1.0  # conf/test
    curve = json.loads((reporting / "sam_pretraining_curve.json").read_text())
    assert [row["step"] for row in curve] == [2, 4] and all(row["loss"] > 0 for row in curve)
    check = json.loads((reporting / "sam_point_prompt_check.json").read_text())
    assert check["split"] == "val" and check["images"] == 16 and check["regions"] > check["images"]
    for model in ("pretrained", "random_init"):
        assert 0 <= check[model]["miou"] <= check[model]["oracle_miou"] <= 1
    low, high = check["difference"]["ci95"]
    assert low <= check["difference"]["miou"] <= high
    # LSMSeg's SAM branch loads it like a real SAM checkpoint, at its own input size
    encoder = SAMImageEncoder("tiny", image_size=32, checkpoint=models / "tiny_sam.pt")
    torch.testing.assert_close(
        encoder.encoder.blocks[0].mlp.lin1.weight, state["image_encoder.blocks.0.mlp.lin1.weight"]
    )

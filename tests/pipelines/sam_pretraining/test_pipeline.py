"""``sam_pretraining`` end to end through Kedro on the test env: both sizes, their check and records."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seg_pipelines.models.ovss.sam import SAMImageEncoder


def test_sam_pretraining_pipeline_runs_end_to_end(project_copy: Path, monkeypatch):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from seg_pipelines.experiments import sam_pretraining
    from seg_pipelines.parameters import plain_data

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["sam_pretraining"])  # data_preparation comes with it
        params = plain_data(session.load_context().params["sam_pretraining"])
    models, reporting = project_copy / "data/test/06_models", project_copy / "data/test/08_reporting"
    check = json.loads((reporting / "sam_point_prompt_check.json").read_text())
    assert check["split"] == "val"
    states = {}
    for variant, stem, curve_name in (("tiny", "tiny_sam", "sam"), ("tiny_l", "tiny_sam_l", "sam_l")):
        state = states[variant] = torch.load(models / f"{stem}.pt", weights_only=True)
        assert {key.split(".")[0] for key in state} == {"image_encoder", "prompt_encoder", "mask_decoder"}
        config = json.loads((models / f"{stem}_config.json").read_text())
        assert config["variant"] == variant and config["image_size"] == 96 and config["training"]["steps"] == 4
        assert config["training"]["focal_weight"] == 1.0  # conf/test
        curve = json.loads((reporting / f"{curve_name}_pretraining_curve.json").read_text())
        assert [row["step"] for row in curve] == [2, 4] and all(row["loss"] > 0 for row in curve)
        assert curve[-1]["seconds"] > 0  # the wall time of the size's training
        assert (project_copy / "data/test/06_models/sam_pretraining" / variant / "last.pt").is_file()  # its own resume
        assert check[variant]["images"] == 16 and check[variant]["regions"] > check[variant]["images"]
        for model in ("pretrained", "random_init"):
            assert 0 <= check[variant][model]["miou"] <= check[variant][model]["oracle_miou"] <= 1
        low, high = check[variant]["difference"]["ci95"]
        assert low <= check[variant]["difference"]["miou"] <= high
    # the sizes on the same regions: the paired difference of the pretrained models' one-point IoUs
    assert check["tiny_l"]["regions"] == check["tiny"]["regions"]
    low, high = check["tiny_l_minus_tiny"]["ci95"]
    assert low <= check["tiny_l_minus_tiny"]["miou"] <= high
    difference = check["tiny_l"]["pretrained"]["miou"] - check["tiny"]["pretrained"]["miou"]
    assert abs(check["tiny_l_minus_tiny"]["miou"] - difference) < 1e-6
    # LSMSeg's SAM branch loads each like a real SAM checkpoint, at its own input size
    for variant, stem in (("tiny", "tiny_sam"), ("tiny_l", "tiny_sam_l")):
        encoder = SAMImageEncoder(variant, image_size=32, checkpoint=models / f"{stem}.pt")
        torch.testing.assert_close(
            encoder.encoder.blocks[0].mlp.lin1.weight, states[variant]["image_encoder.blocks.0.mlp.lin1.weight"]
        )
    assert states["tiny_l"]["image_encoder.blocks.0.mlp.lin1.weight"].shape == (384, 96)  # 4 x 96 wide
    assert states["tiny"]["image_encoder.blocks.0.mlp.lin1.weight"].shape == (256, 64)
    # issue 30, item 12: a rerun with the same weights, settings and data reuses the check
    manifest = json.loads((project_copy / "data/test/01_raw/dataset_manifest.json").read_text())
    checked = []
    real_check = sam_pretraining._point_prompt_check
    monkeypatch.setattr(sam_pretraining, "_point_prompt_check", lambda *a: checked.append(1) or real_check(*a))
    paths = {"tiny": str(models / "tiny_sam.pt"), "tiny_l": str(models / "tiny_sam_l.pt")}
    assert sam_pretraining.evaluate_tiny_sams(paths, manifest, params) == check and checked == []
    changed = {**paths, "tiny": {k: v * 1.01 if v.is_floating_point() else v for k, v in states["tiny"].items()}}
    assert sam_pretraining.evaluate_tiny_sams(changed, manifest, params) != check and checked == [1, 1]


def test_both_sizes_are_catalog_datasets_that_lsmseg_and_its_ablations_read():
    import yaml

    from seg_pipelines.pipeline_registry import compose
    from seg_pipelines.pipelines import lsmseg, lsmseg_ablations, sam_pretraining
    from tests.fixtures import PROJECT_ROOT

    handed_over = {"tiny_sam_checkpoint", "tiny_sam_config", "tiny_sam_l_checkpoint", "tiny_sam_l_config"}
    assert handed_over <= sam_pretraining.create_pipeline().all_outputs()
    for pipeline in (lsmseg.create_pipeline(), lsmseg_ablations.create_pipeline(seed_slots=1)):
        assert handed_over <= pipeline.inputs()  # free inputs of the pipeline alone: the catalog's datasets
    found = {"sam_pretraining": sam_pretraining.create_pipeline()}
    for name in ("lsmseg", "lsmseg_ablations"):  # registered with sam_pretraining upstream: an edge in Kedro-Viz
        composed = compose(dict(found), name)
        assert not handed_over & composed.inputs() and handed_over <= composed.all_outputs(), name
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_sam_pretraining.yml").read_text())
    checkpoints = [catalog["tiny_sam_checkpoint"], catalog["tiny_sam_l_checkpoint"]]
    assert all(entry["type"].endswith("ModelFileDataset") for entry in checkpoints)  # saved, loaded as a path
    paths = [entry["filepath"] for entry in checkpoints]
    assert paths == ["${globals:data_root}/06_models/tiny_sam.pt", "${globals:data_root}/06_models/tiny_sam_l.pt"]

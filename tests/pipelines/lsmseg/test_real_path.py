"""The ``lsmseg`` pipeline on real dataset layouts: trained on COCO-Stuff-164k's 171 classes, evaluated on
A-847 and VOC-20 benchmark datasets of their own, with a CLIP checkpoint file (the real path's wiring at
test size; ``benchmarks/thesis_smoke.py`` runs it at thesis size)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.fixtures.layouts import write_ade20k_847, write_coco_stuff_164k, write_voc2012


@pytest.fixture
def real_layouts(tmp_path: Path) -> dict[str, Path]:
    roots = {"coco": tmp_path / "coco", "ade847": tmp_path / "ade847", "voc": tmp_path / "voc"}
    write_coco_stuff_164k(roots["coco"], n_train=3, n_val=1, size=(48, 64))
    write_ade20k_847(roots["ade847"], n_train=1, n_val=2, size=(48, 64))
    write_voc2012(roots["voc"], n_train=1, n_val=2, size=(48, 64))
    return roots


def _runtime_params(roots: dict[str, Path], clip_path: Path) -> dict:
    return {
        "dataset": {"family": "coco_stuff_164k", "root": str(roots["coco"]), "splits": ["train", "val"]},
        "lsmseg": {
            "train_vocabulary": "dataset",
            "benchmarks": [
                {"name": "A-847", "family": "ade20k_847", "root": str(roots["ade847"]), "split": "val"},
                {"name": "VOC", "family": "voc_20", "root": str(roots["voc"])},
            ],
            "prompts": "templates",
            "clip": {"pretrained": str(clip_path)},
            "evaluation": {"mode": "slide", "batch_size": 1, "limit": 2},  # windows default to the CLIP size
            "seen_unseen_benchmark": "A-847",
            "seen_unseen_table_benchmark": "VOC",
            "figures": {
                "cost_map_benchmark": "A-847",
                "cost_map_classes": ["wall", "building"],
                "qualitative_benchmark": "VOC",
                "qualitative_images": 1,
            },
        },
    }


def test_lsmseg_trains_on_coco_stuff_and_evaluates_on_benchmark_datasets(project_copy: Path, real_layouts):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, load_clip

    clip_path = project_copy / "clip.pt"
    torch.manual_seed(0)
    torch.save(load_clip(TINY_CLIP_NAME).state_dict(), clip_path)  # a CLIP checkpoint file of "your own"
    bootstrap_project(project_copy)
    params = _runtime_params(real_layouts, clip_path)
    # the tiny SAM is pretrained on the synthetic world only: on a real dataset LSMSeg runs without SAM here
    # (a real vit_b / vit_l checkpoint's path: tests/models/test_ovss_models.py)
    params["lsmseg"]["models"] = {"lsmseg": {"use_sam": False}}  # merged into conf/test's models
    with KedroSession.create(project_path=project_copy, env="test", runtime_params=params) as session:
        session.run(pipeline_names=["lsmseg"])  # data_preparation and clip_pretraining come with it

    clip_config = json.loads((project_copy / "data/test/06_models/tiny_clip_config.json").read_text())
    assert "coco_stuff_164k" in clip_config["not_trained"]  # skipped on a real dataset, saying why
    described = json.loads((project_copy / "data/test/06_models/lsmseg_model_config.json").read_text())
    assert described["train_vocabulary"] == "dataset"
    reporting = project_copy / "data/test/08_reporting"
    table = pd.read_csv(reporting / "lsmseg_table_5_1.csv")
    assert list(table.columns) == ["Method", "A-847", "VOC"]  # the six-column layout, real names, evaluated only
    values = table.iloc[:, 1:].to_numpy(dtype=float)
    assert ((values >= 0) & (values <= 100)).all()
    metrics = json.loads((reporting / "lsmseg_metrics.json").read_text())["ovss"]
    assert {"A-847", "VOC"} <= set(metrics["lsmseg"])
    # unseen = benchmark classes COCO-Stuff's 171 do not name: A-847's "thing<i>", VOC's "aeroplane" ...
    assert "A-847_unseen_mIoU" in metrics["lsmseg"] and "A-847_seen_mIoU" in metrics["lsmseg"]
    seen_table = pd.read_csv(reporting / "lsmseg_table_5_2.csv")
    assert "aeroplane" in " ".join(c for c in seen_table.columns if c.startswith("unseen"))
    assert "bicycle" in " ".join(c for c in seen_table.columns if not c.startswith("unseen"))
    for figure in ("lsmseg_cost_maps.png", "lsmseg_predictions.png"):
        assert (reporting / figure).stat().st_size > 5_000


def test_real_path_input_errors_name_the_key(real_layouts, tmp_path):
    from kedro.config import OmegaConfigLoader

    from seg_pipelines.datasets.base import DatasetError
    from seg_pipelines.experiments.data_preparation import prepare_raw_dataset
    from seg_pipelines.experiments.lsmseg import validate_lsmseg_inputs
    from tests.fixtures import PROJECT_ROOT

    manifest = prepare_raw_dataset(
        {"family": "coco_stuff_164k", "root": str(real_layouts["coco"]), "splits": ["train", "val"]}, {}
    )
    loaded = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="test")["parameters"]
    test_env = json.loads(json.dumps(loaded["lsmseg"]))
    override = _runtime_params(real_layouts, Path("clip.pt"))["lsmseg"]
    base = {**test_env, **override, "clip": {**test_env["clip"], **override["clip"]}}

    def validate(clip_config=None, **changes):
        return validate_lsmseg_inputs(manifest, clip_config or {}, "tiny_clip.pt", None, {**base, **changes})

    a847 = base["benchmarks"][0]
    with pytest.raises(ValueError, match=r"lsmseg.benchmarks\[1\]: a benchmark dataset needs \['root'\]"):
        validate(benchmarks=[a847, {"name": "VOC", "family": "voc_20"}])
    with pytest.raises(ValueError, match="appear more than once"):
        validate(benchmarks=[a847, a847])
    with pytest.raises(DatasetError, match="lsmseg.benchmarks .ade20k_847 at /nowhere.: .* not found"):
        validate(benchmarks=[{**a847, "root": "/nowhere"}])
    with pytest.raises(ValueError, match="unknown benchmark vocabulary 'seen' of the coco_stuff_164k dataset"):
        validate(train_vocabulary="seen")
    with pytest.raises(ValueError, match=r"cost_map_classes \['lime'\] are not classes of 'A-847'"):
        validate(figures={**base["figures"], "cost_map_classes": ["wall", "lime"]})
    with pytest.raises(ValueError, match="seen_unseen_table_benchmark is 'VOCb'"):
        validate(seen_unseen_table_benchmark="VOCb")
    with pytest.raises(ValueError, match="lsmseg.clip.pretrained is not set and no tiny CLIP exists"):
        validate({"not_trained": "a real dataset"}, clip={**base["clip"], "pretrained": None})

    # CAT-Seg's top_k is its inference pad_len (256 on A-847): larger than the 171 training classes is fine,
    # LSMSeg's k filters the training vocabulary and may not exceed it
    from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, load_clip

    clip_path = tmp_path / "clip.pt"
    torch.save(load_clip(TINY_CLIP_NAME).state_dict(), clip_path)
    clip = {**base["clip"], "pretrained": str(clip_path)}
    models = {**base["models"], "baseline": {"architecture": "catseg", "top_k": 256}}
    plan = validate(clip=clip, models=models)
    assert len(plan["benchmarks"]["dataset"]["class_names"]) == 171 and plan["clip_pretrained"] == str(clip_path)
    assert "aeroplane" in plan["unseen"] and "bicycle" not in plan["unseen"]  # VOC names COCO-Stuff lacks
    with pytest.raises(ValueError, match="top_k=256 is larger than the training vocabulary"):
        validate(clip=clip, models={**models, "lsmseg": {**base["models"]["lsmseg"], "top_k": 256}})

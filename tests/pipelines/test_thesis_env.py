"""`--env thesis` loads for every pipeline and builds every model at thesis size (on the meta device:
no weights read, no memory used, nothing downloaded)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.pipelines.test_parameters import _params, validate_for


@pytest.fixture(scope="module")
def thesis() -> dict:
    return _params("thesis")


def test_every_pipeline_validates_under_the_thesis_env(thesis):
    from kedro.framework.project import configure_project

    from seg_pipelines.pipeline_registry import register_pipelines

    configure_project("seg_pipelines")
    pipelines = register_pipelines()
    assert pipelines
    for name in pipelines:
        validate_for(name, thesis)


def _closed_set_models(thesis):
    """(label, model block, addon name, addon cfg) of every closed-set model the thesis env trains."""
    for block in ("caa", "ecac"):
        yield block, thesis[block]["model"], thesis[block]["addon"]["name"], thesis[block]["addon"]["cfg"]
    caa, ecac = thesis["caa_ablations"], thesis["ecac_ablations"]
    for head in caa["table_3_7_heads"]:
        yield f"caa_ablations/{head}", {**caa["model"], "head": head}, "caa", caa["addon"]["cfg"]
    heads = {*ecac["table_4_7_heads"], ecac["table_4_5_head"], ecac["table_4_8_head"], ecac["model"]["head"]}
    for head in sorted(heads):
        yield f"ecac_ablations/{head}", {**ecac["model"], "head": head}, "ecac", ecac["addon"]["cfg"]
        yield f"ecac_ablations/{head} (plain)", {**ecac["model"], "head": head}, None, None


def test_every_closed_set_model_builds_at_thesis_size(thesis):
    from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config

    for label, model, addon, cfg in _closed_set_models(thesis):
        model = {**copy.deepcopy(model), "pretrained_path": None}  # the weights are not read here
        config = closed_set_model_config(model, num_classes=59, ignore_index=255, addon=addon, addon_cfg=cfg)
        with torch.device("meta"):
            segmentor = build_segmentor(config)
        assert segmentor.auxiliary_head is None, label  # eq. 3.12 / 4.21: no MMSeg auxiliary head
        assert segmentor.decode_head.channels == 512, label
        if addon == "ecac":
            assert isinstance(segmentor.addon.memory_bank, torch.nn.Parameter)  # eq. 4.20 trains the bank
            assert segmentor.addon.coarse_loss_weight == 0.0 and segmentor.addon.intra_variance_on == "logits"


def test_chapter_5_models_build_at_thesis_size(thesis, monkeypatch):
    import open_clip.factory

    from seg_pipelines.experiments.lsmseg import _model_kwargs
    from seg_pipelines.models.factory import create_model

    # open_clip moves the new model to a device (``.to``), which a meta tensor cannot do
    monkeypatch.setattr(open_clip.factory, "_set_model_device_and_precision", lambda *args, **kwargs: None)
    params = thesis["lsmseg"]
    for key in ("baseline", "lsmseg"):
        name, kwargs = _model_kwargs(params, key, None)
        kwargs.pop("sam_checkpoint", None)
        with torch.device("meta"):
            model = create_model(name, **kwargs)
        assert model.clip.image_size == 384, key
        assert sum(p.numel() for p in model.clip.parameters()) > 100e6, key  # ViT-B/16 image + text towers
        if key == "lsmseg":
            assert model.sam is not None and sum(p.numel() for p in model.sam.parameters()) > 80e6  # SAM-B
            assert model.category_filter.top_k == 32  # Table 5.5

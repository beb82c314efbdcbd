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
            # SAM-L's image encoder without its neck (Table 5.1's headline = Table 5.6's "w/ SAM-L")
            assert model.sam is not None and model.sam.variant == "vit_l" and model.sam.embed_dim == 1024
            assert sum(p.numel() for p in model.sam.parameters()) > 300e6
            assert model.category_filter.top_k == 32  # Table 5.5


def test_thesis_env_has_issue_28_values(thesis, monkeypatch):
    """Issue 28: `--env thesis` follows the text where it speaks (line numbers of the thesis text)."""
    lsmseg = thesis["lsmseg"]
    # (1) Table 5.1's "LSMSeg (ours)" is Table 5.6's "LSMSeg (w/ SAM-L)"
    assert lsmseg["models"]["lsmseg"]["sam_variant"] == "vit_l"
    assert lsmseg["models"]["lsmseg"]["sam_checkpoint"].endswith("sam_vit_l_0b3195.pth")
    # (2) §3.3.2, L641: CAA on ADE20K at lr 0.02, 160k iterations at batch 16
    caa = thesis["caa"]["training"]
    assert (caa["lr"], caa["iterations"], caa["batch_size"], caa["min_lr"]) == (0.02, 160000, 16, 0.0)
    # (3) §4.3.2, L1092: ECAC on ADE20K at lr 0.01 for 130 epochs of 20,210 images at batch 16
    ecac = thesis["ecac"]["training"]
    assert ecac["iterations"] == 164206 == int(130 * 20210 / 16)
    assert (ecac["lr"], ecac["batch_size"], ecac["weight_decay"], ecac["min_lr"]) == (0.01, 16, 5.0e-4, 0.0)
    for block in ("ecac", "ecac_ablations"):
        cfg = thesis[block]["addon"]["cfg"]
        # (5) L1061: the 1,000-iteration delay is L_M's only; (4) L1008: eq. 4.12's 1/C
        assert (cfg["memory_loss_start_iter"], cfg["intra_variance_start_iter"]) == (1000, 0), block
        assert cfg["kl_average"] == "all_classes", block
    # (7) not in the thesis: CAT-Seg's released schedule and CLIP multiplier (configs/vitb_384.yaml)
    training = lsmseg["training"]
    assert (training["lr_schedule"], training["min_lr_ratio"], training["clip_lr_multiplier"]) == ("cosine", 0.0, 0.01)
    # (8) L1366-1370: GPT-4 through the openai backend; L1381 / L1589: the scorer trains (finetune)
    selection = thesis["lsmseg_attribute_selection"]
    assert {k: selection["llm"][k] for k in ("backend", "model", "base_url")} == {
        "backend": "openai",
        "model": "gpt-4",
        "base_url": None,
    }
    assert selection["scoring"]["mode"] == "finetune" and selection["description_examples"] == "none"


def test_thesis_llm_without_a_key_says_how_to_set_one(thesis, monkeypatch):
    from seg_pipelines.prompts.errors import LLMError
    from seg_pipelines.prompts.llm import create_llm

    config = {k: v for k, v in thesis["lsmseg_attribute_selection"]["llm"].items() if k != "label"}
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError) as error:
        create_llm(config, credentials={})
    message = str(error.value)
    for hint in ("'gpt-4'", "conf/local/credentials.yml", "`llm: {api_key:", "OPENAI_API_KEY", "llama_cpp", "base_url"):
        assert hint in message, hint
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    assert create_llm(config, credentials={}).model == "gpt-4"  # with a key it builds (no request is sent)
    assert create_llm(config, credentials={"llm": {"api_key": "sk-from-file"}}).model == "gpt-4"

"""LSMSeg ablations (experiments.lsmseg_ablations): variant overrides build the intended models;
enriched prompt sources."""

from __future__ import annotations

import json

import pytest
import torch

from seg_pipelines.experiments import lsmseg as lsmseg_experiment
from seg_pipelines.experiments import lsmseg_ablations as ablations
from seg_pipelines.models.factory import create_model
from tests.fixtures import PROJECT_ROOT


def _params(env: str = "test") -> dict:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env=env,
        config_patterns={"parameters": ["parameters*"]},
    )
    return json.loads(json.dumps(loader["parameters"]["lsmseg_ablations"]))


def _variant(params: dict, table: str, row: str):
    return next(v for v in ablations.table_variants(params, table) if v.row == row)


def test_variant_overrides_build_the_intended_models(tmp_path):
    torch.set_num_threads(1)
    params = _params("base")
    setup = {**params["setup"], "clip": {**params["setup"]["clip"], "pretrained": None}}  # no checkpoint needed here
    # Table 5.5: k scaled to the 50 seen classes; the k=16 row builds a filter keeping 5 classes, without SAM
    model = ablations.build_variant_model(setup, _variant(params, "5.5", "16"), seed=0)
    assert model.category_filter.top_k == 5 and model.sam is None
    assert [
        ablations.resolve_variant(setup, v, 0)[1]["models"]["lsmseg"]["top_k"]
        for v in ablations.table_variants(params, "5.5")
    ] == [5, 9, 14, 19, 28]
    # Table 5.10: CLIP_qk trains exactly the query and key projections of CLIP (split q/k/v, thesis Table 5.10)
    model = ablations.build_variant_model(setup, _variant(params, "5.10", "CLIP_qk"), seed=0)
    trainable = [name for name, p in model.clip.named_parameters() if p.requires_grad]
    assert trainable and all(name.endswith(("original0", "original1")) for name in trainable)
    assert any(name.endswith("original2") for name, p in model.clip.named_parameters() if not p.requires_grad)
    frozen = ablations.build_variant_model(setup, _variant(params, "5.10", "Freeze"), seed=0)
    assert not any(p.requires_grad for p in frozen.clip.parameters())
    # Table 5.7: fusion modes; Table 5.6: SAM-B / SAM-L = the tiny / larger tiny_l SAM at the same input size,
    # each with its own pretrained weights; CAT-Seg baseline for CATSeg [†]
    fusion = ablations.build_variant_model(setup, _variant(params, "5.7", "Concat"), seed=0)
    assert fusion.fusion.mode == "concat"
    weights = {}
    for variant, stem in (("tiny", "tiny_sam"), ("tiny_l", "tiny_sam_l")):
        torch.manual_seed(1)
        weights[variant] = str(tmp_path / f"{stem}.pt")
        torch.save(create_model("sam", variant=variant).state_dict(), weights[variant])
    sam_b = ablations.build_variant_model(setup, _variant(params, "5.6", "LSMSeg(w/ SAM-B)"), 0, None, weights)
    sam_l = ablations.build_variant_model(setup, _variant(params, "5.6", "LSMSeg(w/ SAM-L)"), 0, None, weights)
    assert (sam_b.sam.variant, sam_l.sam.variant) == ("tiny", "tiny_l") and sam_b.sam.image_size == sam_l.sam.image_size
    assert sam_l.sam.out_channels == 3 * 96 and sam_b.sam.out_channels == 3 * 64
    key = "blocks.3.attn.qkv.weight"
    for model, variant in ((sam_b, "tiny"), (sam_l, "tiny_l")):  # each size loads its own checkpoint
        saved = torch.load(weights[variant], weights_only=True)[f"image_encoder.{key}"]
        torch.testing.assert_close(model.sam.encoder.state_dict()[key], saved, atol=0, rtol=0)
    for table, row in (("5.10", "CLIP_qv"), ("5.11", "LSMSeg (ours) (COCO-Stuff)")):  # the thesis's SAM-L rows
        assert (
            ablations.resolve_variant(setup, _variant(params, table, row), 0)[1]["models"]["lsmseg"]["sam_variant"]
            == "tiny_l"
        )
    assert (
        type(ablations.build_variant_model(setup, _variant(params, "5.6", "CATSeg [†]"), seed=0)).__name__ == "CATSeg"
    )
    # seeds change the initialisation; prompts: enriched rows get the prompt set, template rows none
    key, resolved = ablations.resolve_variant(setup, _variant(params, "5.6", "LSMSeg(w/o SAM)"), 3, "prompt_set")
    assert key == "lsmseg" and resolved["training"]["seed"] == 3 and resolved["prompts"] == "prompt_set"
    assert (
        ablations.resolve_variant(setup, _variant(params, "5.7", "Weighted"), 3, "prompt_set")[1]["prompts"]
        == "templates"
    )
    # Table 5.11: training vocabulary per thesis training dataset; unimplemented methods fail loudly
    assert (
        ablations.resolve_variant(setup, _variant(params, "5.11", "LSMSeg (ours) (PC-59)"), 0)[1]["train_vocabulary"]
        == "synpc59"
    )
    with pytest.raises(NotImplementedError, match="ZegFormer"):
        ablations.resolve_variant(setup, _variant(params, "5.11", "ZegFormer [49] (A-150)"), 0)
    # bad configuration: misspelt override path, rows differing from the thesis
    with pytest.raises(KeyError, match="models.lsmseg.top_kk|no setting"):
        ablations.apply_overrides(setup, {"models.lsmsegg.top_k": 3})
    broken = json.loads(json.dumps(params))
    broken["tables"]["table_5_7"]["rows"].pop("Attn")
    with pytest.raises(ValueError, match="thesis order"):
        ablations.table_variants(broken, "5.7")


def test_enriched_prompts_are_read_by_the_one_prompt_set_reader_with_its_error_for_a_missing_class():
    with pytest.raises(FileNotFoundError, match="lsmseg_attribute_selection"):  # not written yet
        ablations.enriched_prompt_source("prompt_set", None, ["sky"], ["a photo of a {}."])
    with pytest.raises(ValueError, match=r"no prompt for classes \['background'\]"):
        ablations.enriched_prompt_source("prompt_set", {"sky": "a vast blue sky"}, ["sky", "background"], ["{}"])
    source = ablations.enriched_prompt_source(
        "prompt_set", {"sky": "a vast blue sky", "background": "a blurry background"}, ["sky", "background"], ["{}"]
    )
    assert source.source == "prompt_set"
    assert source.prompt_set == {"sky": ["a vast blue sky"], "background": ["a blurry background"]}
    # the same rule as lsmseg's reader
    with pytest.raises(ValueError, match=r"no prompt for classes \['background'\]"):
        lsmseg_experiment.resolve_prompt_set("prompt_set", {"sky": "a vast blue sky"}, ["sky", "background"])
    world = ablations.enriched_prompt_source("world", None, ["sky", "lime"], ["a photo of a {}."])
    assert world.source == "world" and "world" in world.description and world.fingerprint != source.fingerprint
    with pytest.raises(ValueError, match="enriched_prompts"):
        ablations.enriched_prompt_source("synthetic-world", None, ["sky"], ["a photo of a {}."])


def test_result_cache_key_changes_with_the_model_revision(monkeypatch):
    """Cached numbers of an older model (e.g. concat fusion before it started from F_c) are not reused."""
    runner = object.__new__(ablations.LSMSegAblationRunner)
    runner.manifest, runner._index_hash, runner.clip_weights, runner._clip_sha256 = {"family": "x"}, "i", "c", "s"
    runner._sam_sha256 = {}
    runner.prompts = ablations.PromptSource("templates", None, "templates")
    setup = {"models": {"lsmseg": {"fusion": "concat", "use_sam": False}}, "checkpoint_dir": "ignored"}
    assert ablations.LSMSEG_REVISION == 3
    current = runner._cache_key("lsmseg", setup)
    assert current == runner._cache_key("lsmseg", {**setup, "checkpoint_dir": "elsewhere"})
    # a retrained tiny SAM invalidates the rows that load that size only
    sam_l = {**setup, "models": {"lsmseg": {"architecture": "lsmseg", "sam_variant": "tiny_l"}}}
    runner._sam_sha256 = {"tiny": "a", "tiny_l": "b"}
    keys = (runner._cache_key("lsmseg", setup), runner._cache_key("lsmseg", sam_l))
    runner._sam_sha256 = {"tiny": "a2", "tiny_l": "b"}
    assert (runner._cache_key("lsmseg", setup), runner._cache_key("lsmseg", sam_l)) == keys
    runner._sam_sha256 = {"tiny": "a", "tiny_l": "b2"}
    assert runner._cache_key("lsmseg", sam_l) != keys[1]
    runner._sam_sha256 = {}
    monkeypatch.setattr(ablations, "LSMSEG_REVISION", 4)
    assert runner._cache_key("lsmseg", setup) != current

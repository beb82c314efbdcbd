"""OVSS training pieces of the lsmseg runs (loss, prompts, input checks, training lowers the loss)."""

from __future__ import annotations

import json

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
from seg_pipelines.models.factory import create_model
from seg_pipelines.models.ovss.catseg import per_pixel_bce_loss
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, load_clip


def test_masked_bce_equals_catseg_loss_without_filtering_and_counts_only_kept_classes():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3))
    target[0, 0, 0] = 255
    torch.testing.assert_close(masked_per_pixel_bce(logits, target, None, 255), per_pixel_bce_loss(logits, target))
    kept = torch.tensor([[0, 2], [1, 3]])
    one_hot = F.one_hot(torch.where(target == 255, 0, target), 4).permute(0, 3, 1, 2).float() * (
        target != 255
    ).unsqueeze(1)
    losses = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
    expected = torch.cat([losses[0, [0, 2]].flatten(), losses[1, [1, 3]].flatten()]).mean()
    torch.testing.assert_close(masked_per_pixel_bce(logits, target, kept, 255), expected)


def test_prompt_sets_and_input_checks(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(
        json.dumps({"lime": "a lime is small, round, green and smooth", "sky": ["sky is blue", "blue sky"]})
    )
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
    model = create_model(
        "lsmseg",
        image_size=32,
        use_sam=False,
        top_k=0,
        hidden_dim=8,
        appearance_guidance_dim=4,
        text_guidance_dim=4,
        decoder_channels=(4, 4),
        decoder_guidance_dims=(2, 2),
        num_heads=1,
        window_size=2,
        num_layers=1,
    )
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


class _CountingOVSSModel(torch.nn.Module):
    """A stand-in OVSS model: class c's logit is (c + 1) × the image's first channel; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.clip = type("Text", (), {"encode_prompts": staticmethod(lambda p: torch.ones(len(p), len(p[0]), 4))})()

    def forward(self, images, text):
        self.calls += 1
        scale = torch.arange(1, text.shape[0] + 1, dtype=images.dtype)
        return {"logits": images[:, :1] * scale[None, :, None, None] - scale[None, :, None, None] / 2}


def test_benchmarks_with_the_same_images_labels_and_prompts_are_evaluated_once(monkeypatch):
    from seg_pipelines.experiments import lsmseg as lsmseg_experiment

    torch.manual_seed(0)
    images = torch.rand(5, 3, 8, 8)
    labels = torch.randint(0, 3, (5, 8, 8))
    fine_labels = labels.clone()
    fine_labels[:, 0, 0] = 65535  # A-847's ignore value ...
    pc_labels = labels.clone()
    pc_labels[:, 0, 0] = 3  # ... and PC-459's (the number of classes) on the same pixels
    other = labels.clone()
    other[0, 4, 4] = (other[0, 4, 4] + 1) % 3  # one pixel differs: must be evaluated on its own
    splits = {"fine": fine_labels, "pc": pc_labels, "other": other, "coarse": labels[:, :, :] % 2}
    monkeypatch.setattr(
        lsmseg_experiment,
        "_eval_dataset",
        lambda manifest, index, name, record, split: [
            {"image": image, "label": label} for image, label in zip(images, splits[name])
        ],
    )
    classes = ["sky", "lime", "car"]
    prompts = [[f"a photo of a {c}."] for c in classes]
    plan = {
        "benchmarks": {
            "fine": {"class_names": classes, "ignore_index": 65535, "prompts": prompts},
            "pc": {"class_names": classes, "ignore_index": 3, "prompts": prompts},
            "other": {"class_names": classes, "ignore_index": 255, "prompts": prompts},
            "coarse": {"class_names": ["sky", "thing"], "ignore_index": 255, "prompts": prompts[:2]},
        }
    }
    params = {"benchmarks": ["fine", "pc", "other", "coarse"], "evaluation": {"batch_size": 2, "limit": None}}
    model = _CountingOVSSModel()
    miou, per_class, metrics = lsmseg_experiment.evaluate_models_on_benchmarks({"m": model}, None, {}, plan, params)
    assert model.calls == 3 * 3  # fine, other and coarse: 3 batches each; pc shares fine's scores
    assert metrics["m"]["pc"]["scores_of"] == "fine" and "scores_of" not in metrics["m"]["other"]
    assert miou["m"]["pc"] == miou["m"]["fine"] and per_class["m"]["pc"] == per_class["m"]["fine"]
    assert per_class["chance"]["pc"] == per_class["chance"]["fine"]
    # the shared scores are the ones an evaluation of its own gives
    alone, _, _ = lsmseg_experiment.evaluate_models_on_benchmarks(
        {"m": _CountingOVSSModel()}, None, {}, plan, {**params, "benchmarks": ["pc"]}
    )
    assert alone["m"]["pc"] == pytest.approx(miou["m"]["pc"])
    assert miou["m"]["other"] != miou["m"]["fine"]


def test_prompt_set_vs_templates_trains_each_source_on_each_seed_and_compares_unseen_miou_paired(monkeypatch):
    from seg_pipelines.experiments import lsmseg as lsmseg_experiment

    classes = ["sky", "lime", "car"]  # lime unseen
    plan = {
        "benchmarks": {"seen": {"class_names": ["sky", "car"], "ignore_index": 255, "prompts": []}, "fine": {}},
        "unseen": ["lime"],
    }
    plan["benchmarks"]["fine"] = {"class_names": classes, "ignore_index": 255, "prompts": []}
    trained = []

    class Model:
        def __init__(self, prompts, seed):
            self.prompts, self.seed = prompts, seed

        def eval(self):
            return self

    def train(index, manifest, run_plan, run_params, key):
        assert key == "lsmseg" and run_params["checkpoint_dir"] is None and run_params["benchmarks"] == ["fine"]
        seed = run_params["training"]["seed"]
        trained.append((run_plan["benchmarks"]["fine"]["prompts"][1][0], seed))
        return Model(run_plan["benchmarks"]["fine"]["prompts"], seed), []

    def evaluate(models, index, manifest, run_plan, run_params):
        model = models["lsmseg"]
        described = "green" in model.prompts[1][0]  # the prompt set describes the unseen lime
        lime = (0.30 if described else 0.10) + 0.01 * model.seed
        return {}, {"lsmseg": {"fine": [0.5, lime, 0.4]}}, {}

    monkeypatch.setattr(lsmseg_experiment, "train_ovss", train)
    monkeypatch.setattr(lsmseg_experiment, "evaluate_models_on_benchmarks", evaluate)
    prompt_set = {name: [f"a photo of a {name}. A {name} is green."] for name in classes}
    params = {
        "prompts": "prompt_set",
        "templates": ["a photo of a {}."],
        "seen_unseen_benchmark": "fine",
        "training": {"seed": 9, "iterations": 2},
        "checkpoint_dir": "data/06_models/lsmseg_training",
        "prompt_comparison": {"seeds": [0, 1, 2], "rule": "2se"},
    }
    record, markdown = lsmseg_experiment.compare_prompt_sources(None, {}, plan, prompt_set, params)
    assert trained == [("a photo of a lime. A lime is green.", s) for s in (0, 1, 2)] + [
        ("a photo of a lime.", s) for s in (0, 1, 2)
    ]
    assert record["mIoU"]["prompt_set"]["unseen"] == pytest.approx([30.0, 31.0, 32.0])
    assert record["mIoU"]["templates"]["unseen"] == pytest.approx([10.0, 11.0, 12.0])
    assert record["mIoU"]["templates"]["seen"] == pytest.approx([45.0] * 3)
    # differences +20 on every seed: se 0, beyond noise
    assert record["verdict"] == "higher" and record["unseen_difference"].startswith("+20.00")
    assert "| prompt_set | 45.0 ± 0.0 | 31.0 ± 1.0 |" in markdown
    skipped, text = lsmseg_experiment.compare_prompt_sources(None, {}, plan, None, {**params, "prompts": "world"})
    assert skipped == {"skipped": "prompts: world"} and "not run" in text
    with pytest.raises(FileNotFoundError, match="prompt_set"):
        lsmseg_experiment.compare_prompt_sources(None, {}, plan, None, params)
    fallback = {name: f"a photo of a {name}." for name in classes}  # what a fallback to the template writes
    trained.clear()
    skipped, _ = lsmseg_experiment.compare_prompt_sources(None, {}, plan, fallback, params)
    assert "is the templates" in skipped["skipped"] and trained == []

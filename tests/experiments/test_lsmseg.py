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
from seg_pipelines.models.ovss.catseg import per_pixel_bce_loss
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, load_clip
from seg_pipelines.models.registry import create_model


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

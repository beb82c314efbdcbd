"""Tiny SAM pretraining (experiments.sam_pretraining): class-agnostic regions, prompts, the trained
weights entering LSMSeg's SAM branch as a real SAM checkpoint does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_pipelines.experiments import lsmseg as lsmseg_experiment
from seg_pipelines.experiments import sam_pretraining as sam_pretraining
from seg_pipelines.models.ovss.sam import SAMImageEncoder


def test_regions_are_connected_components_without_classes():
    label = np.array(
        [
            [1, 1, 0, 2, 2],
            [1, 1, 0, 2, 2],
            [0, 0, 0, 0, 0],
            [2, 2, 0, 1, 255],
            [2, 2, 0, 0, 0],
        ]
    )
    regions, count = sam_pretraining.region_map(label, ignore_index=255, min_pixels=2)
    # class 0: one component of 11 pixels; class 1: two (4 px, and 1 px < min); class 2: two of 4 px
    assert count == 4
    assert sorted(np.bincount(regions.ravel())[1:].tolist()) == [4, 4, 4, 11]
    assert regions[3, 3] == 0 and regions[3, 4] == 0  # too small, ignored
    assert len({regions[0, 0], regions[0, 3], regions[3, 0]}) == 3  # same class, other component: other region


def test_prompts_from_a_mask():
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[2:7, 3:8] = True  # rows 2-6, columns 3-7
    assert sam_pretraining.interior_point(mask).tolist() == [5.0, 4.0]  # (x, y): the centre
    rng = np.random.default_rng(0)
    assert sam_pretraining.noisy_box(mask, rng, noise=0.0, noise_max=20).tolist() == [3.0, 2.0, 7.0, 6.0]
    boxes = torch.stack([sam_pretraining.noisy_box(mask, rng, noise=0.1, noise_max=20) for _ in range(200)])
    assert 0.4 < (boxes - torch.tensor([3.0, 2.0, 7.0, 6.0])).std(0).mean() < 0.6  # std 10 % of the side 5
    points = torch.stack([sam_pretraining.point_in_mask(mask, rng) for _ in range(100)])
    assert mask[points[:, 1].long(), points[:, 0].long()].all()


def _toy_regions(count: int, size: int = 32, seed: int = 0) -> sam_pretraining.RegionMasks:
    """Grey images with 2 coloured rectangles each: 3 regions (background + 2)."""
    rng = np.random.default_rng(seed)
    images, regions = torch.full((count, 3, size, size), 128, dtype=torch.uint8), torch.ones(count, size, size)
    for index in range(count):
        for region in (2, 3):
            top, left = rng.integers(0, size - 12, size=2)
            height, width = rng.integers(8, 13, size=2)
            images[index, :, top : top + height, left : left + width] = torch.from_numpy(
                rng.integers(0, 256, size=3)
            ).view(3, 1, 1)
            regions[index, top : top + height, left : left + width] = region
    relabelled = [sam_pretraining.region_map(r.numpy().astype(int), 255, 4) for r in regions]
    return sam_pretraining.RegionMasks(
        images, torch.stack([torch.from_numpy(r) for r, _ in relabelled]), [c for _, c in relabelled]
    )


def test_pretrained_weights_enter_lsmseg_as_a_sam_checkpoint(tmp_path):
    config = sam_pretraining.SamPretrainingConfig(
        image_size=32, steps=2, batch_size=2, prompts_per_image=2, log_interval=1
    )
    sam, curve = sam_pretraining.pretrain_sam(_toy_regions(4), config)
    assert [row["step"] for row in curve] == [1, 2] and {"focal", "dice", "iou"} <= set(curve[0])
    state = sam.state_dict()
    assert {key.split(".")[0] for key in state} == {"image_encoder", "prompt_encoder", "mask_decoder"}
    torch.save(state, tmp_path / "tiny_sam.pt")
    encoder = SAMImageEncoder("tiny", image_size=32, checkpoint=tmp_path / "tiny_sam.pt")
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        tokens = sam.image_encoder.patch_embed(encoder.normalize(images)) + sam.image_encoder.pos_embed
        for block in sam.image_encoder.blocks:
            tokens = block(tokens)
        torch.testing.assert_close(encoder(encoder.normalize(images))[-1], tokens.permute(0, 3, 1, 2), atol=0, rtol=0)
    # through the lsmseg builder: the tiny SAM branch takes the weights, a vit_b branch keeps its own checkpoint
    spec = {"architecture": "lsmseg", "use_sam": True, "sam_variant": "tiny", "top_k": 2}
    params = {
        "models": {"lsmseg": spec},
        "clip": {"model": "TinyCLIP-ViT-8-96", "image_size": 32},
        "head": {
            "hidden_dim": 8,
            "appearance_guidance_dim": 4,
            "text_guidance_dim": 4,
            "decoder_channels": [4, 4],
            "decoder_guidance_dims": [4, 4],
            "num_heads": 2,
            "window_size": 2,
            "num_layers": 1,
        },
        "training": {"seed": 0},
    }
    path = str(tmp_path / "tiny_sam.pt")
    assert lsmseg_experiment._model_kwargs(params, "lsmseg", None, path)[1]["sam_checkpoint"] == path
    real = {**params, "models": {"lsmseg": {**spec, "sam_variant": "vit_b", "sam_checkpoint": "/ckpt/sam_vit_b.pth"}}}
    assert lsmseg_experiment._model_kwargs(real, "lsmseg", None, path)[1]["sam_checkpoint"] == "/ckpt/sam_vit_b.pth"
    without = {**params, "models": {"lsmseg": {**spec, "use_sam": False}}}
    assert "sam_checkpoint" not in lsmseg_experiment._model_kwargs(without, "lsmseg", None, path)[1]
    model = lsmseg_experiment.build_ovss_model(params, "lsmseg", None, path)
    torch.testing.assert_close(
        model.sam.encoder.blocks[1].attn.qkv.weight, state["image_encoder.blocks.1.attn.qkv.weight"]
    )
    untrained = lsmseg_experiment.build_ovss_model(params, "lsmseg", None, None)
    assert not torch.equal(
        untrained.sam.encoder.blocks[1].attn.qkv.weight, state["image_encoder.blocks.1.attn.qkv.weight"]
    )


def test_tiny_sam_plan_checks_the_checkpoint(tmp_path):
    params = {"models": {"baseline": {"architecture": "catseg"}, "lsmseg": {"architecture": "lsmseg"}}}
    weights = tmp_path / "tiny_sam.pt"
    weights.write_bytes(b"x")
    assert lsmseg_experiment._tiny_sam_weights(params, {"variant": "tiny"}, str(weights)) == str(weights)
    assert lsmseg_experiment._tiny_sam_weights(params, None, None) is None  # random init, a warning
    no_sam = {
        "models": {"baseline": {"architecture": "catseg"}, "lsmseg": {"architecture": "lsmseg", "use_sam": False}}
    }
    assert lsmseg_experiment._tiny_sam_weights(no_sam, {"variant": "tiny"}, str(weights)) is None
    with pytest.raises(ValueError, match="none exists: the tiny SAM is pretrained on the synthetic world only"):
        lsmseg_experiment._tiny_sam_weights(
            params, {"not_trained": sam_pretraining.not_trained_reason({"family": "ade20k_150"})}, str(weights)
        )
    with pytest.raises(FileNotFoundError, match="run sam_pretraining"):
        lsmseg_experiment._tiny_sam_weights(params, {"variant": "tiny"}, str(tmp_path / "missing.pt"))

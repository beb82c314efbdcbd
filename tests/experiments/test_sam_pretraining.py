"""Tiny SAM pretraining (experiments.sam_pretraining): class-agnostic regions, prompts, the trained
weights entering LSMSeg's SAM branch as a real SAM checkpoint does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_pipelines.engine.training import CheckpointError
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


def test_tiny_l_is_the_larger_encoder_with_the_same_prompt_encoder_and_decoder():
    from seg_pipelines.models.factory import create_model

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    small, large = create_model("sam", variant="tiny"), create_model("sam", variant="tiny_l")
    assert (count(small.image_encoder), count(large.image_encoder)) == (237_760, 947_168)  # ~4x (ViT-L/B: 3.6x)
    assert (len(small.image_encoder.blocks), len(large.image_encoder.blocks)) == (4, 8)  # 2x deep (ViT-L/B: 2x)
    assert (small.image_encoder.pos_embed.shape[-1], large.image_encoder.pos_embed.shape[-1]) == (64, 96)
    for part in ("prompt_encoder", "mask_decoder"):  # one prompt encoder / mask decoder design, as SAM's B/L/H
        assert [p.shape for p in getattr(small, part).parameters()] == [
            p.shape for p in getattr(large, part).parameters()
        ]
    # LSMSeg's SAM branch: the last three global blocks (3, 5, 7 of tiny_l; 1, 2, 3 of tiny)
    branch = SAMImageEncoder("tiny_l", image_size=32)
    assert branch.feature_blocks == (3, 5, 7) and branch.out_channels == 3 * 96
    assert SAMImageEncoder("tiny", image_size=32).out_channels == 3 * 64


_HEAD = {
    "hidden_dim": 8,
    "appearance_guidance_dim": 4,
    "text_guidance_dim": 4,
    "decoder_channels": [4, 4],
    "decoder_guidance_dims": [4, 4],
    "num_heads": 2,
    "window_size": 2,
    "num_layers": 1,
}


@pytest.mark.parametrize("variant", ["tiny", "tiny_l"])
def test_pretrained_weights_enter_lsmseg_as_a_sam_checkpoint(tmp_path, variant):
    config = sam_pretraining.SamPretrainingConfig(
        variant=variant, image_size=32, steps=2, batch_size=2, prompts_per_image=2, log_interval=1
    )
    sam, curve = sam_pretraining.pretrain_sam(_toy_regions(4), config)
    assert [row["step"] for row in curve] == [1, 2] and {"focal", "dice", "iou"} <= set(curve[0])
    state = sam.state_dict()
    assert {key.split(".")[0] for key in state} == {"image_encoder", "prompt_encoder", "mask_decoder"}
    torch.save(state, tmp_path / f"{variant}.pt")
    encoder = SAMImageEncoder(variant, image_size=32, checkpoint=tmp_path / f"{variant}.pt")
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        tokens = sam.image_encoder.patch_embed(encoder.normalize(images)) + sam.image_encoder.pos_embed
        for block in sam.image_encoder.blocks:
            tokens = block(tokens)
        torch.testing.assert_close(encoder(encoder.normalize(images))[-1], tokens.permute(0, 3, 1, 2), atol=0, rtol=0)
    # through the lsmseg builder: the branch of this variant takes its weights (the plan names both sizes),
    # a vit_b branch keeps its own checkpoint
    other = "tiny_l" if variant == "tiny" else "tiny"
    weights = {variant: str(tmp_path / f"{variant}.pt"), other: str(tmp_path / f"{other}.pt")}
    spec = {"architecture": "lsmseg", "use_sam": True, "sam_variant": variant, "top_k": 2}
    params = {
        "models": {"lsmseg": spec},
        "clip": {"model": "TinyCLIP-ViT-8-96", "image_size": 32},
        "head": _HEAD,
        "training": {"seed": 0},
    }
    assert lsmseg_experiment._model_kwargs(params, "lsmseg", None, weights)[1]["sam_checkpoint"] == weights[variant]
    real = {**params, "models": {"lsmseg": {**spec, "sam_variant": "vit_b", "sam_checkpoint": "/ckpt/sam_vit_b.pth"}}}
    assert lsmseg_experiment._model_kwargs(real, "lsmseg", None, weights)[1]["sam_checkpoint"] == "/ckpt/sam_vit_b.pth"
    without = {**params, "models": {"lsmseg": {**spec, "use_sam": False}}}
    assert "sam_checkpoint" not in lsmseg_experiment._model_kwargs(without, "lsmseg", None, weights)[1]
    model = lsmseg_experiment.build_ovss_model(params, "lsmseg", None, {variant: weights[variant]})
    assert model.sam.variant == variant
    key = "blocks.1.attn.qkv.weight"
    torch.testing.assert_close(model.sam.encoder.state_dict()[key], state[f"image_encoder.{key}"], atol=0, rtol=0)
    only_other = lsmseg_experiment.build_ovss_model(params, "lsmseg", None, {other: weights[other]})
    untrained = lsmseg_experiment.build_ovss_model(params, "lsmseg", None, None)
    for random_init in (only_other, untrained):  # no weights of its own variant: random init
        assert not torch.equal(random_init.sam.encoder.state_dict()[key], state[f"image_encoder.{key}"])


def test_tiny_sam_plan_checks_each_sizes_checkpoint(tmp_path):
    params = {"models": {"baseline": {"architecture": "catseg"}, "lsmseg": {"architecture": "lsmseg"}}}
    large = {"models": {**params["models"], "lsmseg": {"architecture": "lsmseg", "sam_variant": "tiny_l"}}}
    small_weights, large_weights = tmp_path / "tiny_sam.pt", tmp_path / "tiny_sam_l.pt"
    small_weights.write_bytes(b"x")
    large_weights.write_bytes(b"y")
    both = lsmseg_experiment.tiny_sam_inputs(
        {"variant": "tiny"}, str(small_weights), {"variant": "tiny_l"}, str(large_weights)
    )
    # the plan carries the weights of the size a model uses, and only those
    assert lsmseg_experiment._tiny_sam_weights(params, both) == {"tiny": str(small_weights)}
    assert lsmseg_experiment._tiny_sam_weights(large, both) == {"tiny_l": str(large_weights)}
    assert lsmseg_experiment._tiny_sam_weights(params, {}) == {}  # random init, a warning
    no_sam = {
        "models": {"baseline": {"architecture": "catseg"}, "lsmseg": {"architecture": "lsmseg", "use_sam": False}}
    }
    assert lsmseg_experiment._tiny_sam_weights(no_sam, both) == {}
    own = {"models": {**params["models"], "lsmseg": {"architecture": "lsmseg", "sam_checkpoint": "/mine.pt"}}}
    assert lsmseg_experiment._tiny_sam_weights(own, both) == {}  # a checkpoint of your own wins
    with pytest.raises(ValueError, match="none exists: the tiny SAM is pretrained on the synthetic world only"):
        lsmseg_experiment._tiny_sam_weights(
            params, {"tiny": ({"not_trained": sam_pretraining.not_trained_reason({"family": "ade20k_150"})}, "x")}
        )
    swapped = lsmseg_experiment.tiny_sam_inputs(
        {"variant": "tiny_l"}, str(large_weights), {"variant": "tiny"}, str(small_weights)
    )
    with pytest.raises(CheckpointError, match="trained as SAM 'tiny', not 'tiny_l'"):
        lsmseg_experiment._tiny_sam_weights(large, swapped)
    with pytest.raises(FileNotFoundError, match="run sam_pretraining"):
        lsmseg_experiment._tiny_sam_weights(large, {"tiny_l": ({"variant": "tiny_l"}, str(tmp_path / "missing.pt"))})


def test_each_block_trains_its_own_size():
    from seg_pipelines.parameters import SamPretraining

    training = {"steps": 2, "batch_size": 2, "lr": 1e-3}
    params = SamPretraining.of({"training": training, "training_l": {**training, "variant": "tiny_l"}})
    assert sam_pretraining._config(params, "tiny_l").variant == "tiny_l"
    with pytest.raises(ValueError, match=r"(?s)training_l.*variant is 'tiny'; this block trains 'tiny_l'"):
        SamPretraining.of({"training": training, "training_l": training})  # variant left at tiny

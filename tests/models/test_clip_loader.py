"""CLIP loading (offline), tiny config, dense features, checkpoints and q/k/v fine-tuning."""

from __future__ import annotations

import os

import open_clip
import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.models.ovss.clip import (
    ENSEMBLE_TEMPLATES,
    TINY_CLIP_NAME,
    CLIPDenseEncoder,
    build_class_prompts,
    clip_state_dict,
    configure_clip_finetuning,
    ensemble_text_embeddings,
    interpolate_position_embedding,
    load_clip,
    register_model_configs,
    resolve_clip_weights,
    save_clip_checkpoint,
)


@pytest.fixture(scope="module")
def tiny_clip():
    torch.manual_seed(0)
    return load_clip(TINY_CLIP_NAME)


def test_tiny_config_is_registered_with_open_clip(tiny_clip):
    names = register_model_configs()
    assert TINY_CLIP_NAME in names and TINY_CLIP_NAME in open_clip.list_models()
    visual = tiny_clip.visual
    assert visual.image_size == (96, 96) and visual.patch_size == (8, 8)
    assert visual.transformer.width == 128 and len(visual.transformer.resblocks) == 4
    assert tiny_clip.context_length == 77 and visual.proj.shape == (128, 96)


def test_dense_features_match_open_clip_intermediates(tiny_clip):
    encoder = CLIPDenseEncoder(tiny_clip, model_name=TINY_CLIP_NAME)
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        features = encoder(images)
        reference = tiny_clip.visual.forward_intermediates(
            images, indices=[0, 1, 3], normalize_intermediates=False, output_fmt="NCHW"
        )["image_intermediates"]
        last = tiny_clip.visual.ln_post(reference[2].flatten(2).transpose(1, 2)) @ tiny_clip.visual.proj
    assert encoder.guidance_layers == (0, 1)
    assert features.dense.shape == (2, 96, 12, 12)
    torch.testing.assert_close(features.dense, last.transpose(1, 2).reshape(2, 96, 12, 12), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(features.guidance[0], reference[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(features.guidance[1], reference[1], atol=1e-5, rtol=1e-5)
    # Other input sizes interpolate the position embedding.
    with torch.no_grad():
        other = encoder(torch.randn(1, 3, 64, 80))
    assert other.dense.shape == (1, 96, 8, 10) and other.guidance[0].shape == (1, 128, 8, 10)


def test_trimmed_text_encoding_equals_open_clip(tiny_clip):
    import open_clip

    from seg_pipelines.models.ovss.clip import encode_text_trimmed

    tokenizer = open_clip.get_tokenizer(TINY_CLIP_NAME, context_length=tiny_clip.context_length)
    tokens = tokenizer(["a lime.", "a photo of a small round green object on the grass.", "sky"])
    assert int((tokens != 0).sum(dim=1).max()) < tokens.shape[1]  # there is padding to cut
    torch.testing.assert_close(
        encode_text_trimmed(tiny_clip, tokens), tiny_clip.encode_text(tokens), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(
        encode_text_trimmed(tiny_clip, tokens, normalize=True),
        tiny_clip.encode_text(tokens, normalize=True),
        atol=1e-5,
        rtol=1e-5,
    )


def test_position_embedding_interpolation():
    position = torch.randn(1 + 12 * 12, 16)
    assert interpolate_position_embedding(position, (12, 12)) is position
    resized = interpolate_position_embedding(position, (6, 8))
    assert resized.shape == (1 + 48, 16)
    torch.testing.assert_close(resized[0], position[0])  # class token untouched
    grid = position[1:].reshape(1, 12, 12, 16).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(6, 8), mode="bicubic", align_corners=False)
    torch.testing.assert_close(resized[1:], expected.permute(0, 2, 3, 1).reshape(48, 16))


def test_checkpoint_round_trip_weights_only(tiny_clip, tmp_path):
    path = save_clip_checkpoint(tiny_clip, tmp_path / "tiny_clip.pt")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == set(tiny_clip.state_dict())
    torch.manual_seed(123)  # a different random init that the checkpoint must overwrite
    reloaded = load_clip(TINY_CLIP_NAME, str(path))
    for key, value in tiny_clip.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value, atol=0, rtol=0)
    images = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(
            CLIPDenseEncoder(reloaded)(images).dense, CLIPDenseEncoder(tiny_clip)(images).dense, atol=0, rtol=0
        )


def test_checkpoint_of_split_qkv_model_is_packed_back(tmp_path):
    torch.manual_seed(1)
    model = load_clip(TINY_CLIP_NAME)
    packed = model.visual.transformer.resblocks[2].attn.in_proj_weight.detach().clone()
    configure_clip_finetuning(model, "qv")
    state = clip_state_dict(model)
    assert not any("parametrizations" in key for key in state)
    torch.testing.assert_close(state["visual.transformer.resblocks.2.attn.in_proj_weight"], packed, atol=0, rtol=0)
    path = save_clip_checkpoint(model, tmp_path / "split.pt")
    reloaded = load_clip(TINY_CLIP_NAME, str(path))
    torch.testing.assert_close(reloaded.visual.transformer.resblocks[2].attn.in_proj_weight, packed, atol=0, rtol=0)


def test_missing_tag_raises_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not available offline"):
        resolve_clip_weights("ViT-B-16", "openai", cache_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not an open_clip tag"):
        resolve_clip_weights("ViT-B-16", "no-such-tag-or-file", cache_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError):
        load_clip("ViT-B-16", "openai", image_size=384, cache_dir=str(tmp_path))


def test_cached_tag_resolves_to_local_file_with_quick_gelu(tmp_path):
    url = open_clip.get_pretrained_cfg("ViT-B-16", "openai")["url"]
    cached = tmp_path / os.path.basename(url)
    cached.write_bytes(b"placeholder")
    path, quick_gelu = resolve_clip_weights("ViT-B-16", "openai", cache_dir=str(tmp_path))
    assert path == str(cached) and quick_gelu is True  # OpenAI weights were trained with QuickGELU
    assert resolve_clip_weights(TINY_CLIP_NAME, None) == (None, False)


def test_quick_gelu_option():
    plain = load_clip(TINY_CLIP_NAME)
    quick = load_clip(TINY_CLIP_NAME, force_quick_gelu=True)
    named = load_clip(TINY_CLIP_NAME + "-quickgelu")
    assert type(plain.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    assert type(quick.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert type(named.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"


def _attention_weights(model):
    blocks = list(model.visual.transformer.resblocks) + list(model.transformer.resblocks)
    return [(block.attn.in_proj_weight.detach().clone(), block.attn.in_proj_bias.detach().clone()) for block in blocks]


@pytest.mark.parametrize("mode,changed", [("qv", (0, 2)), ("qk", (0, 1)), ("kv", (1, 2))])
def test_finetuning_changes_only_chosen_projection_slices(mode, changed):
    torch.manual_seed(2)
    model = load_clip(TINY_CLIP_NAME)
    trainable = configure_clip_finetuning(model, mode)
    assert trainable and all("parametrizations.in_proj_" in name for name in trainable)
    assert len(trainable) == 2 * 2 * (4 + 4)  # 2 slices × (weight, bias) × (4 image + 4 text blocks)
    before = _attention_weights(model)
    other_before = {k: v.clone() for k, v in model.state_dict().items() if "parametrizations" not in k}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    encoder = CLIPDenseEncoder(model, model_name=TINY_CLIP_NAME)
    images = torch.randn(2, 3, 96, 96)
    tokens = encoder.tokenize([["a photo of a cat."], ["a photo of a dog."]])
    loss = encoder(images).dense.square().mean() + encoder.encode_text_tokens(tokens).square().mean()
    loss.backward()
    optimizer.step()
    after = _attention_weights(model)
    for (weight0, bias0), (weight1, bias1) in zip(before, after):
        for slot in range(3):
            moved = not torch.equal(weight0.chunk(3)[slot], weight1.chunk(3)[slot])
            moved_bias = not torch.equal(bias0.chunk(3)[slot], bias1.chunk(3)[slot])
            assert moved == (slot in changed) and moved_bias == (slot in changed)
    for key, value in model.state_dict().items():
        if key in other_before:
            assert torch.equal(value, other_before[key]), key


def test_frozen_and_full_modes():
    model = load_clip(TINY_CLIP_NAME)
    assert configure_clip_finetuning(model, "frozen") == []
    assert len(configure_clip_finetuning(model, "full")) == len(list(model.parameters()))
    names = configure_clip_finetuning(model, "frozen", train_position_embedding=True)
    assert sorted(names) == ["positional_embedding", "visual.positional_embedding"]
    with pytest.raises(ValueError, match="unknown CLIP fine-tuning mode"):
        configure_clip_finetuning(model, "qkv")


def test_prompt_tokenization_and_template_ensemble(tiny_clip):
    encoder = CLIPDenseEncoder(tiny_clip, model_name=TINY_CLIP_NAME)
    prompts = build_class_prompts(["lime", "stop sign", "sky"], ENSEMBLE_TEMPLATES)
    assert prompts[1][0] == "a photo of a stop sign."
    tokens = encoder.tokenize(prompts)
    assert tokens.shape == (3, len(ENSEMBLE_TEMPLATES), 77)
    with torch.no_grad():
        text = encoder.encode_text_tokens(tokens)
    assert text.shape == (3, len(ENSEMBLE_TEMPLATES), 96)
    ensembled = ensemble_text_embeddings(text)
    assert ensembled.shape == (3, 1, 96)
    torch.testing.assert_close(ensembled.norm(dim=-1), torch.ones(3, 1))
    expected = F.normalize(F.normalize(text, dim=-1).mean(1), dim=-1)
    torch.testing.assert_close(ensembled[:, 0], expected)
    with pytest.raises(ValueError, match="same number of prompts"):
        encoder.tokenize([["a"], ["b", "c"]])

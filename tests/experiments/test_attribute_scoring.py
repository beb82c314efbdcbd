"""attribute_scoring's finetune scorer: the restructured aggregation-free head computes the same
logits and gradients as ``CATSeg.aggregate``, and ``finetune_head`` trains exactly like the plain
loop (cost volume per step, unfused head) on a tiny world."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.experiments import attribute_scoring as scoring
from seg_pipelines.models.ovss.catseg import per_pixel_bce_loss
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, clip_state_dict, load_clip
from seg_pipelines.models.ovss.filtering import scatter_class_logits

CLIP_CONFIG = {"model_name": TINY_CLIP_NAME, "image_size": 64}
SMALL_HEAD = {"hidden_dim": 16, "decoder_channels": (16, 8), "decoder_guidance_dims": (8, 4)}


@pytest.fixture(scope="module")
def clip_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return clip_state_dict(load_clip(TINY_CLIP_NAME, None, image_size=64))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from seg_pipelines.datasets.synthetic import ensure_synthetic_world

    root = tmp_path_factory.mktemp("world") / "synthetic"
    ensure_synthetic_world(root, seed=0, image_size=64, n_train=12, n_val=4)
    return root


def _reference_logits(model, dense, guidance, text):
    """The model's own path: category filter → embed_cost → decoder (concatenated guidance)."""
    filtered = model.category_filter(dense, text.unsqueeze(-2))
    logits = model.aggregate(filtered, dense, guidance)
    return scatter_class_logits(logits, filtered.indices, filtered.num_classes, model.filtered_logit)


@pytest.mark.parametrize("classes, top_k", [(3, 256), (40, 256), (40, 12)])
def test_aggregation_free_head_equals_model_aggregate(clip_weights, classes, top_k):
    # 3 classes × 2 images < 64 cost values: convolutions; 40 × 2 > 64: the prefix matrix;
    # top_k 12 < 40: filtered classes scattered back at the filtered logit
    # float64: the two paths sum the same terms in another order, and in float32 a gradient entry of
    # ~6e-3 over 32² pixels differed by 3e-5 on one machine; float64 leaves only the equation to test
    torch.manual_seed(1)
    model = scoring.build_scoring_model(CLIP_CONFIG, clip_weights, top_k=top_k, **SMALL_HEAD).train().double()
    for parameter in model.parameters():  # non-zero biases everywhere, so the offset path is exercised
        if parameter.dim() == 1 and parameter.requires_grad:
            torch.nn.init.normal_(parameter, std=0.1)
    with torch.no_grad():
        dense, guidance = model.visual_features(torch.rand(2, 3, 64, 64, dtype=torch.float64))
    text = F.normalize(torch.randn(classes, dense.shape[1], dtype=torch.float64), dim=-1)
    head = [p for n, p in model.named_parameters() if not n.startswith("clip.")]

    def run(fn):
        model.zero_grad(set_to_none=True)
        logits = fn(model, dense, guidance, text)
        (logits.sin() * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
        return logits.detach(), [p.grad.clone() for p in head]

    expected, expected_grads = run(_reference_logits)
    got, got_grads = run(scoring.head_logits)
    assert got.shape == (2, classes, 32, 32)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)
    for a, b in zip(got_grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    if top_k < classes:
        assert (got == model.filtered_logit).any()


def _reference_finetune(model, features, rows, labels, text, ignore_index, config, init):
    """Plain loop: every step recomputes the cost volume and runs the model's aggregate()."""
    model.load_state_dict(init, strict=False)
    head = [p for n, p in model.named_parameters() if not n.startswith("clip.")]
    optimizer = torch.optim.AdamW(head, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    model.train()
    for _ in range(config.steps):
        pick = torch.randint(len(rows), (min(config.batch_size, len(rows)),), generator=generator)
        index = rows[pick]
        logits = _reference_logits(model, features.dense[index], [g[index] for g in features.guidance], text)
        loss = per_pixel_bce_loss(logits, labels[pick], ignore_index=ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_finetune_head_trains_like_the_plain_loop_on_a_tiny_world(world, clip_weights):
    model = scoring.build_scoring_model(CLIP_CONFIG, clip_weights, top_k=16, **SMALL_HEAD)
    benchmark = scoring.load_benchmark(create_reader("synthetic", world, vocabulary="synvoc20"), "synvoc20", "val")
    seen, train_images = scoring.load_benchmark(create_reader("synthetic", world, vocabulary="seen"), "seen", "train")
    config = scoring.FinetuneConfig(steps=6, batch_size=3, lr=1e-2, seed=3)
    scorer = scoring.build_scorer(
        model,
        [benchmark],
        mode="finetune",
        batch_size=4,
        progress=False,
        train=(train_images, seen.labels, seen.ignore_index, seen.class_names),
        finetune=config,
    )
    assert len(seen.class_names) > 16  # the top-k filter is active in training
    prompts = {name: f"a photo of a {name}." for name in scorer.class_names}
    text = scorer.encode(prompts, scorer.train_class_names)
    init = scorer.head_init(config.seed)
    rows = scorer.train_features.rows(scorer.train_keys)
    args = (scorer.train_features, scorer.train_keys, scorer.train_labels, text, scorer.train_ignore_index, config)
    fast = scoring.finetune_head(model, *args, init)
    fast_state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("clip.")}
    slow = _reference_finetune(
        model, scorer.train_features, rows, scorer.train_labels, text, scorer.train_ignore_index, config, init
    )
    assert all(math.isfinite(v) for v in fast) and len(fast) == config.steps
    assert fast == pytest.approx(slow, rel=1e-4)
    for key, value in model.state_dict().items():
        if key in fast_state:
            torch.testing.assert_close(fast_state[key], value, rtol=1e-3, atol=1e-5)
    # CLIP is frozen: no CLIP parameter requires a gradient, and evaluation is reproducible
    assert not any(p.requires_grad for p in model.clip.parameters())
    first, second = scorer.evaluate(prompts, seed=3), scorer.evaluate(prompts, seed=3)
    assert first == second and 0 <= first["synvoc20"] <= 100

"""Closed-set segmentors: one parametrised smoke test over every registered model, reference
checks of the attention heads, the add-on API and the losses."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg_pipelines.models import factory, registry
from seg_pipelines.models.factory import create_model
from seg_pipelines.models.heads import CrissCrossAttention, create_decode_head
from seg_pipelines.models.heads.isnet import semantic_class_centers
from seg_pipelines.models.segmentor import CLOSED_SET_MODELS, EncoderDecoder

NUM_CLASSES = 5
TINY = {"backbone": "resnet_tiny", "channels": 16, "aux_channels": 8}
EXTRA = {"isnet": {"transform_channels": 8}}


def build_tiny(name: str, seed: int = 0, **cfg) -> EncoderDecoder:
    torch.manual_seed(seed)
    return create_model(name, num_classes=NUM_CLASSES, **{**TINY, **EXTRA.get(name, {}), **cfg})


def random_batch(height: int = 65, width: int = 79, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Learnable toy data: 8x8 blocks of random classes, each class a colour plus noise."""
    generator = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, NUM_CLASSES, (2, -(-height // 8), -(-width // 8)), generator=generator)
    target = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, :height, :width]
    palette = torch.randn(NUM_CLASSES, 3, generator=generator)
    images = palette[target].permute(0, 3, 1, 2) + 0.1 * torch.randn(2, 3, height, width, generator=generator)
    target[:, :4] = 255  # ignored rows
    return images, target


def test_every_closed_set_model_is_registered():
    assert set(CLOSED_SET_MODELS) <= set(factory.list_models())


CASES = [(name, {}) for name in CLOSED_SET_MODELS] + [("upernet", {"backbone": "swin_tiny_test"})]


@pytest.mark.parametrize(("name", "cfg"), CASES, ids=[f"{n}-{c.get('backbone', 'resnet')}" for n, c in CASES])
def test_model_forward_backward_determinism_and_state_dict(name, cfg):
    model = build_tiny(name, **cfg)
    images, target = random_batch()

    model.train()
    outputs = model(images, target)
    assert outputs["logits"].shape == (2, NUM_CLASSES, 65, 79)
    assert outputs["aux_logits"].shape == (2, NUM_CLASSES, 65, 79)
    losses = model.losses(outputs, target)
    for value in losses.values():
        assert torch.isfinite(value)
    assert losses["loss"].item() == pytest.approx(sum(v.item() for k, v in losses.items() if k != "loss"), rel=1e-5)
    # a near-uniform classifier at init: CE close to log(K)
    assert losses["loss_ce"].item() == pytest.approx(torch.log(torch.tensor(float(NUM_CLASSES))).item(), rel=0.1)
    losses["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for n, g in grads.items() if "gamma" not in n)
    assert grads["decode_head.conv_seg.weight"].abs().sum() > 0
    first_backbone_grad = next(g for n, g in grads.items() if n.startswith("backbone"))
    assert first_backbone_grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        first = model(images)
        second = model(images)
    assert set(first) == {"logits"}  # no auxiliary branch at inference
    torch.testing.assert_close(first["logits"], second["logits"], rtol=0, atol=0)

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    restored = build_tiny(name, seed=123, **cfg).eval()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(restored(images)["logits"], first["logits"])


@pytest.mark.parametrize("name", ["fcn", "ccnet"])
def test_training_steps_reduce_the_loss(name):
    model = build_tiny(name).train()
    images, target = random_batch(32, 32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = []
    for _ in range(10):
        loss = model.losses(model(images, target), target)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.8 * history[0]


def test_segmentor_losses_are_ce_plus_weighted_aux():
    model = build_tiny("pspnet").train()
    images, target = random_batch(33, 41)
    outputs = model(images, target)
    losses = model.losses(outputs, target)
    expected_ce = F.cross_entropy(outputs["logits"], target, ignore_index=255)
    expected_aux = 0.4 * F.cross_entropy(outputs["aux_logits"], target, ignore_index=255)
    torch.testing.assert_close(losses["loss_ce"], expected_ce)
    torch.testing.assert_close(losses["loss_aux"], expected_aux)
    torch.testing.assert_close(losses["loss"], expected_ce + expected_aux)
    all_ignored = torch.full_like(target, 255)
    assert model.losses(outputs, all_ignored)["loss"].item() == 0.0


def _slow_criss_cross(cca: CrissCrossAttention, x: Tensor) -> Tensor:
    """Loop reference: pixel (h, w) attends to column w (rows i != h) and row h (all columns)."""
    query, key, value = cca.query_conv(x), cca.key_conv(x), cca.value_conv(x)
    _, _, height, width = x.shape
    out = torch.zeros_like(x)
    for h in range(height):
        for w in range(width):
            positions = [(i, w) for i in range(height) if i != h] + [(h, j) for j in range(width)]
            keys = torch.stack([key[:, :, i, j] for i, j in positions], dim=-1)  # (B, C', N)
            values = torch.stack([value[:, :, i, j] for i, j in positions], dim=-1)  # (B, C, N)
            weights = torch.softmax(torch.einsum("bc,bcn->bn", query[:, :, h, w], keys), dim=-1)
            out[:, :, h, w] = torch.einsum("bn,bcn->bc", weights, values)
    return cca.gamma * out + x


def test_criss_cross_attention_matches_loop_reference():
    torch.manual_seed(0)
    cca = CrissCrossAttention(16)
    nn.init.constant_(cca.gamma, 0.7)
    x = torch.randn(2, 16, 5, 7)
    torch.testing.assert_close(cca(x), _slow_criss_cross(cca, x), rtol=1e-5, atol=1e-5)


def test_isnet_class_centres_match_loop_reference():
    torch.manual_seed(0)
    feats, logits = torch.randn(2, 6, 4, 5), torch.randn(2, 3, 4, 5)
    expected = torch.zeros_like(feats)
    for b in range(2):
        predicted = logits[b].argmax(0)
        for k in predicted.unique():
            mask = predicted == k
            weights = torch.softmax(logits[b, k][mask], dim=0)
            expected[b][:, mask] = (feats[b][:, mask] * weights).sum(-1, keepdim=True)
    torch.testing.assert_close(semantic_class_centers(feats, logits), expected)


@pytest.mark.parametrize(("name", "level"), [("fcn", -1), ("deeplabv3plus", 0), ("upernet", 0), ("isnet", -1)])
def test_decode_head_alone_outputs_channels_at_its_level(name, level):
    pyramid = [torch.randn(1, c, s, s) for c, s in [(8, 16), (12, 8), (16, 8), (24, 8)]]
    head = create_decode_head(
        name, num_classes=NUM_CLASSES, in_channels=(8, 12, 16, 24), channels=10, **EXTRA.get(name, {})
    ).eval()
    features = head.forward_features(pyramid)
    assert head.channels == 10
    assert features.shape == (1, 10, *pyramid[level].shape[-2:])
    torch.testing.assert_close(head(pyramid), head.cls_seg(features))


class DummyAddon(nn.Module):
    """Add-on stub following the CAA/ECAC API: logits at feature resolution plus one loss."""

    def __init__(self, in_channels: int, num_classes: int, computes_main_loss: bool = False) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)
        self.computes_main_loss = computes_main_loss
        self.seen_targets: list[Tensor | None] = []

    def forward(self, features: Tensor, target: Tensor | None) -> dict[str, Tensor]:
        self.seen_targets.append(target)
        return {"logits": self.classifier(features), "features": features}

    def losses(self, outputs: dict[str, Tensor], target: Tensor) -> dict[str, Tensor]:
        return {"loss_feature_norm": 0.1 * outputs["features"].pow(2).mean()}


def test_addon_replaces_classifier_and_adds_its_losses(monkeypatch):
    monkeypatch.setitem(registry._ADDONS, "dummy", DummyAddon)
    model = build_tiny("fcn", addon="dummy").train()
    assert isinstance(model.addon, DummyAddon) and model.addon.classifier.in_channels == 16
    images, target = random_batch(40, 40)
    outputs = model(images, target)
    assert model.addon.seen_targets[-1] is target
    assert outputs["addon"]["logits"].shape == (2, NUM_CLASSES, 5, 5)  # feature resolution
    torch.testing.assert_close(
        outputs["logits"], F.interpolate(outputs["addon"]["logits"], size=(40, 40), mode="bilinear")
    )
    losses = model.losses(outputs, target)
    expected_extra = 0.1 * outputs["addon"]["features"].pow(2).mean()
    torch.testing.assert_close(losses["loss_feature_norm"], expected_extra)
    torch.testing.assert_close(losses["loss"], losses["loss_ce"] + losses["loss_aux"] + expected_extra)
    losses["loss"].backward()
    assert model.addon.classifier.weight.grad.abs().sum() > 0
    assert model.decode_head.conv_seg.weight.grad is None  # cls_seg is bypassed

    model.addon.computes_main_loss = True
    assert "loss_ce" not in model.losses(model(images, target), target)

"""CAA add-on (thesis ch. 3): shapes, memory-efficient vs naive maths, ignore handling, ablations."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.losses.affinity import (
    affinity_bce_loss,
    affinity_ground_truth_term,
    chunked_sigmoid_affinity,
    naive_affinity_bce_loss,
    valid_one_hot,
)
from seg_pipelines.models.caa import ClassAwareAffinity, downsample_labels
from seg_pipelines.models.factory import create_addon

IGNORE = 255


def make_batch(batch=2, channels=12, height=6, width=7, num_classes=4, scale=2, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, channels, height, width, generator=generator, dtype=dtype)
    target = torch.randint(0, num_classes, (batch, height * scale, width * scale), generator=generator)
    target[:, :3, :5] = IGNORE
    return features, target


def small_caa(**cfg) -> ClassAwareAffinity:
    defaults = dict(in_channels=12, num_classes=4, channels=8, affinity_channels=5, dropout=0.0, chunk_size=5)
    defaults.update(cfg)
    torch.manual_seed(0)
    return create_addon("caa", **defaults).double()


def naive_caa_forward(module: ClassAwareAffinity, features, target):
    """Reference CAA forward materialising M, 1 − M and the ground-truth affinity (full model only)."""
    batch, _, height, width = features.shape
    num_pixels = height * width
    reduced = module.reduction(features)
    values = reduced.flatten(2).transpose(1, 2)
    coarse = module.coarse_classifier(reduced)
    centers = torch.softmax(coarse.flatten(2), dim=-1) @ values  # eq. 3.1
    query = module.query(features).flatten(2).transpose(1, 2)
    key = module.key(features).flatten(2).transpose(1, 2)
    logits = query @ key.transpose(1, 2)
    affinity = torch.sigmoid(logits)  # M
    intra = affinity @ values / num_pixels  # eq. 3.2
    inter = (1 - affinity) @ values / num_pixels  # eq. 3.3
    intra_tilde = torch.softmax(intra @ centers.transpose(1, 2), -1) @ centers  # eq. 3.4–3.5
    inter_tilde = torch.softmax(inter @ centers.transpose(1, 2), -1) @ centers  # eq. 3.6–3.7
    to_map = lambda x: x.transpose(1, 2).reshape(batch, -1, height, width)  # noqa: E731
    fused = module.fuse(torch.cat([features, to_map(intra_tilde), to_map(inter_tilde)], 1))  # eq. 3.8
    out_logits = module.classifier(fused)
    labels = downsample_labels(target, (height, width)).flatten(1)
    one_hot = valid_one_hot(labels, module.num_classes, IGNORE, dtype=features.dtype)
    gt_affinity = one_hot @ one_hot.transpose(1, 2)
    valid = (labels != IGNORE).to(features.dtype)
    pair_mask = valid[:, :, None] * valid[:, None, :]
    bce = F.binary_cross_entropy(affinity, gt_affinity, reduction="none")  # eq. 3.9 literally
    loss_affinity = (bce * pair_mask).sum() / pair_mask.sum()
    coarse_up = F.interpolate(coarse, size=target.shape[-2:], mode="bilinear", align_corners=False)
    loss_aux = 0.4 * F.cross_entropy(coarse_up, target, ignore_index=IGNORE)
    return out_logits, {"loss_aux": loss_aux, "loss_affinity": loss_affinity}


def test_registry_builds_caa_with_expected_shapes():
    module = create_addon("caa", in_channels=16, num_classes=5, channels=8, affinity_channels=4)
    assert isinstance(module, ClassAwareAffinity) and module.computes_main_loss is False
    features, target = make_batch(channels=16, num_classes=5, dtype=torch.float32)
    outputs = module(features, target)
    assert outputs["logits"].shape == (2, 5, 6, 7)
    assert outputs["coarse_logits"].shape == (2, 5, 6, 7)
    assert outputs["affinity_query"].shape == (2, 42, 4)
    losses = module.losses(outputs, target)
    assert set(losses) == {"loss_aux", "loss_affinity"}
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    module.eval()
    with torch.no_grad():
        inference = module(features)
    assert set(inference) == {"logits", "coarse_logits"}


def test_chunked_affinity_gradcheck():
    generator = torch.Generator().manual_seed(1)
    query, key = (torch.randn(2, 7, 3, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(2))
    value = torch.randn(2, 7, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = (torch.rand(2, 7, generator=generator) > 0.3).double()
    assert torch.autograd.gradcheck(lambda q, k, v: chunked_sigmoid_affinity(q, k, v, weights, 3), (query, key, value))


def test_ground_truth_term_equals_materialised_sum():
    generator = torch.Generator().manual_seed(2)
    query, key = torch.randn(2, 30, 4, generator=generator), torch.randn(2, 30, 4, generator=generator)
    labels = torch.randint(0, 3, (2, 30), generator=generator)
    labels[0, :4] = IGNORE
    one_hot = valid_one_hot(labels, 3, IGNORE)
    expected = ((one_hot @ one_hot.transpose(1, 2)) * (query @ key.transpose(1, 2))).sum(dim=(1, 2))
    torch.testing.assert_close(affinity_ground_truth_term(query, key, labels, 3, IGNORE), expected)


@pytest.mark.parametrize("chunk_size", [1, 5, 42, 1000])
def test_efficient_matches_naive_outputs_losses_and_gradients(chunk_size):
    efficient = small_caa(chunk_size=chunk_size)
    features, target = make_batch()
    features_eff = features.clone().requires_grad_(True)
    features_ref = features.clone().requires_grad_(True)
    reference = copy.deepcopy(efficient)

    outputs = efficient(features_eff, target)
    losses = efficient.losses(outputs, target)
    ref_logits, ref_losses = naive_caa_forward(reference, features_ref, target)

    torch.testing.assert_close(outputs["logits"], ref_logits, atol=1e-4, rtol=0)
    for name in ("loss_aux", "loss_affinity"):
        torch.testing.assert_close(losses[name], ref_losses[name], atol=1e-4, rtol=0)
    weight = torch.randn_like(ref_logits)
    ((outputs["logits"] * weight).sum() + sum(losses.values())).backward()
    ((ref_logits * weight).sum() + sum(ref_losses.values())).backward()
    torch.testing.assert_close(features_eff.grad, features_ref.grad, atol=1e-4, rtol=0)
    for (name, p_eff), (_, p_ref) in zip(efficient.named_parameters(), reference.named_parameters()):
        assert p_eff.grad is not None, name
        torch.testing.assert_close(p_eff.grad, p_ref.grad, atol=1e-4, rtol=0, msg=name)


def test_memory_efficient_flag_false_materialises_same_numbers():
    efficient = small_caa()
    materialised = copy.deepcopy(efficient)
    materialised.memory_efficient = False
    features, target = make_batch(seed=3)
    out_a, out_b = efficient(features, target), materialised(features, target)
    torch.testing.assert_close(out_a["logits"], out_b["logits"], atol=1e-10, rtol=0)
    loss_a, loss_b = efficient.losses(out_a, target), materialised.losses(out_b, target)
    torch.testing.assert_close(loss_a["loss_affinity"], loss_b["loss_affinity"], atol=1e-10, rtol=0)


def test_affinity_loss_ignores_ignored_pixels():
    generator = torch.Generator().manual_seed(4)
    query, key = torch.randn(1, 20, 3, generator=generator), torch.randn(1, 20, 3, generator=generator)
    labels = torch.randint(0, 3, (1, 20), generator=generator)
    labels[0, [2, 7, 11]] = IGNORE
    valid = (labels != IGNORE).float()

    def loss(q, k):
        _, softplus_sum = chunked_sigmoid_affinity(q, k, k[..., :1], valid, chunk_size=6)
        return affinity_bce_loss(softplus_sum, q, k, labels, 3, IGNORE)

    base = loss(query, key)
    torch.testing.assert_close(base, naive_affinity_bce_loss(query, key, labels, 3, IGNORE))
    q2, k2 = query.clone(), key.clone()
    q2[0, [2, 7, 11]] += 5.0 * torch.randn(3, 3, generator=generator)
    k2[0, [2, 7, 11]] -= 5.0
    torch.testing.assert_close(loss(q2, k2), base)
    q3 = query.clone()
    q3[0, 3] += 5.0  # a valid pixel does matter
    assert abs(loss(q3, key).item() - base.item()) > 1e-3

    # end to end: features of ignored pixels (target at feature resolution) do not move the loss
    module = small_caa()
    features, _ = make_batch(seed=5)
    target = torch.randint(0, 4, (2, 6, 7), generator=generator)
    target[0, 1, :4] = IGNORE
    module_loss = lambda x: module.losses(module(x, target), target)["loss_affinity"]  # noqa: E731
    module.eval()  # freeze BN statistics so other pixels' features cannot shift
    perturbed = features.clone()
    perturbed[0, :, 1, :4] += 3.0
    torch.testing.assert_close(module_loss(perturbed), module_loss(features), atol=1e-12, rtol=0)


def _capture_fuse_input(module, features, target=None):
    captured = {}

    def hook(mod, inputs, out):
        captured["x"] = inputs[0]

    handle = module.fuse.register_forward_hook(hook)
    module(features, target)
    handle.remove()
    return captured["x"]


@pytest.mark.parametrize(
    "cfg, fuse_in, loss_keys",
    [
        (dict(), 12 + 16, {"loss_aux", "loss_affinity"}),
        (dict(use_semantic_affinity=False), 12 + 8, {"loss_aux"}),
        (dict(use_class_center=False), 12 + 16, {"loss_affinity"}),
        (dict(use_inter=False), 12 + 8, {"loss_aux", "loss_affinity"}),
        (dict(use_intra=False), 12 + 8, {"loss_aux", "loss_affinity"}),
        (dict(aux_loss_weight=0.0), 12 + 16, {"loss_affinity"}),
        (dict(affinity_loss_weight=0.0), 12 + 16, {"loss_aux"}),
        (dict(use_class_center=False, use_semantic_affinity=False), 12, set()),
    ],
)
def test_ablation_switches_change_structure_and_losses(cfg, fuse_in, loss_keys):
    module = small_caa(**cfg)
    assert module.fuse[0].in_channels == fuse_in
    features, target = make_batch()
    outputs = module(features, target)
    assert set(module.losses(outputs, target)) == loss_keys
    assert ("coarse_logits" in outputs) == module.use_class_center
    assert ("affinity_softplus_sum" in outputs) == ("loss_affinity" in loss_keys)


def test_ablation_contexts_are_the_intended_features():
    features, _ = make_batch(seed=6)
    num_pixels = 42
    # SA only (Table 3.2, "w/o CC"): concat(F, MF'/N, (1−M)F'/N), no class association.
    module = small_caa(use_class_center=False).eval()
    values = module.reduction(features).flatten(2).transpose(1, 2)
    q = module.query(features).flatten(2).transpose(1, 2)
    k = module.key(features).flatten(2).transpose(1, 2)
    affinity = torch.sigmoid(q @ k.transpose(1, 2))
    intra, inter = affinity @ values / num_pixels, (1 - affinity) @ values / num_pixels
    to_map = lambda x: x.transpose(1, 2).reshape(2, -1, 6, 7)  # noqa: E731
    torch.testing.assert_close(
        _capture_fuse_input(module, features), torch.cat([features, to_map(intra), to_map(inter)], 1)
    )
    # CC only (Table 3.2, "w/o SA"): concat(F, Σ_j softmax(F'_i·c_j) c_j).
    module = small_caa(use_semantic_affinity=False).eval()
    reduced = module.reduction(features)
    values = reduced.flatten(2).transpose(1, 2)
    centers = torch.softmax(module.coarse_classifier(reduced).flatten(2), -1) @ values
    associated = torch.softmax(values @ centers.transpose(1, 2), -1) @ centers
    torch.testing.assert_close(_capture_fuse_input(module, features), torch.cat([features, to_map(associated)], 1))
    # inter only (Table 3.3): the single context is the associated (1−M)F'.
    module = small_caa(use_intra=False).eval()
    reduced = module.reduction(features)
    values = reduced.flatten(2).transpose(1, 2)
    centers = torch.softmax(module.coarse_classifier(reduced).flatten(2), -1) @ values
    q = module.query(features).flatten(2).transpose(1, 2)
    k = module.key(features).flatten(2).transpose(1, 2)
    inter = (1 - torch.sigmoid(q @ k.transpose(1, 2))) @ values / num_pixels
    inter_tilde = torch.softmax(inter @ centers.transpose(1, 2), -1) @ centers
    torch.testing.assert_close(_capture_fuse_input(module, features), torch.cat([features, to_map(inter_tilde)], 1))


def test_parameter_count_at_thesis_size():
    """Table 3.5 setting (512 channels, 150 classes): +1.39M with the thesis' 1×1 reduction, 3.49M with 3×3."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    classifier = 512 * 150 + 150  # the head's own classifier, which CAA replaces
    assert count(ClassAwareAffinity(512, 150)) - classifier == 1_390_230
    assert count(ClassAwareAffinity(512, 150, reduction_kernel_size=3)) - classifier == 3_487_382


def test_tiny_training_loop_decreases_loss():
    torch.manual_seed(0)
    num_classes, channels = 3, 8
    embeddings = torch.randn(num_classes, channels) * 2
    backbone = torch.nn.Conv2d(channels, 16, 1)
    module = ClassAwareAffinity(16, num_classes, channels=8, affinity_channels=4, dropout=0.0)
    optimizer = torch.optim.Adam([*backbone.parameters(), *module.parameters()], lr=1e-2)
    history = []
    for step in range(30):
        generator = torch.Generator().manual_seed(step)
        target = torch.randint(0, num_classes, (2, 1, 4, 4), generator=generator)
        target = F.interpolate(target.float(), scale_factor=2, mode="nearest").long()[:, 0]  # 8×8 blobs
        target[:, 0, 0] = IGNORE
        images = embeddings[target.clamp_max(num_classes - 1)].permute(0, 3, 1, 2)
        images = images + 0.5 * torch.randn(images.shape, generator=generator)
        outputs = module(backbone(images), target)
        losses = module.losses(outputs, target)
        total = F.cross_entropy(outputs["logits"], target, ignore_index=IGNORE) + sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert sum(history[-5:]) / 5 < 0.5 * sum(history[:5]) / 5

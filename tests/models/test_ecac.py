"""ECAC add-on (thesis ch. 4): memory bank, class weights, distillation terms, DDP sync, training."""

from __future__ import annotations

import math
import os
import tempfile

import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.engine.training import launch_local_ddp
from seg_pipelines.losses.ecac import (
    class_weights_from_frequencies,
    entropy_weighted_kl_loss,
    intra_class_cosine_similarity,
    intra_variance_loss,
    reweighted_cross_entropy,
)
from seg_pipelines.models.ecac import ExtendedContextAwareClassifier
from seg_pipelines.models.factory import create_addon

IGNORE = 255


def small_ecac(**cfg) -> ExtendedContextAwareClassifier:
    defaults = dict(in_channels=6, num_classes=4)
    defaults.update(cfg)
    torch.manual_seed(0)
    return create_addon("ecac", **defaults)


def make_batch(batch=2, channels=6, height=5, width=4, num_classes=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, channels, height, width, generator=generator)
    target = torch.randint(0, num_classes, (batch, height * 2, width * 2), generator=generator)
    target[:, :2, :3] = IGNORE
    return features, target


def test_shapes_and_inference_path():
    module = small_ecac()
    assert isinstance(module, ExtendedContextAwareClassifier) and module.computes_main_loss is True
    features, target = make_batch()
    outputs = module(features, target)
    for name in ("logits", "teacher_logits", "memory_logits", "coarse_logits"):
        assert outputs[name].shape == (2, 4, 5, 4), name
    losses = module.losses(outputs, target)
    assert set(losses) == {
        "loss_ce_main",
        "loss_ce_teacher",
        "loss_coarse",
        "loss_kl",
        "loss_intra_variance",
        "loss_memory",
    }
    assert all(torch.isfinite(v) for v in losses.values())
    assert int(module.iteration) == 1 and bool(module.memory_initialized.any())
    module.eval()
    bank = module.memory_bank.clone()
    with torch.no_grad():
        inference = module(features)
    assert set(inference) == {"logits", "coarse_logits"}
    torch.testing.assert_close(module.memory_bank, bank)
    assert int(module.iteration) == 1


def test_memory_bank_update_by_hand():
    momentum = 0.25
    module = small_ecac(in_channels=2, num_classes=3, memory_momentum=momentum)
    # one image, 1×4 pixels at feature resolution; labels [0, 0, 1, ignore]
    features = torch.tensor([[[[1.0, 3.0, 10.0, 100.0]], [[2.0, 4.0, 20.0, 200.0]]]])
    module(features, torch.tensor([[[0, 0, 1, IGNORE]]]))
    torch.testing.assert_close(module.memory_bank, torch.tensor([[2.0, 3.0], [10.0, 20.0], [0.0, 0.0]]))
    assert module.memory_initialized.tolist() == [True, True, False]  # first sight initialises (eq. 4.1)

    features = torch.tensor([[[[6.0, 5.0, 7.0, 0.0]], [[7.0, 1.0, 9.0, 0.0]]]])
    module(features, torch.tensor([[[0, 2, 0, IGNORE]]]))
    expected_class0 = (1 - momentum) * torch.tensor([2.0, 3.0]) + momentum * torch.tensor([6.5, 8.0])  # eq. 4.2
    torch.testing.assert_close(module.memory_bank[0], expected_class0)
    torch.testing.assert_close(module.memory_bank[1], torch.tensor([10.0, 20.0]))  # absent: kept
    torch.testing.assert_close(module.memory_bank[2], torch.tensor([5.0, 1.0]))  # first sight
    assert module.memory_initialized.tolist() == [True, True, True]


def test_cosine_update_strategy_weights_by_dissimilarity():
    module = small_ecac(in_channels=2, num_classes=1, memory_momentum=1.0, memory_update="cosine")
    module.memory_bank.copy_(torch.tensor([[1.0, 0.0]]))
    module.memory_initialized.fill_(True)
    features = torch.tensor([[[[2.0, 0.0]], [[0.0, 3.0]]]])  # cos with the bank: 1 and 0
    module(features, torch.zeros(1, 1, 2, dtype=torch.long))
    torch.testing.assert_close(module.memory_bank, torch.tensor([[0.0, 3.0]]))  # weights 0 and 1
    gt_mean = small_ecac(in_channels=2, num_classes=1, memory_momentum=1.0)
    gt_mean.memory_bank.copy_(torch.tensor([[1.0, 0.0]]))
    gt_mean.memory_initialized.fill_(True)
    gt_mean(features, torch.zeros(1, 1, 2, dtype=torch.long))
    torch.testing.assert_close(gt_mean.memory_bank, torch.tensor([[1.0, 1.5]]))


def test_class_weights_from_frequencies_eq_4_14():
    weights = class_weights_from_frequencies([0.5, 0.25, 0.25], rho=1.0)
    torch.testing.assert_close(weights, torch.tensor([0.2, 0.4, 0.4]))
    frequencies = torch.tensor([0.6, 0.05, 0.3, 0.01, 0.04])
    for rho in (0.3, 1.0, 2.0):
        weights = class_weights_from_frequencies(frequencies, rho)
        torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
        assert torch.argsort(weights).tolist() == torch.argsort(frequencies, descending=True).tolist()
    torch.testing.assert_close(class_weights_from_frequencies(frequencies, 0.0), torch.full((5,), 0.2))
    assert class_weights_from_frequencies([0.5, 0.0, 0.5], 1.0).tolist() == [0.5, 0.0, 0.5]


def test_reweighted_ce_matches_definition():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, 4, generator=generator)
    target = torch.randint(0, 3, (2, 4, 4), generator=generator)
    target[0, 0] = IGNORE
    weights = torch.tensor([0.1, 0.3, 0.6])
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    pixel_weights = torch.where(target == IGNORE, 0.0, weights[target.clamp_max(2)])
    expected = (pixel_weights * per_pixel).sum() / pixel_weights.sum()
    torch.testing.assert_close(reweighted_cross_entropy(logits, target, weights, IGNORE), expected)
    module = small_ecac(class_weights=[0.1, 0.2, 0.3, 0.4])
    features, target = make_batch()
    outputs = module(features, target)
    main = module.losses(outputs, target)["loss_ce_main"]
    plain = F.interpolate(outputs["logits"], size=target.shape[-2:], mode="bilinear", align_corners=False)
    plain_ce = F.cross_entropy(plain, target, ignore_index=IGNORE)
    assert abs(main.item() - plain_ce.item()) > 1e-4
    module.use_reweighting = False
    torch.testing.assert_close(module.losses(outputs, target)["loss_ce_main"], plain_ce)


def test_kl_and_intra_variance_are_zero_for_identical_student_and_teacher():
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 4, 5, 5, generator=generator)
    labels = torch.randint(0, 4, (2, 5, 5), generator=generator)
    labels[0, 0] = IGNORE
    for average in ("all_classes", "present_classes"):
        assert entropy_weighted_kl_loss(logits, logits.clone(), labels, IGNORE, average=average).abs().item() < 1e-6
    assert intra_variance_loss(logits, logits.clone(), labels, IGNORE).item() == 0.0
    other = torch.randn(2, 4, 5, 5, generator=generator)
    assert entropy_weighted_kl_loss(logits, other, labels, IGNORE, average="all_classes").item() > 1e-3
    assert intra_variance_loss(logits, other, labels, IGNORE).item() > 1e-4


def test_kl_matches_eq_4_12_loop():
    generator = torch.Generator().manual_seed(5)
    student, teacher = torch.randn(1, 3, 2, 3, generator=generator), torch.randn(1, 3, 2, 3, generator=generator)
    labels = torch.tensor([[[0, 0, 2], [2, IGNORE, 0]]])
    p_t = teacher.softmax(1).flatten(2)[0].t()  # (N, C)
    log_s = student.log_softmax(1).flatten(2)[0].t()
    flat = labels.flatten()
    per_class = []
    for k in (0, 2):  # classes present
        numerator = denominator = 0.0
        for i in range(6):
            if flat[i] != k:
                continue
            entropy = -(p_t[i] * p_t[i].log()).sum()
            numerator += entropy * (p_t[i] * (p_t[i].log() - log_s[i])).sum()
            denominator += entropy
        per_class.append(numerator / denominator)
    torch.testing.assert_close(
        entropy_weighted_kl_loss(student, teacher, labels, IGNORE, average="present_classes"), sum(per_class) / 2
    )
    # eq. 4.12's 1/C: the absent class 1 adds nothing to the sum, C = 3 divides it
    torch.testing.assert_close(
        entropy_weighted_kl_loss(student, teacher, labels, IGNORE, average="all_classes"), sum(per_class) / 3
    )


def test_eq_4_12_divides_by_all_classes_by_hand():
    """C = 4 classes, 2 present. Student uniform, so KL_i = ln 4 − H_i. Teacher p = (1/2, 1/4, 1/8, 1/8):
    H = 1.75 ln 2, KL = 0.25 ln 2; teacher uniform: H = 2 ln 2, KL = 0. Pixels: class 0 gets one of each,
    class 2 one skewed pixel, one pixel ignored. Class 0: (1.75 · 0.25) ln 2 / 3.75 = (7/60) ln 2; class 2:
    (15/60) ln 2; sum (11/30) ln 2. Eq. 4.12 (1/C): (11/120) ln 2; over the classes present: (11/60) ln 2."""
    skewed = torch.tensor([0.5, 0.25, 0.125, 0.125]).log()
    uniform = torch.zeros(4)
    teacher = torch.stack([skewed, uniform, skewed, uniform], dim=1).reshape(1, 4, 1, 4)  # (B, C, h, w)
    student = torch.zeros(1, 4, 1, 4)
    labels = torch.tensor([[[0, 0, 2, IGNORE]]])
    ln2 = math.log(2.0)
    thesis = entropy_weighted_kl_loss(student, teacher, labels, IGNORE, average="all_classes")
    present = entropy_weighted_kl_loss(student, teacher, labels, IGNORE, average="present_classes")
    assert thesis.item() == pytest.approx(11 / 120 * ln2, rel=1e-6)  # 0.063536
    assert present.item() == pytest.approx(11 / 60 * ln2, rel=1e-6)
    assert (present / thesis).item() == pytest.approx(4 / 2, rel=1e-6)  # C / |C_present|
    with pytest.raises(ValueError, match="unknown KL average"):
        entropy_weighted_kl_loss(student, teacher, labels, IGNORE, average="pixels")


def test_kl_average_option_scales_the_module_loss_by_c_over_present():
    features, target = make_batch(num_classes=4)
    target[target == 3] = 1  # classes 0-2 present of K = 4
    losses = {}
    for average in ("all_classes", "present_classes"):
        module = small_ecac(kl_average=average)
        losses[average] = module.losses(module(features, target), target)["loss_kl"]
    torch.testing.assert_close(losses["present_classes"], losses["all_classes"] * 4 / 3)
    with pytest.raises(ValueError, match="kl_average"):
        small_ecac(kl_average="pixels")


def test_intra_class_similarity_by_hand():
    logits = torch.tensor([[[[1.0, 3.0, 0.0]], [[0.0, 0.0, 1.0]]]])  # pixels (1,0), (3,0), (0,1)
    labels = torch.tensor([[[0, 0, 1]]])
    similarity, valid = intra_class_cosine_similarity(logits, labels)
    torch.testing.assert_close(similarity, torch.ones(1, 3))  # class 0 centre (2, 0) is colinear
    assert valid.all()


def test_memory_loss_is_zero_before_start_iteration():
    module = small_ecac(memory_loss_start_iter=1000)
    features, target = make_batch()
    module(features, target)  # initialise the bank so C_m is informative
    outputs = module(features, target)
    assert int(outputs["iteration"]) == 1
    assert module.losses(outputs, target)["loss_memory"].item() == 0.0
    assert module.losses(outputs, target, iteration=999)["loss_memory"].item() == 0.0
    assert module.losses(outputs, target, iteration=1000)["loss_memory"].item() > 0.1
    module.iteration.fill_(1000)
    assert module.losses(module(features, target), target)["loss_memory"].item() > 0.1


@pytest.mark.parametrize(
    "cfg, missing",
    [
        (dict(kl_weight=0.0), "loss_kl"),
        (dict(intra_variance_weight=0.0), "loss_intra_variance"),
        (dict(memory_loss_weight=0.0), "loss_memory"),
        (dict(teacher_ce_weight=0.0), "loss_ce_teacher"),
        (dict(coarse_loss_weight=0.0), "loss_coarse"),
    ],
)
def test_loss_switches(cfg, missing):
    module = small_ecac(**cfg)
    features, target = make_batch()
    assert missing not in module.losses(module(features, target), target)


def test_loss_weights_alpha_beta_scale_terms():
    features, target = make_batch()
    base, scaled = small_ecac(), small_ecac(kl_weight=3.0, intra_variance_weight=100.0)
    loss_base = base.losses(base(features, target), target)
    loss_scaled = scaled.losses(scaled(features, target), target)
    torch.testing.assert_close(loss_scaled["loss_kl"], 3.0 * loss_base["loss_kl"])
    torch.testing.assert_close(loss_scaled["loss_intra_variance"], 2.0 * loss_base["loss_intra_variance"])


def test_calibration_switch():
    features, target = make_batch()
    calibrated, plain = small_ecac(), small_ecac(use_calibration=False)
    assert not hasattr(plain, "student_scale")
    assert sum(p.numel() for p in calibrated.parameters()) - sum(p.numel() for p in plain.parameters()) == 16
    with torch.no_grad():
        calibrated.student_scale.copy_(torch.tensor([1.0, 2.0, 0.5, 1.0]))
        calibrated.student_shift.copy_(torch.tensor([0.0, 1.0, 0.0, -2.0]))
    out_c, out_p = calibrated.eval()(features), plain.eval()(features)  # same init seed
    expected = (
        out_p["logits"] * torch.tensor([1.0, 2.0, 0.5, 1.0])[:, None, None]
        + torch.tensor([0.0, 1.0, 0.0, -2.0])[:, None, None]
    )
    torch.testing.assert_close(out_c["logits"], expected)


def test_parameter_count_at_thesis_size():
    """Table 4.6 setting (512 channels, 150 classes); see the report for the comparison with +1.03M."""
    module = ExtendedContextAwareClassifier(512, 150)
    assert sum(p.numel() for p in module.parameters()) == 865_006
    assert module.memory_bank.numel() == 76_800


def _ddp_worker(rank: int, world_size: int, out_dir: str) -> None:
    module = small_ecac(in_channels=3, num_classes=4, memory_momentum=0.5)
    module.memory_bank.copy_(torch.arange(12.0).reshape(4, 3))
    module.memory_initialized.copy_(torch.tensor([True, True, False, False]))
    generator = torch.Generator().manual_seed(100 + rank)
    features = torch.randn(1, 3, 2, 3, generator=generator)
    labels = torch.tensor([[[0, 0, 2], [2, 2, IGNORE]]]) if rank == 0 else torch.tensor([[[0, 3, 3], [3, 3, 3]]])
    module.update_memory(features, labels)
    torch.save(
        {"bank": module.memory_bank, "init": module.memory_initialized, "features": features},
        os.path.join(out_dir, f"{rank}.pt"),
    )


def test_memory_bank_is_synchronised_across_ddp_ranks():
    with tempfile.TemporaryDirectory() as tmp:
        launch_local_ddp(_ddp_worker, 2, tmp)
        rank0, rank1 = (torch.load(os.path.join(tmp, f"{r}.pt"), weights_only=True) for r in (0, 1))
    torch.testing.assert_close(rank0["bank"], rank1["bank"], atol=0, rtol=0)
    assert rank0["init"].tolist() == rank1["init"].tolist() == [True, True, True, True]
    f0, f1 = rank0["features"][0].flatten(1).t(), rank1["features"][0].flatten(1).t()  # (6, 3)
    class0 = torch.stack([f0[0], f0[1], f1[0]]).mean(0)  # global mean over both ranks
    class2 = torch.stack([f0[2], f0[3], f0[4]]).mean(0)
    class3 = f1[1:].mean(0)
    initial = torch.arange(12.0).reshape(4, 3)
    expected = torch.stack([0.5 * initial[0] + 0.5 * class0, initial[1], class2, class3])
    torch.testing.assert_close(rank0["bank"], expected)


def test_tiny_training_loop_decreases_loss():
    torch.manual_seed(0)
    num_classes, channels = 4, 8
    embeddings = torch.randn(num_classes, channels) * 2
    backbone = torch.nn.Conv2d(channels, 16, 1)
    # C_m = M F (the dot product this test was written for): with the default 15·cos C_m, L_M is
    # already ≈ 0.01 at step 10 and β = 50 L_iv makes the CE terms drift up on this Adam toy.
    module = ExtendedContextAwareClassifier(
        16,
        num_classes,
        memory_loss_start_iter=10,
        memory_logit_temperature=None,
        class_weights=class_weights_from_frequencies([0.4, 0.3, 0.2, 0.1], 0.5),
    )
    optimizer = torch.optim.Adam([*backbone.parameters(), *module.parameters()], lr=1e-2)
    history = []
    for step in range(40):
        generator = torch.Generator().manual_seed(step)
        target = torch.randint(0, num_classes, (2, 1, 4, 4), generator=generator)
        target = F.interpolate(target.float(), scale_factor=2, mode="nearest").long()[:, 0]
        target[:, 0, 0] = IGNORE
        images = embeddings[target.clamp_max(num_classes - 1)].permute(0, 3, 1, 2)
        images = images + 0.5 * torch.randn(images.shape, generator=generator)
        outputs = module(backbone(images), target)
        losses = module.losses(outputs, target)
        total = sum(value for name, value in losses.items() if name != "loss_memory")
        total = total + losses["loss_memory"]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append((total.item(), losses["loss_ce_main"].item()))
    assert int(module.iteration) == 40 and bool(module.memory_initialized.all())
    first = sum(h[1] for h in history[:5]) / 5
    last = sum(h[1] for h in history[-5:]) / 5
    assert last < 0.5 * first
    assert sum(h[0] for h in history[-5:]) / 5 < sum(h[0] for h in history[10:15]) / 5  # after L_M switches on


def test_classifier_is_cosine_times_temperature_or_literal_dot_product():
    torch.manual_seed(0)
    centers, memory, pixels = torch.randn(2, 5, 16), torch.randn(5, 16), torch.randn(2, 16, 30)
    cosine = ExtendedContextAwareClassifier(16, 5, cosine_temperature=15.0)
    literal = ExtendedContextAwareClassifier(16, 5, cosine_temperature=None)
    literal.projector.load_state_dict(cosine.projector.state_dict())
    classifier = cosine.projector(torch.cat([centers, memory.expand(2, -1, -1)], dim=-1))
    torch.testing.assert_close(literal._classify(centers, memory, pixels), torch.bmm(classifier, pixels))  # eq. 4.5
    expected = 15.0 * torch.bmm(F.normalize(classifier, dim=-1), F.normalize(pixels, dim=1))
    torch.testing.assert_close(cosine._classify(centers, memory, pixels), expected)
    assert cosine._classify(centers, memory, 100 * pixels).abs().max() <= 15.0 + 1e-5


def test_soft_class_centers_both_softmax_axes():
    from seg_pipelines.models.ecac import soft_class_centers

    torch.manual_seed(0)
    logits, pixels = torch.randn(2, 3, 10), torch.randn(2, 4, 10)
    by_class = soft_class_centers(logits, pixels, "classes")
    probabilities = logits.softmax(dim=1)
    for b in range(2):
        for k in range(3):  # weighted mean of pixel features, weights = p(k | pixel)
            expected = (probabilities[b, k] * pixels[b]).sum(-1) / probabilities[b, k].sum()
            torch.testing.assert_close(by_class[b, k], expected)
    by_pixel = soft_class_centers(logits, pixels, "pixels")
    torch.testing.assert_close(by_pixel, torch.bmm(logits.softmax(-1), pixels.transpose(1, 2)))
    with pytest.raises(ValueError, match="student_center_softmax"):
        ExtendedContextAwareClassifier(4, 3, student_center_softmax="space")


def test_teacher_uses_memory_entry_for_classes_absent_from_the_image():
    module = small_ecac(in_channels=2, num_classes=3, use_calibration=False)
    module.memory_bank.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, -3.0]]))
    features = torch.tensor([[[[1.0, 3.0]], [[2.0, 4.0]]]])  # labels [0, 1]: class 2 absent
    outputs = module(features, torch.tensor([[[0, 1]]]))
    centers = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, -3.0]]])  # eq. 4.3; absent → M_2
    expected = module._classify(centers, torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, -3.0]]), features.flatten(2))
    torch.testing.assert_close(outputs["teacher_logits"].flatten(2), expected)
    zero = small_ecac(in_channels=2, num_classes=3, use_calibration=False, teacher_absent_centers="zero")
    zero.load_state_dict(module.state_dict())
    zero.memory_bank.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, -3.0]]))
    centers[0, 2] = 0.0
    expected = zero._classify(centers, zero.memory_bank, features.flatten(2))
    torch.testing.assert_close(zero(features, torch.tensor([[[0, 1]]]))["teacher_logits"].flatten(2), expected)


def test_memory_logits_cosine_or_dot_product():
    torch.manual_seed(0)
    memory, pixels = torch.randn(4, 6), torch.randn(2, 6, 9)
    cosine = small_ecac(memory_logit_temperature=15.0).memory_logits(memory, pixels)
    expected = 15.0 * torch.einsum("kd,bdn->bkn", F.normalize(memory, dim=1), F.normalize(pixels, dim=1))
    torch.testing.assert_close(cosine, expected)
    torch.testing.assert_close(
        small_ecac(memory_logit_temperature=None).memory_logits(memory, pixels),
        torch.einsum("kd,bdn->bkn", memory, pixels),
    )


def test_intra_variance_on_probabilities_and_without_gradient_into_features():
    features, target = make_batch()
    features.requires_grad_(True)
    module = small_ecac(kl_weight=0.0, teacher_ce_weight=0.0, coarse_loss_weight=0.0, memory_loss_weight=0.0)
    outputs = module(features, target)
    labels = F.interpolate(target[:, None].float(), size=(5, 4), mode="nearest").long()[:, 0]
    loss = module.losses(outputs, target)["loss_intra_variance"]
    expected = 50.0 * intra_variance_loss(
        outputs["logits"].softmax(1), outputs["teacher_logits"].softmax(1), labels, IGNORE
    )
    torch.testing.assert_close(loss, expected)  # student output rebuilt from detached F: same values
    (gradient,) = torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True)
    assert gradient is None  # L_iv trains the student classifier, not F
    assert module.projector[0].weight.grad is None
    loss.backward()
    assert module.projector[0].weight.grad.abs().sum().item() > 0.0
    through = small_ecac(intra_variance_detach_features=False, intra_variance_on="logits")
    outputs = through(features, target)
    assert "intra_variance_logits" not in outputs
    (gradient,) = torch.autograd.grad(through.losses(outputs, target)["loss_intra_variance"], features)
    assert gradient.abs().max().item() > 0.0
    with pytest.raises(ValueError, match="intra_variance_on"):
        small_ecac(intra_variance_on="features")


def _toy_student_after_sgd(steps: int = 60, **cfg) -> tuple[int, float, float, float]:
    """(#classes predicted, accuracy) of the student on a held-out toy batch after ``steps`` SGD steps
    (lr 0.01, momentum 0.9, as the training engine) of the full eq. 4.21 loss with β = 50, and the
    mean student CE of the first and last 5 steps. Pixels are noisy class embeddings through a
    small conv-BN-ReLU "backbone"; 5 classes of unequal frequency."""
    torch.manual_seed(0)
    num_classes, channels = 5, 8
    embeddings = torch.randn(num_classes, channels)
    backbone = torch.nn.Sequential(
        torch.nn.Conv2d(channels, 32, 3, padding=1),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 16, 1),
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
    )
    weights = class_weights_from_frequencies([0.4, 0.25, 0.15, 0.12, 0.08], 1.0)
    module = ExtendedContextAwareClassifier(16, num_classes, memory_loss_start_iter=20, class_weights=weights, **cfg)
    optimizer = torch.optim.SGD([*backbone.parameters(), *module.parameters()], lr=0.01, momentum=0.9)

    def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        target = torch.randint(0, num_classes, (4, 1, 4, 4), generator=generator)
        target = F.interpolate(target.float(), scale_factor=2, mode="nearest").long()[:, 0]
        images = embeddings[target].permute(0, 3, 1, 2) + 0.7 * torch.randn(4, channels, 8, 8, generator=generator)
        return images, target

    history = []
    for step in range(steps):
        images, target = batch(step)
        losses = module.losses(module(backbone(images), target), target)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        history.append(losses["loss_ce_main"].item())
    backbone.eval()
    module.eval()
    images, target = batch(10_000)
    with torch.no_grad():
        prediction = module(backbone(images))["logits"].argmax(1)
    return (
        prediction.unique().numel(),
        (prediction == target).float().mean().item(),
        sum(history[:5]) / 5,
        sum(history[-5:]) / 5,
    )


def test_student_does_not_collapse_with_beta_50():
    """Regression: with L_iv on raw logits and through F (the old behaviour) this toy run ended with
    the student predicting 2 of 5 classes at ~30 % accuracy and a rising student CE."""
    classes, accuracy, first, last = _toy_student_after_sgd()
    assert classes == 5
    assert accuracy > 0.7  # old behaviour: 0.27
    assert last < 0.3 * first


def test_area_resized_labels_are_cell_averages_of_the_one_hot_ground_truth():
    from seg_pipelines.models.ecac import resized_label_masks

    generator = torch.Generator().manual_seed(3)
    target = torch.randint(0, 3, (2, 8, 6), generator=generator)
    target[0, :3, :2] = IGNORE
    masks = resized_label_masks(target, (4, 3), 3, "area", IGNORE)
    assert masks.shape == (2, 12, 3)
    expected = torch.zeros(2, 4, 3, 3)
    for b in range(2):  # slow reference: average each 2×2 cell's one-hot rows, ignored pixels as zeros
        for i in range(4):
            for j in range(3):
                cell = target[b, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].flatten()
                for c in range(3):
                    expected[b, i, j, c] = (cell == c).float().mean()
    torch.testing.assert_close(masks, expected.reshape(2, 12, 3))
    nearest = resized_label_masks(target, (4, 3), 3, "nearest", IGNORE)
    assert set(nearest.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="label resize"):
        resized_label_masks(target, (4, 3), 3, "bilinear", IGNORE)


def test_area_label_resize_keeps_an_object_smaller_than_a_feature_cell():
    """A 1-pixel object of class 2 vanishes under nearest resizing but reaches its centre and the bank under area."""
    features = torch.tensor([[[[1.0, 3.0]], [[2.0, 4.0]]]])  # (1, 2, 1, 2): two feature cells
    target = torch.zeros(1, 2, 4, dtype=torch.long)
    target[0, :, 2:] = 1
    target[0, 1, 3] = 2  # one pixel of class 2 inside the second cell
    nearest = small_ecac(in_channels=2, num_classes=3, memory_momentum=1.0)
    nearest(features, target)
    assert nearest.memory_initialized.tolist() == [True, True, False]
    area = small_ecac(in_channels=2, num_classes=3, memory_momentum=1.0, label_resize="area", use_calibration=False)
    outputs = area(features, target)
    assert area.memory_initialized.tolist() == [True, True, True]
    # eq. 4.1 with memberships Y = [[1, 0, 0], [0, 3/4, 1/4]]: Z_c = Σ_i Y_ic f_i / Σ_i Y_ic
    torch.testing.assert_close(area.memory_bank, torch.tensor([[1.0, 2.0], [3.0, 4.0], [3.0, 4.0]]))
    # eq. 4.3 teacher centres with the same memberships (the bank is read before the update: zeros)
    centers = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [3.0, 4.0]]])
    expected = area._classify(centers, torch.zeros(3, 2), features.flatten(2))
    torch.testing.assert_close(outputs["teacher_logits"].flatten(2), expected)


def test_pixel_losses_at_label_resolution_upsample_the_logits():
    from seg_pipelines.losses.ecac import entropy_weighted_kl_loss, intra_variance_loss, memory_loss

    features, target = make_batch()
    module = small_ecac(pixel_losses_at="labels", memory_loss_start_iter=0, intra_variance_detach_features=False)
    outputs = module(features, target)
    losses = module.losses(outputs, target)

    def up(logits):
        return F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)

    student, teacher = up(outputs["logits"]), up(outputs["teacher_logits"]).detach()
    torch.testing.assert_close(
        losses["loss_kl"], entropy_weighted_kl_loss(student, teacher, target, IGNORE, average=module.kl_average)
    )
    torch.testing.assert_close(
        losses["loss_intra_variance"],
        50.0 * intra_variance_loss(student.softmax(1), teacher.softmax(1), target, IGNORE),
    )
    torch.testing.assert_close(losses["loss_memory"], memory_loss(up(outputs["memory_logits"]), target, IGNORE))
    features_level = small_ecac(memory_loss_start_iter=0, intra_variance_detach_features=False)
    assert not torch.isclose(
        features_level.losses(features_level(features, target), target)["loss_kl"], losses["loss_kl"]
    )
    with pytest.raises(ValueError, match="pixel_losses_at"):
        small_ecac(pixel_losses_at="input")

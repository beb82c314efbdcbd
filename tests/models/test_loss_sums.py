"""The loss sums of eq. 3.12 and eq. 4.21: the MMSeg auxiliary FCN head (0.4·CE) and ECAC's coarse CE
are switches; with both off the segmentor's total is exactly the thesis's sum (issue 14)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seg_pipelines.models.factory import create_model

IGNORE = 255


def _data(num_classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, 32, 32, generator=generator)
    target = torch.randint(0, num_classes, (2, 32, 32), generator=generator)
    target[:, :3] = IGNORE
    return images, target


def _fcn(addon, addon_cfg, auxiliary_head):
    torch.manual_seed(0)
    return create_model(
        "fcn",
        num_classes=5,
        backbone="resnet_tiny",
        channels=8,
        aux_channels=8,
        auxiliary_head=auxiliary_head,
        addon=addon,
        addon_cfg=addon_cfg,
    )


def test_eq_3_12_caa_sum_without_the_mmseg_auxiliary_head():
    images, target = _data()
    model = _fcn("caa", {"channels": 8, "affinity_channels": 4}, auxiliary_head=False)
    outputs = model(images, target)
    losses = model.losses(outputs, target)
    assert "aux_logits" not in outputs and set(losses) == {"loss_ce", "loss_aux", "loss_affinity", "loss"}
    # λ1 L_seg + λ2 L_aff + λ3 L_aux with λ = (1, 1, 0.4); L_aux is CAA's class-centre CE (eq. 3.10)
    seg = F.cross_entropy(outputs["logits"], target, ignore_index=IGNORE)
    coarse = F.interpolate(outputs["addon"]["coarse_logits"], size=(32, 32), mode="bilinear", align_corners=False)
    aux = F.cross_entropy(coarse, target, ignore_index=IGNORE)
    torch.testing.assert_close(losses["loss_ce"], seg)
    torch.testing.assert_close(losses["loss_aux"], 0.4 * aux)
    torch.testing.assert_close(losses["loss"], seg + losses["loss_affinity"] + 0.4 * aux)


def test_mmseg_auxiliary_head_is_a_switch():
    images, target = _data()
    on = _fcn(None, None, auxiliary_head=True)
    losses = on.losses(on(images, target), target)
    assert "loss_aux" in losses
    off = _fcn(None, None, auxiliary_head=False)
    assert off.auxiliary_head is None
    outputs = off(images, target)
    losses = off.losses(outputs, target)
    assert set(losses) == {"loss_ce", "loss"}
    torch.testing.assert_close(losses["loss"], F.cross_entropy(outputs["logits"], target, ignore_index=IGNORE))


def test_eq_4_21_ecac_sum_without_auxiliary_head_and_coarse_ce():
    images, target = _data(seed=1)
    cfg = {
        "coarse_loss_weight": 0.0,
        "memory_loss_start_iter": 0,
        "intra_variance_on": "logits",
        "intra_variance_detach_features": False,
        "memory_learning": "loss_and_momentum",
        "memory_logit_temperature": None,
        "class_weights": [0.1, 0.2, 0.3, 0.2, 0.2],
    }
    model = _fcn("ecac", cfg, auxiliary_head=False)
    model(images, target)  # the bank sees the classes once
    outputs = model(images, target)
    losses = model.losses(outputs, target)
    # L = L_rceS + L_rceT + L_M + α L_KL + β L_iv, nothing else
    terms = {"loss_ce_main", "loss_ce_teacher", "loss_memory", "loss_kl", "loss_intra_variance"}
    assert set(losses) == terms | {"loss"}
    torch.testing.assert_close(losses["loss"], sum(losses[k] for k in terms))
    with_coarse = _fcn("ecac", {**cfg, "coarse_loss_weight": 0.4}, auxiliary_head=True)
    assert {"loss_coarse", "loss_aux"} <= set(with_coarse.losses(with_coarse(images, target), target))

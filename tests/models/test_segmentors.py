"""Every closed-set segmentor through the shared checks of :mod:`tests.models.base`.

One class per decode head (plain: backbone + head + FCN auxiliary head), and head + add-on
(CAA, ECAC) for FCN and the heads the thesis pairs them with (UperNet for CAA, Tables 3.5-3.7;
DeepLabV3+ for ECAC, Tables 4.5-4.8). Models are tiny: ``resnet_tiny``, 16 head channels.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from seg_pipelines.models.factory import create_model
from seg_pipelines.models.heads import default_feature_strides
from seg_pipelines.models.segmentor import CLOSED_SET_MODELS
from tests.models.base import BaseSegmentationModelTester

TINY: dict[str, Any] = {"backbone": "resnet_tiny", "channels": 16, "aux_channels": 8}
HEAD_CFG: dict[str, dict[str, Any]] = {"isnet": {"transform_channels": 8}}
CAA_CFG: dict[str, Any] = {"channels": 8, "affinity_channels": 4, "chunk_size": 16}
# L_M from the first iteration (default: 1,000) so the memory loss is part of the checked graph.
ECAC_CFG: dict[str, Any] = {"memory_loss_start_iter": 0}

PLAIN_LOSSES = frozenset({"loss_ce", "loss_aux", "loss"})
# CAA adds its affinity BCE and its own auxiliary CE, renamed next to the auxiliary head's.
CAA_LOSSES = PLAIN_LOSSES | {"loss_affinity", "loss_addon_aux"}
# ECAC computes the main (re-weighted) CE itself: no segmentor "loss_ce".
ECAC_LOSSES = frozenset(
    {
        "loss_aux",
        "loss_ce_main",
        "loss_coarse",
        "loss_ce_teacher",
        "loss_kl",
        "loss_intra_variance",
        "loss_memory",
        "loss",
    }
)
# timm's ResNet zero-initialises the last BatchNorm of every residual branch (``zero_init_last``;
# MMSeg's ResNet does the same with ``zero_init_residual=True``): at random init the branch
# outputs 0 and everything before that BatchNorm gets an exactly zero gradient.
RESNET_ZERO_INIT_RESIDUAL = {
    r"backbone\.model\.layer\d+\.\d+\.(conv[123]\.weight|bn[12]\.(weight|bias))": (
        "residual branch behind a zero-initialised bn3 (timm zero_init_last)"
    ),
}
ADDON_BYPASSES_CLS_SEG = {
    r"decode_head\.conv_seg\.(weight|bias)": "the add-on replaces the head's classifier cls_seg",
}


def head_stride(name: str) -> int:
    """Stride of the head features: the finest level for the multi-level decoders, else the last."""
    strides = default_feature_strides(name)
    return strides[0] if name in ("upernet", "deeplabv3plus") else strides[-1]


class SegmentorTester(BaseSegmentationModelTester):
    """A registry model ``head`` (+ ``addon``) at tiny size."""

    head: str = ""
    addon: str | None = None
    addon_cfg: dict[str, Any] = {}
    params_with_zero_grad = RESNET_ZERO_INIT_RESIDUAL

    def build(self, num_classes: int) -> nn.Module:
        cfg = {**TINY, **HEAD_CFG.get(self.head, {})}
        if self.addon is not None:
            cfg.update(addon=self.addon, addon_cfg=self.addon_cfg)
        return create_model(self.head, num_classes=num_classes, **cfg)


class PlainTester(SegmentorTester):
    expected_loss_terms = PLAIN_LOSSES


class TestFCN(PlainTester):
    head = "fcn"
    head_feature_stride = head_stride("fcn")


class TestPSPNet(PlainTester):
    head = "pspnet"
    head_feature_stride = head_stride("pspnet")


class TestDeepLabV3(PlainTester):
    head = "deeplabv3"
    head_feature_stride = head_stride("deeplabv3")


class TestDeepLabV3Plus(PlainTester):
    head = "deeplabv3plus"
    head_feature_stride = head_stride("deeplabv3plus")


class TestUperNet(PlainTester):
    head = "upernet"
    head_feature_stride = head_stride("upernet")


class TestCCNet(PlainTester):
    head = "ccnet"
    head_feature_stride = head_stride("ccnet")
    params_with_zero_grad = {
        **RESNET_ZERO_INIT_RESIDUAL,
        r"decode_head\.cca\.(query|key|value)_conv\.(weight|bias)": (
            "criss-cross attention output is gamma * attention + x with gamma initialised at 0"
        ),
    }


class TestISNet(PlainTester):
    head = "isnet"
    head_feature_stride = head_stride("isnet")
    expected_loss_terms = PLAIN_LOSSES | {"loss_stage1_logits"}


class CAATester(SegmentorTester):
    addon = "caa"
    addon_cfg = CAA_CFG
    expected_loss_terms = CAA_LOSSES
    inference_keys = frozenset({"logits", "addon"})
    params_without_grad = ADDON_BYPASSES_CLS_SEG


class TestFCNWithCAA(CAATester):
    head = "fcn"
    head_feature_stride = head_stride("fcn")


class TestUperNetWithCAA(CAATester):
    head = "upernet"
    head_feature_stride = head_stride("upernet")


class ECACTester(SegmentorTester):
    addon = "ecac"
    addon_cfg = ECAC_CFG
    expected_loss_terms = ECAC_LOSSES
    inference_keys = frozenset({"logits", "addon"})
    params_without_grad = ADDON_BYPASSES_CLS_SEG
    # expected, not a bug: ECAC's memory bank (eq. 4.1-4.2) and iteration counter (L_M delay) move
    # in every training forward with labels, so the next training forward sees another bank
    training_state_buffers = {
        r"addon\.memory_bank": "eq. 4.2 momentum update from the batch's class means",
        r"addon\.memory_initialized": "classes seen for the first time (eq. 4.1)",
        r"addon\.iteration": "training-iteration counter for memory_loss_start_iter",
    }


class TestFCNWithECAC(ECACTester):
    head = "fcn"
    head_feature_stride = head_stride("fcn")


class TestDeepLabV3PlusWithECAC(ECACTester):
    head = "deeplabv3plus"
    head_feature_stride = head_stride("deeplabv3plus")


def test_every_closed_set_head_has_a_tester():
    tested = {cls.head for cls in PlainTester.__subclasses__()}
    assert tested == set(CLOSED_SET_MODELS)

"""Decode-head complexity vs thesis Tables 3.5 and 4.6 (ResNet-50, ADE20K, 150 classes).

The thesis profiles the decode head alone on the backbone output of a 512x512 image (2048x64x64,
output stride 8), without the auxiliary FCN head. Everything here runs on the meta device.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seg_pipelines.engine.profiling import (
    count_macs,
    count_parameters,
    feature_pyramid_shapes,
    profile_decode_head,
)
from seg_pipelines.models.heads import CrissCrossAttention, create_decode_head

# (params M, MACs G) as printed in the thesis ("FLOPs" there are multiply-accumulates, mmcv style).
THESIS = {
    "fcn": (11.87, 47.72),  # Table 4.6
    "pspnet": (23.14, 77.71),  # Tables 3.5 and 4.6
    "deeplabv3": (42.28, 168.91),  # Table 3.5
    "ccnet": (24.00, 99.65),  # Table 3.5
    "upernet": (40.58, 179.75),  # Table 3.5
    "deeplabv3plus": (17.74, 65.97),  # Table 4.6
}


@pytest.fixture(scope="module")
def profiles() -> dict[str, dict[str, int]]:
    return {name: profile_decode_head(name, num_classes=150, image_size=512) for name in THESIS}


@pytest.mark.parametrize("name", sorted(THESIS))
def test_parameters_match_thesis_within_one_percent(profiles, name):
    thesis_params = THESIS[name][0] * 1e6
    assert profiles[name]["params"] == pytest.approx(thesis_params, rel=0.01)


@pytest.mark.parametrize("name", ["fcn", "pspnet", "deeplabv3", "ccnet"])
def test_macs_match_thesis_within_three_percent(profiles, name):
    thesis_macs = THESIS[name][1] * 1e9
    assert profiles[name]["macs"] == pytest.approx(thesis_macs, rel=0.03)


def test_fcn_is_two_3x3_convs_without_concat_input(profiles):
    conv_weights = 2048 * 512 * 9 + 512 * 512 * 9
    batch_norms = 2 * 2 * 512
    classifier = 512 * 150 + 150
    assert profiles["fcn"]["params"] == conv_weights + batch_norms + classifier
    assert profiles["fcn"]["macs"] == (conv_weights + 512 * 150) * 64 * 64


def test_upernet_macs_at_512_pyramid_are_pinned(profiles):
    """Strides 4/8/16/32 of a 512x512 image: 215.25G, 19.8% above the thesis' 179.75G (the gap is
    reported, not asserted away). The 3x3 fpn_bottleneck 2048->512 at 128x128 alone is 154.6G."""
    assert profiles["upernet"]["macs"] == pytest.approx(215.25e9, rel=1e-3)
    fpn_bottleneck = 4 * 512 * 512 * 9 * 128 * 128
    assert fpn_bottleneck == pytest.approx(154.6e9, rel=1e-3)


def test_deeplabv3plus_thesis_macs_equal_aspp_plus_skip_projection():
    """The thesis' 65.97G equals the stride-8 part (ASPP + bottleneck) plus the 48-channel skip
    projection (65.93G, -0.06%); the full head adds the stride-4 separable decoder (76.34G)."""
    with torch.device("meta"):
        head = create_decode_head("deeplabv3plus", num_classes=150).eval()
    feats = [torch.empty(shape, device="meta") for shape in feature_pyramid_shapes(512)]

    class StrideEightPart(nn.Module):
        def forward(self, levels):
            return head.bottleneck(head.aspp(levels[-1])), head.c1_bottleneck(levels[0])

    assert count_macs(StrideEightPart(), feats) == pytest.approx(65.97e9, rel=0.01)
    assert count_macs(head, feats) == pytest.approx(76.34e9, rel=1e-3)


def test_count_macs_counts_convolutions_linear_and_einsum():
    conv = nn.Conv2d(8, 4, 3, padding=2, dilation=2, groups=2)
    assert count_macs(conv, torch.empty(1, 8, 10, 12)) == 4 * (8 // 2) * 9 * 10 * 12
    linear = nn.Linear(16, 5)
    assert count_macs(linear, torch.empty(3, 16)) == 3 * 16 * 5
    assert count_parameters(linear) == 16 * 5 + 5

    class Einsum(nn.Module):
        def forward(self, a, b):
            return torch.einsum("bchw,bciw->bhwi", a, b)

    # one dot product of length c per (b, h, w, i)
    assert count_macs(Einsum(), torch.empty(2, 6, 5, 7), torch.empty(2, 6, 5, 7)) == 2 * 5 * 7 * 5 * 6


def test_criss_cross_attention_macs_are_counted():
    x = torch.empty(1, 64, 9, 11, device="meta")
    with torch.device("meta"):
        cca = CrissCrossAttention(64).eval()
    projections = (64 * 8 * 2 + 64 * 64) * 9 * 11
    attention = 9 * 11 * (9 + 11) * 8 + 9 * 11 * (9 + 11) * 64  # energies + weighted values
    assert count_macs(cca, x) == projections + attention

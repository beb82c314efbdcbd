"""Backbones: MMSeg ResNetV1c-D8 structure, feature shapes, local pretrained loading."""

from __future__ import annotations

import pytest
import torch

from seg_pipelines.engine.profiling import count_parameters
from seg_pipelines.models.backbones import PretrainedWeightsError, create_backbone


def test_resnet50c_is_mmseg_resnet_v1c_d8():
    with torch.device("meta"):
        backbone = create_backbone("resnet50c", output_stride=8)
    resnet = backbone.model
    stem_convs = [m for m in resnet.conv1 if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in stem_convs] == [
        (3, 32, (3, 3), (2, 2)),
        (32, 32, (3, 3), (1, 1)),
        (32, 64, (3, 3), (1, 1)),
    ]
    # contract_dilation: first block of a dilated stage uses the previous stage's dilation
    assert [b.conv2.dilation[0] for b in resnet.layer3] == [1] + [2] * 5
    assert [b.conv2.dilation[0] for b in resnet.layer4] == [2, 4, 4]
    assert resnet.layer3[0].conv2.stride == (1, 1) and resnet.layer4[0].conv2.stride == (1, 1)
    assert backbone.out_channels == [256, 512, 1024, 2048]
    assert backbone.strides == [4, 8, 8, 8]
    assert count_parameters(backbone) == 23_527_264  # MMSeg ResNetV1c-50 without fc


def test_resnet101c_depth():
    with torch.device("meta"):
        backbone = create_backbone("resnet101c")
    assert len(backbone.model.layer3) == 23
    assert backbone.out_channels == [256, 512, 1024, 2048]


@pytest.mark.parametrize(
    ("output_stride", "expected_sizes"),
    [(8, [(17, 20), (9, 10), (9, 10), (9, 10)]), (32, [(17, 20), (9, 10), (5, 5), (3, 3)])],
)
def test_tiny_resnet_feature_shapes(output_stride, expected_sizes):
    backbone = create_backbone("resnet_tiny", output_stride=output_stride)
    feats = backbone(torch.randn(1, 3, 65, 79))
    assert [f.shape[1] for f in feats] == backbone.out_channels == [32, 64, 128, 256]
    assert [tuple(f.shape[-2:]) for f in feats] == expected_sizes


@pytest.mark.parametrize("name", ["swin_tiny_test", "vit_tiny_test"])
def test_transformer_backbones_give_nchw_pyramid(name):
    backbone = create_backbone(name)
    feats = backbone(torch.randn(2, 3, 65, 79))
    assert backbone.strides == [4, 8, 16, 32]
    assert [f.shape[1] for f in feats] == backbone.out_channels
    for f, stride in zip(feats, backbone.strides):
        assert f.shape[0] == 2
        assert abs(f.shape[-2] - 65 / stride) <= 2 and abs(f.shape[-1] - 79 / stride) <= 2
        assert torch.isfinite(f).all()


def test_pretrained_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    source = create_backbone("resnet_tiny")
    path = tmp_path / "tiny.pth"
    state = {f"{k}": v for k, v in source.model.state_dict().items()}
    state["fc.weight"] = torch.zeros(10, 256)  # classifier keys are ignored
    torch.save({"state_dict": state}, path)
    torch.manual_seed(1)
    loaded = create_backbone("resnet_tiny", pretrained_path=path).eval()
    source.eval()
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(source(x), loaded(x)):
        torch.testing.assert_close(a, b)


def test_openmmlab_resnet_v1c_key_layout_is_converted(tmp_path):
    source = create_backbone("resnet_tiny")
    timm_to_mmseg = {
        "conv1.0.": "stem.0.",
        "conv1.1.": "stem.1.",
        "conv1.3.": "stem.3.",
        "conv1.4.": "stem.4.",
        "conv1.6.": "stem.6.",
        "bn1.": "stem.7.",
    }
    state = {}
    for key, value in source.model.state_dict().items():
        for old, new in timm_to_mmseg.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        state["backbone." + key] = value.clone()
    path = tmp_path / "mmseg.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    loaded = create_backbone("resnet_tiny", pretrained_path=path)
    torch.testing.assert_close(loaded.model.bn1.running_var, source.model.bn1.running_var)
    torch.testing.assert_close(loaded.model.conv1[0].weight, source.model.conv1[0].weight)


def test_missing_weights_file_names_the_path(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="not found: .*absent.pth"):
        create_backbone("resnet_tiny", pretrained_path=tmp_path / "absent.pth")


def test_wrong_architecture_reports_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(create_backbone("resnet_tiny", layers=(1, 2, 1, 1)).model.state_dict(), path)
    with pytest.raises(PretrainedWeightsError, match=r"0 missing keys .*unexpected keys \['layer2\.1"):
        create_backbone("resnet_tiny", pretrained_path=path)
    torch.save(create_backbone("resnet_tiny", stem_width=16).model.state_dict(), path)
    with pytest.raises(PretrainedWeightsError, match="shape mismatches"):
        create_backbone("resnet_tiny", pretrained_path=path)

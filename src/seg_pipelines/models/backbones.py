"""Backbones for the closed-set segmentors, built with timm and returning NCHW feature levels.

    backbone = create_backbone("resnet50c", output_stride=8)          # MMSeg's ResNetV1c-D8
    feats = backbone(images)  # 4 levels, channels backbone.out_channels, strides backbone.strides

``resnet50c`` / ``resnet101c`` are timm's deep-stem ResNets (three 3x3 stem convs 3->32->32->64),
the V1c variant MMSegmentation uses. With ``output_stride=8`` stages 3 and 4 keep stride 8 and use
dilations 2 and 4, the first block of each dilated stage using the previous stage's dilation
(MMSeg's ``contract_dilation=True``). Transformers (Swin, ViT) are wrapped through timm's
``forward_intermediates``; ViT's single-stride levels are resized to strides 4/8/16/32 (a
parameter-free stand-in for MMSeg's ``MultiLevelNeck``) so UperNet can consume them.

Weights are random unless ``pretrained_path`` names a local checkpoint (timm or
open-mmlab/MMSeg key layout); nothing is ever downloaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import timm
import torch.nn.functional as F
from torch import Tensor, nn

from seg_pipelines.models.checkpoints import CheckpointError, mmseg_resnet_key, read_checkpoint

# Small presets for CPU tests: (timm architecture, overrides).
BACKBONE_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet_tiny": ("resnet50c", {"layers": (1, 1, 1, 1), "channels": (8, 16, 32, 64), "stem_width": 8}),
    "resnet18c": ("resnet18", {"stem_type": "deep", "stem_width": 32}),
    "swin_tiny_test": (
        "swin_tiny_patch4_window7_224",
        {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 2, 4), "window_size": 4},
    ),
    "vit_tiny_test": ("vit_tiny_patch16_224", {"embed_dim": 32, "depth": 4, "num_heads": 2}),
}

# Checkpoint keys of classifier heads, ignored when loading backbone weights.
_CLASSIFIER_KEY = re.compile(r"^(fc|head|classifier|head\.fc)\.")


class PretrainedWeightsError(RuntimeError):
    """A checkpoint file is missing or does not fit the architecture."""


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Tensors of a local checkpoint (``weights_only=True``), unwrapping ``state_dict``/``model``."""
    if not os.path.isfile(path):
        raise PretrainedWeightsError(f"pretrained weights file not found: {path}")
    try:
        checkpoint: Any = read_checkpoint(path, "pretrained weights")
    except CheckpointError as error:
        raise PretrainedWeightsError(str(error)) from error
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, dict):
        raise PretrainedWeightsError(f"{path}: expected a state dict, got {type(checkpoint).__name__}")
    return {mmseg_resnet_key(k): v for k, v in checkpoint.items() if isinstance(v, Tensor)}


def load_backbone_weights(model: nn.Module, path: str | os.PathLike, arch: str) -> None:
    """Load ``path`` into ``model`` strictly (classifier keys aside); raise naming what is wrong."""
    state = {k: v for k, v in read_state_dict(path).items() if not _CLASSIFIER_KEY.match(k)}
    own = {k: v for k, v in model.state_dict().items() if not _CLASSIFIER_KEY.match(k)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise PretrainedWeightsError(
            f"{path} does not match architecture {arch!r}: "
            f"{len(missing)} missing keys {missing[:8]}, {len(unexpected)} unexpected keys {unexpected[:8]}, "
            f"{len(mismatched)} shape mismatches {mismatched[:8]}"
        )
    model.load_state_dict(state, strict=False)


class TimmBackbone(nn.Module):
    """A timm model returning 4 NCHW levels through ``forward_intermediates``.

    Attributes:
        out_channels: channels of each level.
        strides: stride of each level w.r.t. the input.
    """

    def __init__(
        self,
        arch: str,
        *,
        output_stride: int = 8,
        out_indices: Sequence[int] | None = None,
        pretrained_path: str | os.PathLike | None = None,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        self.arch = arch
        is_resnet = arch.startswith("resnet")
        kwargs = dict(timm_kwargs)
        if is_resnet:
            kwargs["output_stride"] = output_stride
        elif arch.startswith("swin"):
            kwargs.setdefault("strict_img_size", False)
        elif arch.startswith("vit"):
            kwargs.setdefault("dynamic_img_size", True)
            kwargs.setdefault("dynamic_img_pad", True)
        model = timm.create_model(arch, pretrained=False, **kwargs)
        if pretrained_path is not None:
            load_backbone_weights(model, pretrained_path, arch)
        if out_indices is None:
            out_indices = [1, 2, 3, 4] if is_resnet else [len(model.feature_info) - 4 + i for i in range(4)]
            if arch.startswith("vit"):  # evenly spaced blocks
                depth = len(model.blocks)
                out_indices = [depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1, depth - 1]
        self.out_indices = list(out_indices)
        model.prune_intermediate_layers(self.out_indices, prune_norm=not arch.startswith("vit"), prune_head=True)
        self.model = model
        self.kind = "resnet" if is_resnet else ("swin" if arch.startswith("swin") else "vit")
        info = model.feature_info
        if self.kind == "vit":
            self.out_channels = [info[i]["num_chs"] for i in self.out_indices]
            self.strides = [4, 8, 16, 32]
        else:
            self.out_channels = [info[i]["num_chs"] for i in self.out_indices]
            self.strides = [
                min(info[i]["reduction"], max(output_stride, 4)) if is_resnet else info[i]["reduction"]
                for i in self.out_indices
            ]
        self.pad_multiple = 32 if self.kind == "swin" else 1

    def forward(self, images: Tensor) -> list[Tensor]:
        height, width = images.shape[-2:]
        if self.pad_multiple > 1:  # Swin needs sides divisible by patch size x merges
            pad_h, pad_w = -height % self.pad_multiple, -width % self.pad_multiple
            images = F.pad(images, (0, pad_w, 0, pad_h))
        feats = self.model.forward_intermediates(images, indices=self.out_indices, intermediates_only=True)
        if self.kind == "vit":  # one stride-16 grid -> strides 4, 8, 16, 32
            feats = [
                F.interpolate(feats[0], scale_factor=4, mode="bilinear", align_corners=False),
                F.interpolate(feats[1], scale_factor=2, mode="bilinear", align_corners=False),
                feats[2],
                F.max_pool2d(feats[3], kernel_size=2, ceil_mode=True),
            ]
        if self.kind != "resnet":  # drop the cells that only cover padding
            feats = [f[..., : -(-height // s), : -(-width // s)] for f, s in zip(feats, self.strides)]
        return feats


def create_backbone(
    name: str = "resnet50c",
    *,
    output_stride: int = 8,
    pretrained_path: str | os.PathLike | None = None,
    **timm_kwargs: Any,
) -> TimmBackbone:
    """Build backbone ``name`` (a timm architecture or a :data:`BACKBONE_PRESETS` key).

    Args:
        name: e.g. ``resnet50c``, ``resnet101c``, ``swin_tiny_patch4_window7_224``, ``resnet_tiny``.
        output_stride: 8 (dilated, the D8 models) or 32 (plain, UperNet); ResNets only.
        pretrained_path: local ImageNet checkpoint; random init when ``None``.
        **timm_kwargs: forwarded to ``timm.create_model`` (e.g. ``channels``, ``layers``).
    """
    arch, preset = BACKBONE_PRESETS.get(name, (name, {}))
    return TimmBackbone(arch, output_stride=output_stride, pretrained_path=pretrained_path, **{**preset, **timm_kwargs})

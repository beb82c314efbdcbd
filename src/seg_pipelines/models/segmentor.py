"""Encoder-decoder segmentor (MMSegmentation's ``EncoderDecoder``) and the closed-set builders.

    model = create_model("pspnet", num_classes=150, backbone="resnet50c")
    outputs = model(images)                  # {"logits": (B, K, H, W), ...}
    losses = model.losses(outputs, target)   # {"loss_ce", "loss_aux", ..., "loss"}

An add-on (CAA, ECAC) replaces the decode head's classifier ``cls_seg``. Its API:

* ``addon(features, target) -> dict`` with at least ``"logits"`` at feature resolution
  ``(B, num_classes, h, w)``; ``features`` is the head output ``(B, head.channels, h, w)`` and
  ``target`` the full-resolution label map ``(B, H, W)`` (or ``None`` at inference); the add-on
  resizes it itself.
* ``addon.losses(outputs, target) -> dict[str, Tensor]`` of already-weighted extra losses, where
  ``outputs`` is the add-on's own dict. They are added to the segmentor's CE on the upsampled logits;
  an add-on whose losses already contain the main classification loss (e.g. a re-weighted CE) sets
  ``computes_main_loss = True`` and the segmentor's own CE is then skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg_pipelines.losses.cross_entropy import upsampled_cross_entropy
from seg_pipelines.models import caa, ecac  # noqa: F401  (register the add-ons built by name below)
from seg_pipelines.models.backbones import create_backbone
from seg_pipelines.models.heads import (
    DECODE_HEADS,
    BaseDecodeHead,
    FCNHead,
    default_output_stride,
    resize,
)
from seg_pipelines.models.registry import build_addon, register_model


class EncoderDecoder(nn.Module):
    """Backbone -> decode head (-> add-on) with an optional auxiliary head.

    Args:
        backbone: module mapping images to a list of feature levels.
        decode_head: a :class:`BaseDecodeHead`.
        auxiliary_head: optional head on an intermediate level (MMSeg: FCN on stage 3), used in
            training or whenever a target is passed.
        addon: optional module replacing ``decode_head.cls_seg`` (see the module docstring).
        aux_loss_weight: weight of the auxiliary CE (MMSeg: 0.4).
        ignore_index: label ignored by the losses.
        align_corners: ``align_corners`` of the final upsampling.
    """

    def __init__(
        self,
        backbone: nn.Module,
        decode_head: BaseDecodeHead,
        auxiliary_head: BaseDecodeHead | None = None,
        addon: nn.Module | None = None,
        *,
        aux_loss_weight: float = 0.4,
        ignore_index: int = 255,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head
        self.auxiliary_head = auxiliary_head
        self.addon = addon
        if addon is not None:  # its classifier replaces conv_seg: kept (checkpoint keys) but frozen, or
            self.decode_head.conv_seg.requires_grad_(False)  # DDP stops at a parameter that gets no grad
        self.aux_loss_weight = aux_loss_weight
        self.ignore_index = ignore_index
        self.align_corners = align_corners

    @property
    def num_classes(self) -> int:
        return self.decode_head.num_classes

    def extract_features(self, images: Tensor) -> list[Tensor]:
        return self.backbone(images)

    def _upsample(self, logits: Tensor, size: torch.Size | None) -> Tensor:
        return logits if size is None else resize(logits, size, self.align_corners)

    # ``forward(..., upsample=False)`` is understood: the training loop's loss (engine.training.default_loss)
    # then hands head-resolution logits to :meth:`losses`, which upsamples them inside the fused CE
    upsamples_in_loss = True

    def forward(self, images: Tensor, target: Tensor | None = None, *, upsample: bool = True) -> dict[str, Any]:
        """``logits`` at input size and the add-on's own dict under ``addon``; in training (or
        with a target) also ``aux_logits`` and extra head logits (ISNet ``stage1_logits``),
        upsampled to input size. ``upsample=False`` leaves every logit map at the resolution its
        head produced: :meth:`losses` gives the same loss (the CE of the upsampled map, fused)."""
        size = images.shape[-2:] if upsample else None
        feats = self.extract_features(images)
        head_features, extras = self.decode_head.forward_features_with_extras(feats)
        outputs: dict[str, Any] = {}
        if self.addon is not None:
            addon_outputs = self.addon(head_features, target)
            outputs["addon"] = addon_outputs
            logits = addon_outputs["logits"]
        else:
            logits = self.decode_head.cls_seg(head_features)
        outputs["logits"] = self._upsample(logits, size)
        if not (self.training or target is not None):  # inference: the final logits only
            return outputs
        for name, extra_logits in extras.items():
            outputs[name] = self._upsample(extra_logits, size)
        if self.auxiliary_head is not None:
            outputs["aux_logits"] = self._upsample(self.auxiliary_head(feats), size)
        return outputs

    def cross_entropy(self, logits: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
        """Pixel-mean CE over non-ignored pixels (0 when every pixel is ignored) of ``logits``
        bilinearly upsampled to the target's size (MMSeg's ``resize`` then CE); logits smaller than
        the target are upsampled inside the loss (:func:`~seg_pipelines.losses.cross_entropy.upsampled_cross_entropy`:
        the same value and gradient without the full-resolution tensors)."""
        if not bool((target != self.ignore_index).any()):
            return logits.sum() * 0.0
        if tuple(logits.shape[-2:]) != tuple(target.shape[-2:]):
            return upsampled_cross_entropy(logits, target, class_weights, self.ignore_index, self.align_corners)
        return F.cross_entropy(logits, target.long(), weight=class_weights, ignore_index=self.ignore_index)

    def losses(
        self, outputs: Mapping[str, Any], target: Tensor, class_weights: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Weighted loss terms and their sum ``loss`` (sum only ``loss``, not every value).

        ``loss_ce``: CE on ``logits``; ``loss_aux``: ``aux_loss_weight`` x CE on ``aux_logits``;
        ``loss_<extra>``: extra head logits times their weight; then the add-on's losses.
        """
        terms: dict[str, Tensor] = {}
        if self.addon is None or not getattr(self.addon, "computes_main_loss", False):
            terms["loss_ce"] = self.cross_entropy(outputs["logits"], target, class_weights)
        if "aux_logits" in outputs:
            terms["loss_aux"] = self.aux_loss_weight * self.cross_entropy(outputs["aux_logits"], target)
        for name, weight in self.decode_head.extra_loss_weights.items():
            if name in outputs:
                terms[f"loss_{name}"] = weight * self.cross_entropy(outputs[name], target)
        if self.addon is not None:
            for name, value in self.addon.losses(outputs["addon"], target).items():
                key = name if name.startswith("loss") else f"loss_{name}"
                if key in terms:  # e.g. CAA's own eq. 3.10 "loss_aux" next to the auxiliary head's
                    key = "loss_addon_" + key.removeprefix("loss_")
                if key in terms:
                    raise KeyError(f"add-on loss {name!r} collides with a segmentor loss")
                terms[key] = value
        terms["loss"] = torch.stack(list(terms.values())).sum()
        return terms


def build_segmentor(
    head_name: str,
    *,
    num_classes: int,
    backbone: str = "resnet50c",
    pretrained_path: str | os.PathLike | None = None,
    output_stride: int | None = None,
    backbone_cfg: Mapping[str, Any] | None = None,
    channels: int = 512,
    dropout_ratio: float = 0.1,
    auxiliary_head: bool = True,
    aux_channels: int = 256,
    aux_in_index: int = 2,
    aux_loss_weight: float = 0.4,
    addon: str | nn.Module | None = None,
    addon_cfg: Mapping[str, Any] | None = None,
    ignore_index: int = 255,
    **head_cfg: Any,
) -> EncoderDecoder:
    """Backbone + decode head ``head_name`` (+ FCN auxiliary head, + add-on), MMSeg R50-D8 defaults.

    Args:
        head_name: key of :data:`DECODE_HEADS`.
        num_classes: number of classes.
        backbone: timm architecture or preset (``resnet_tiny`` for tests).
        pretrained_path: local ImageNet checkpoint of the backbone (random init when ``None``).
        output_stride: backbone output stride; default :func:`~seg_pipelines.models.heads.default_output_stride`
            (32 for UperNet, whose MMSeg R50 is not dilated, 8 otherwise).
        backbone_cfg: extra ``timm.create_model`` arguments.
        channels: decode head width (512).
        dropout_ratio: dropout before the classifiers (0.1).
        auxiliary_head: add MMSeg's FCN auxiliary head (1 conv, ``aux_channels``) on ``aux_in_index``.
        aux_loss_weight: weight of its CE (0.4).
        addon: add-on name (``caa``, ``ecac``) or module replacing ``cls_seg``.
        addon_cfg: add-on keyword arguments (``in_channels``/``num_classes`` are filled in).
        ignore_index: label ignored by the losses.
        **head_cfg: decode head arguments (e.g. ``pool_scales``, ``dilations``, ``concat_input``).
    """
    if head_name not in DECODE_HEADS:
        raise KeyError(f"unknown decode head {head_name!r}; known: {sorted(DECODE_HEADS)}")
    if output_stride is None:
        output_stride = default_output_stride(head_name)
    encoder = create_backbone(
        backbone, output_stride=output_stride, pretrained_path=pretrained_path, **dict(backbone_cfg or {})
    )
    levels = encoder.out_channels
    decode_head = DECODE_HEADS[head_name](levels, channels, num_classes, dropout_ratio=dropout_ratio, **head_cfg)
    aux = None
    if auxiliary_head:
        aux = FCNHead(
            levels,
            aux_channels,
            num_classes,
            num_convs=1,
            concat_input=False,
            in_index=aux_in_index,
            dropout_ratio=dropout_ratio,
        )
    if isinstance(addon, str):
        addon = build_addon(addon, in_channels=channels, num_classes=num_classes, **dict(addon_cfg or {}))
    return EncoderDecoder(encoder, decode_head, aux, addon, aux_loss_weight=aux_loss_weight, ignore_index=ignore_index)


def _register(head_name: str) -> None:
    def builder(**cfg: Any) -> EncoderDecoder:
        return build_segmentor(head_name, **cfg)

    builder.__name__ = head_name
    builder.__doc__ = f"{DECODE_HEADS[head_name].__name__} segmentor; arguments of :func:`build_segmentor`."
    register_model(head_name)(builder)


CLOSED_SET_MODELS = tuple(DECODE_HEADS)  # one registered segmentor per decode head
for _name in CLOSED_SET_MODELS:
    _register(_name)

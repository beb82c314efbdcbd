"""Closed-set decode heads (MMSegmentation R50-D8 equivalents) and a builder by name."""

from __future__ import annotations

from typing import Sequence

from .aspp import ASPPHead
from .ccnet import CCHead, CrissCrossAttention
from .common import BaseDecodeHead, ConvModule, DepthwiseSeparableConvModule, resize
from .fcn import FCNHead
from .isnet import ISNetHead
from .psp import PSPHead
from .sep_aspp import DepthwiseSeparableASPPHead
from .uper import UPerHead

# model name -> decode head class (the names the segmentor registry uses).
DECODE_HEADS: dict[str, type[BaseDecodeHead]] = {
    "fcn": FCNHead,
    "pspnet": PSPHead,
    "deeplabv3": ASPPHead,
    "deeplabv3plus": DepthwiseSeparableASPPHead,
    "upernet": UPerHead,
    "ccnet": CCHead,
    "isnet": ISNetHead,
}


def create_decode_head(
    name: str,
    *,
    num_classes: int,
    in_channels: Sequence[int] = (256, 512, 1024, 2048),
    channels: int = 512,
    **head_cfg,
) -> BaseDecodeHead:
    """Build the decode head of model ``name`` alone (e.g. for profiling), MMSeg R50-D8 defaults."""
    if name not in DECODE_HEADS:
        raise KeyError(f"unknown decode head {name!r}; known: {sorted(DECODE_HEADS)}")
    return DECODE_HEADS[name](in_channels, channels, num_classes, **head_cfg)


__all__ = [
    "ASPPHead",
    "BaseDecodeHead",
    "CCHead",
    "ConvModule",
    "CrissCrossAttention",
    "DECODE_HEADS",
    "DepthwiseSeparableASPPHead",
    "DepthwiseSeparableConvModule",
    "FCNHead",
    "ISNetHead",
    "PSPHead",
    "UPerHead",
    "create_decode_head",
    "resize",
]

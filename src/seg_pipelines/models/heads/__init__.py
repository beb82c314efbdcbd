"""Closed-set decode heads (MMSegmentation R50-D8 equivalents) and a builder by name."""

from __future__ import annotations

from collections.abc import Sequence

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

# model name -> display name (table rows, logs, run names): the one list of head names.
HEAD_DISPLAY_NAMES: dict[str, str] = {
    "fcn": "FCN",
    "pspnet": "PSPNet",
    "deeplabv3": "DeepLabV3",
    "deeplabv3plus": "DeepLabV3plus",
    "upernet": "UperNet",
    "ccnet": "CCNet",
    "isnet": "ISNet",
}
# Thesis spelling: the heads the thesis's tables spell their own way; tables that reproduce a
# thesis table (and match its printed row labels) use these. "Deeplabv3": Tables 3.5-3.7;
# "DeeplabV3plus": Tables 4.5-4.8.
THESIS_HEAD_SPELLING: dict[str, str] = {"deeplabv3": "Deeplabv3", "deeplabv3plus": "DeeplabV3plus"}


def head_display_name(name: str, *, thesis: bool = False) -> str:
    """Display name of head ``name`` (an unknown name is returned as is); ``thesis=True``: as the
    thesis's tables spell it (:data:`THESIS_HEAD_SPELLING`)."""
    if thesis and name in THESIS_HEAD_SPELLING:
        return THESIS_HEAD_SPELLING[name]
    return HEAD_DISPLAY_NAMES.get(name, name)


# Backbone output stride per head: MMSeg's UperNet R50 uses a plain (non-dilated) ResNet, output
# stride 32; every other head the dilated "D8" ResNet, output stride 8.
PLAIN_BACKBONE_HEADS = frozenset({"upernet"})


def default_output_stride(name: str) -> int:
    """Backbone output stride head ``name`` runs at by default: 32 for UperNet, 8 otherwise."""
    return 32 if name in PLAIN_BACKBONE_HEADS else 8


def default_feature_strides(name: str) -> tuple[int, int, int, int]:
    """Strides of the four ResNet levels head ``name`` sees at :func:`default_output_stride`:
    (4, 8, 16, 32) for UperNet, (4, 8, 8, 8) otherwise (dilated stages keep stride 8)."""
    output_stride = default_output_stride(name)
    return tuple(min(stride, output_stride) for stride in (4, 8, 16, 32))  # type: ignore[return-value]


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
    "HEAD_DISPLAY_NAMES",
    "ISNetHead",
    "PLAIN_BACKBONE_HEADS",
    "PSPHead",
    "THESIS_HEAD_SPELLING",
    "UPerHead",
    "create_decode_head",
    "default_feature_strides",
    "default_output_stride",
    "head_display_name",
    "resize",
]

"""Frozen SAM image encoder (segment_anything's ``ImageEncoderViT``) at the segmentation input size.

SAM is trained at 1024 px. Here the encoder is built at our input size: the absolute position
embedding is interpolated to the new patch grid and the relative-position tables of the global
attention blocks are resized to ``2 * grid - 1`` (windowed blocks keep their window-sized tables),
so the stored sizes match what the blocks see. Features come from the last three global-attention
blocks (thesis 5.2.4).

The embedded default has no SAM weights to download: ``create_model("sam", variant="tiny")`` (and
the larger ``tiny_l``) builds segment_anything's whole ``Sam`` (image encoder, prompt encoder, mask
decoder) at tiny sizes, which the ``sam_pretraining`` pipeline trains class-agnostically; its state dict
has SAM's checkpoint layout (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``), so it enters
LSMSeg through the same ``checkpoint`` argument as ``sam_vit_b_01ec64.pth``. ``tiny`` and ``tiny_l``
stand in for ViT-B and ViT-L: ``tiny_l`` is twice as deep and 1.5x as wide (ViT-L: 2x and 1.33x of
ViT-B), about 4x the encoder parameters (ViT-L: 3.6x), with the same prompt encoder and mask decoder.

    encoder = build_sam_image_encoder("vit_b", image_size=384, checkpoint="sam_vit_b_01ec64.pth")
    encoder = build_sam_image_encoder("tiny", image_size=96, checkpoint="data/06_models/tiny_sam.pt")
    encoder = build_sam_image_encoder("tiny_l", image_size=96, checkpoint="data/06_models/tiny_sam_l.pt")
    features = encoder(images)   # list of 3 tensors (B, C_sam, H/16, W/16)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import nn

from seg_pipelines.models.checkpoints import read_checkpoint, unwrap_state_dict
from seg_pipelines.models.registry import register_model

SAM_PIXEL_MEAN = (0.485, 0.456, 0.406)  # SAM's (123.675, 116.28, 103.53) / 255
SAM_PIXEL_STD = (0.229, 0.224, 0.225)


def normalize_sam_images(images: torch.Tensor) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` in [0, 1] → SAM's normalisation (its pixel mean and std)."""
    mean = images.new_tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(SAM_PIXEL_STD).view(1, 3, 1, 1)
    return (images - mean) / std


@dataclass(frozen=True)
class SAMEncoderConfig:
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    patch_size: int = 16
    window_size: int = 14
    pretrain_image_size: int = 1024


SAM_ENCODER_CONFIGS: dict[str, SAMEncoderConfig] = {
    "vit_b": SAMEncoderConfig(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SAMEncoderConfig(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": SAMEncoderConfig(1280, 32, 16, (7, 15, 23, 31)),
    # Embedded default: same family, tiny width, patch 8 so a 96 px input gives a 12x12 grid.
    "tiny": SAMEncoderConfig(64, 4, 2, (1, 2, 3), patch_size=8, window_size=4, pretrain_image_size=96),
    # Its larger sibling (the SAM-L stand-in): 2x the depth, 1.5x the width, the same head width (32),
    # four global blocks like vit_b / vit_l (features from the last three).
    "tiny_l": SAMEncoderConfig(96, 8, 3, (1, 3, 5, 7), patch_size=8, window_size=4, pretrain_image_size=96),
}

#: The embedded-default SAMs (no checkpoint to download: ``sam_pretraining`` trains them).
TINY_SAM_VARIANTS: tuple[str, ...] = ("tiny", "tiny_l")


@dataclass(frozen=True)
class SAMDecoderConfig:
    """Prompt encoder and mask decoder sizes (segment_anything's ``_build_sam``: the same for B/L/H)."""

    prompt_embed_dim: int = 256
    mlp_dim: int = 2048
    num_heads: int = 8
    depth: int = 2
    iou_head_hidden_dim: int = 256
    mask_in_chans: int = 16


_TINY_DECODER = SAMDecoderConfig(prompt_embed_dim=32, mlp_dim=128, num_heads=2, iou_head_hidden_dim=32, mask_in_chans=8)

SAM_DECODER_CONFIGS: dict[str, SAMDecoderConfig] = {
    "vit_b": SAMDecoderConfig(),
    "vit_l": SAMDecoderConfig(),
    "vit_h": SAMDecoderConfig(),
    "tiny": _TINY_DECODER,
    "tiny_l": _TINY_DECODER,  # one decoder design for both sizes, as B/L/H share theirs
}


def sam_encoder_config(variant: str) -> SAMEncoderConfig:
    """The image-encoder sizes of ``variant``; an unknown name raises a KeyError listing the known ones."""
    if variant not in SAM_ENCODER_CONFIGS:
        raise KeyError(f"unknown SAM variant {variant!r}; known: {sorted(SAM_ENCODER_CONFIGS)}")
    return SAM_ENCODER_CONFIGS[variant]


def sam_image_encoder(variant: str, image_size: int, out_chans: int = 256) -> ImageEncoderViT:
    """segment_anything's ``ImageEncoderViT`` of ``variant`` (:data:`SAM_ENCODER_CONFIGS`) at ``image_size``."""
    config = sam_encoder_config(variant)
    if image_size % config.patch_size:
        raise ValueError(f"SAM image size {image_size} is not a multiple of patch size {config.patch_size}")
    return ImageEncoderViT(
        img_size=image_size,
        patch_size=config.patch_size,
        embed_dim=config.embed_dim,
        depth=config.depth,
        num_heads=config.num_heads,
        mlp_ratio=4.0,
        out_chans=out_chans,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_abs_pos=True,
        use_rel_pos=True,
        window_size=config.window_size,
        global_attn_indexes=config.global_attn_indexes,
    )


@register_model("sam")
def build_sam(*, variant: str = "tiny", image_size: int | None = None) -> Sam:
    """segment_anything's ``Sam`` of ``variant`` at ``image_size`` (default: the variant's training size),
    random init, built as ``segment_anything.build_sam`` builds it (3 multimask outputs, IoU head depth 3).

    Its pixel statistics are SAM's (0–255 scale); :class:`SAMImageEncoder` applies the same on [0, 1].
    """
    encoder_config, decoder_config = sam_encoder_config(variant), SAM_DECODER_CONFIGS[variant]
    image_size = image_size or encoder_config.pretrain_image_size
    image_encoder = sam_image_encoder(variant, image_size, out_chans=decoder_config.prompt_embed_dim)
    grid = image_size // encoder_config.patch_size
    return Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=decoder_config.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=decoder_config.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=decoder_config.depth,
                embedding_dim=decoder_config.prompt_embed_dim,
                mlp_dim=decoder_config.mlp_dim,
                num_heads=decoder_config.num_heads,
            ),
            transformer_dim=decoder_config.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=decoder_config.iou_head_hidden_dim,
        ),
        pixel_mean=[255 * m for m in SAM_PIXEL_MEAN],
        pixel_std=[255 * s for s in SAM_PIXEL_STD],
    )


def resize_relative_position(table: torch.Tensor, length: int) -> torch.Tensor:
    """Linearly resize a ``(L, C)`` relative-position table to ``(length, C)`` (SAM's own rule)."""
    if table.shape[0] == length:
        return table
    resized = F.interpolate(table.t().unsqueeze(0), size=length, mode="linear", align_corners=False)
    return resized.squeeze(0).t()


def resize_absolute_position(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bicubically resize SAM's ``(1, h, w, C)`` absolute position embedding to ``grid``."""
    if tuple(pos_embed.shape[1:3]) == tuple(grid):
        return pos_embed
    resized = F.interpolate(pos_embed.permute(0, 3, 1, 2), size=grid, mode="bicubic", align_corners=False)
    return resized.permute(0, 2, 3, 1)


def adapt_sam_state_dict(state_dict: dict[str, torch.Tensor], encoder: ImageEncoderViT) -> dict[str, torch.Tensor]:
    """Take the image-encoder part of a SAM checkpoint and resize its position tensors to ``encoder``."""
    if any(key.startswith("image_encoder.") for key in state_dict):
        state_dict = {k[len("image_encoder.") :]: v for k, v in state_dict.items() if k.startswith("image_encoder.")}
    target = encoder.state_dict()
    adapted = {}
    for key, value in state_dict.items():
        if key not in target:
            adapted[key] = value  # let load_state_dict report it
            continue
        if key == "pos_embed":
            value = resize_absolute_position(value, tuple(target[key].shape[1:3]))
        elif key.endswith(("rel_pos_h", "rel_pos_w")):
            value = resize_relative_position(value, target[key].shape[0])
        adapted[key] = value
    return adapted


class SAMImageEncoder(nn.Module):
    """Frozen SAM ViT returning the outputs of its last three global-attention blocks.

    Args:
        variant: ``vit_b``, ``vit_l``, ``vit_h``, ``tiny`` or ``tiny_l``.
        image_size: input size the encoder is built for (a multiple of the patch size).
        checkpoint: SAM checkpoint path (full SAM or encoder-only state dict), loaded weights_only.
        num_feature_blocks: how many of the last global-attention blocks to return (thesis: 3).
    """

    def __init__(
        self,
        variant: str = "tiny",
        *,
        image_size: int = 96,
        checkpoint: str | os.PathLike | None = None,
        num_feature_blocks: int = 3,
    ) -> None:
        super().__init__()
        self.encoder = sam_image_encoder(variant, image_size)
        config = sam_encoder_config(variant)
        if num_feature_blocks > len(config.global_attn_indexes):
            raise ValueError(f"SAM {variant} has only {len(config.global_attn_indexes)} global blocks")
        self.variant = variant
        self.image_size = image_size
        self.patch_size = config.patch_size
        self.embed_dim = config.embed_dim
        self.feature_blocks = tuple(config.global_attn_indexes[-num_feature_blocks:])
        self.encoder.neck = nn.Identity()  # the prompt-decoder neck is not used for fusion
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        self.requires_grad_(False)
        self.eval()

    @property
    def out_channels(self) -> int:
        return self.embed_dim * len(self.feature_blocks)

    def load_checkpoint(self, checkpoint: str | os.PathLike) -> None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"SAM checkpoint not found: {path}")
        state_dict = unwrap_state_dict(read_checkpoint(path, "SAM checkpoint"), f"SAM checkpoint {path}")
        state_dict = {
            k: v for k, v in adapt_sam_state_dict(state_dict, self.encoder).items() if not k.startswith("neck.")
        }
        missing, unexpected = self.encoder.load_state_dict(state_dict, strict=False)
        if missing or unexpected:
            raise RuntimeError(
                f"SAM checkpoint {path} does not match {self.variant}: missing {missing}, unexpected {unexpected}"
            )

    def train(self, mode: bool = True) -> SAMImageEncoder:
        return super().train(False)  # always frozen (thesis 5.2.4, Table 5.10)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] → SAM's normalisation (:func:`normalize_sam_images`)."""
        return normalize_sam_images(images)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """SAM-normalised images (B, 3, S, S), S = ``image_size`` → features of the last global blocks."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        tokens = self.encoder.patch_embed(images)
        tokens = tokens + self.encoder.pos_embed
        features = []
        for index, block in enumerate(self.encoder.blocks):
            tokens = block(tokens)
            if index in self.feature_blocks:
                features.append(tokens.permute(0, 3, 1, 2))
            if index >= self.feature_blocks[-1]:
                break
        return features


def build_sam_image_encoder(
    variant: str = "tiny", *, image_size: int = 96, checkpoint: str | os.PathLike | None = None
) -> SAMImageEncoder:
    """Frozen SAM image encoder at ``image_size`` from a checkpoint path, or random init."""
    return SAMImageEncoder(variant, image_size=image_size, checkpoint=checkpoint)

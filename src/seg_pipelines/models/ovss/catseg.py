"""CAT-Seg baseline (Cho et al., CVPR 2024): cost aggregation for open-vocabulary segmentation.

images → CLIP dense features → cosine cost volume with class prompt embeddings (optionally only
the top classes of a large vocabulary) → cost embedding (7×7 conv over prompts) → N × [spatial
aggregation (guided Swin) → class aggregation (guided linear attention)] → upsampling decoder with
CLIP intermediate-layer guidance → per-class logits, trained with per-pixel BCE.

``use_aggregation=False`` is the "without spatial and class aggregation" variant used to score
prompt attributes (thesis 5.2.3). The text side is an input, (K, P, D) embeddings shared by the
batch (or token ids encoded inside so the text tower can be fine-tuned), so attribute scoring can
re-encode text only.

    model = create_model("catseg", clip_model="ViT-B-16", clip_pretrained="/ckpt/vit_b16_openai.bin",
                         image_size=384, force_quick_gelu=True)
    text = model.encode_class_names(["cat", "sky"])       # (K, P, D)
    logits = model(images, text)["logits"]               # (B, K, H, W)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seg_pipelines.models.registry import register_model

from .aggregation import CostAggregationLayer
from .clip import (
    DEFAULT_TEMPLATES,
    TINY_CLIP_NAME,
    CLIPDenseEncoder,
    build_class_prompts,
    configure_clip_finetuning,
    load_clip,
)
from .cost_volume import class_text_guidance
from .decoder import UpsamplingDecoder
from .filtering import FILTERED_CLASS_LOGIT, CategoryFilter, FilteredCost, scatter_class_logits


def per_pixel_bce_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    ignore_index: int = 255,
    ignored_pixels_as_negative: bool = True,
) -> torch.Tensor:
    """Per-pixel binary cross-entropy over classes (CAT-Seg's training loss).

    Args:
        logits: (B, K, h, w) class logits; resized bilinearly to the target size.
        targets: (B, H, W) class indices, ``ignore_index`` for unlabelled / unseen pixels.
        ignored_pixels_as_negative: CAT-Seg keeps ignored pixels with an all-zero target (every
            class negative); False excludes them from the mean instead.
    """
    if logits.shape[-2:] != targets.shape[-2:]:
        logits = F.interpolate(logits, size=targets.shape[-2:], mode="bilinear", align_corners=False)
    num_classes = logits.shape[1]
    valid = targets != ignore_index
    if bool((targets[valid] >= num_classes).any()) or bool((targets[valid] < 0).any()):
        raise ValueError(f"target class index out of range for {num_classes} classes")
    one_hot = F.one_hot(torch.where(valid, targets, 0).long(), num_classes).permute(0, 3, 1, 2).to(logits.dtype)
    one_hot = one_hot * valid.unsqueeze(1)
    losses = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
    if ignored_pixels_as_negative:
        return losses.mean()
    weights = valid.unsqueeze(1).expand_as(losses).to(losses.dtype)
    return (losses * weights).sum() / weights.sum().clamp_min(1.0)


class CATSeg(nn.Module):
    """CAT-Seg cost-aggregation segmentor on an open_clip ViT.

    Args:
        clip_encoder: dense CLIP wrapper (image + text towers).
        num_prompts: P, prompts per class = channels of the cost volume (1 after template ensembling).
        top_k: classes kept per image when the vocabulary is larger (CAT-Seg ``pad_len``: 256);
            0 disables filtering. Filtered-out classes get ``filtered_logit``.
        use_aggregation: False gives the variant without spatial and class aggregation.
        num_layers: aggregation layers.
        hidden_dim: cost-embedding channels.
        appearance_guidance_dim / text_guidance_dim: projected guidance channels.
        decoder_channels / decoder_guidance_dims: upsampling decoder widths.
        num_heads, window_size, pooling_size: aggregation hyper-parameters.
        image_size: size images are resized to for CLIP (default: the CLIP config's).
        filtered_logit: logit of classes dropped by top-k filtering.
    """

    def __init__(
        self,
        clip_encoder: CLIPDenseEncoder,
        *,
        num_prompts: int = 1,
        top_k: int | None = 256,
        use_aggregation: bool = True,
        num_layers: int = 2,
        hidden_dim: int = 128,
        appearance_guidance_dim: int = 128,
        text_guidance_dim: int = 128,
        decoder_channels: Sequence[int] = (64, 32),
        decoder_guidance_dims: Sequence[int] = (32, 16),
        num_heads: int = 4,
        window_size: int = 12,
        pooling_size: int = 2,
        image_size: int | None = None,
        filtered_logit: float = FILTERED_CLASS_LOGIT,
    ) -> None:
        super().__init__()
        self.clip = clip_encoder
        self.num_prompts = num_prompts
        self.image_size = image_size or clip_encoder.image_size
        if self.image_size % clip_encoder.patch_size:
            raise ValueError(f"image size {self.image_size} not a multiple of patch {clip_encoder.patch_size}")
        self.filtered_logit = filtered_logit
        self.category_filter = CategoryFilter(top_k)
        embed_dim = clip_encoder.embed_dim
        self.cost_embedding = nn.Conv2d(num_prompts, hidden_dim, kernel_size=7, padding=3)
        layers = num_layers if use_aggregation else 0
        self.appearance_guidance = (
            nn.Sequential(nn.Conv2d(embed_dim, appearance_guidance_dim, 3, padding=1), nn.ReLU()) if layers else None
        )
        self.text_guidance = nn.Sequential(nn.Linear(embed_dim, text_guidance_dim), nn.ReLU()) if layers else None
        self.aggregation = nn.ModuleList(
            [
                CostAggregationLayer(
                    hidden_dim,
                    appearance_guidance_dim,
                    text_guidance_dim,
                    num_heads=num_heads,
                    window_size=window_size,
                    pooling_size=pooling_size,
                )
                for _ in range(layers)
            ]
        )
        num_guidance = len(clip_encoder.guidance_layers)
        if num_guidance != len(decoder_channels):
            raise ValueError(f"{num_guidance} CLIP guidance layers for {len(decoder_channels)} decoder blocks")
        self.decoder = UpsamplingDecoder(
            hidden_dim, decoder_channels, (clip_encoder.width,) * num_guidance, decoder_guidance_dims
        )

    @property
    def use_aggregation(self) -> bool:
        return len(self.aggregation) > 0

    # ------------------------------------------------------------------ text side

    def encode_class_names(
        self, class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
    ) -> torch.Tensor:
        """Template prompts of every class through the CLIP text tower → (K, P, D)."""
        return self.clip.encode_prompts(build_class_prompts(class_names, templates))

    def _text_embeddings(self, text_embeddings: torch.Tensor | None, text_tokens: torch.Tensor | None) -> torch.Tensor:
        if (text_embeddings is None) == (text_tokens is None):
            raise ValueError("pass exactly one of text_embeddings (K, P, D) and text_tokens (K, P, L)")
        text = self.clip.encode_text_tokens(text_tokens) if text_tokens is not None else text_embeddings
        if text.dim() == 2:
            text = text.unsqueeze(-2)
        if text.shape[-2] != self.num_prompts:
            raise ValueError(
                f"model built for {self.num_prompts} prompts per class, text has {text.shape[-2]} "
                "(use ensemble_text_embeddings to average templates)"
            )
        return text

    # ------------------------------------------------------------------ image side

    def visual_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Images in [0, 1] → (dense features for the cost volume (B, D, h, w), decoder guidance)."""
        clip_images = images
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            clip_images = F.interpolate(images, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
        features = self.clip(self.clip.normalize(clip_images))
        return features.dense, features.guidance

    def embed_cost(self, cost: torch.Tensor) -> torch.Tensor:
        """Cost embedding: cost volume (B, P, k, h, w) → (B, hidden_dim, k, h, w), the 7×7 conv over the
        prompts of each class."""
        batch, prompts, classes, height, width = cost.shape
        embedded = self.cost_embedding(cost.transpose(1, 2).reshape(batch * classes, prompts, height, width))
        return embedded.view(batch, classes, -1, height, width).transpose(1, 2)

    def aggregate(
        self, filtered: FilteredCost, image_features: torch.Tensor, guidance: list[torch.Tensor]
    ) -> torch.Tensor:
        """Cost volume (B, P, k, h, w) → class logits (B, k, 4h, 4w)."""
        cost = self.embed_cost(filtered.cost)
        if self.use_aggregation:
            appearance = self.appearance_guidance(image_features)
            text = self.text_guidance(class_text_guidance(filtered.text))
            for layer in self.aggregation:
                cost = layer(cost, appearance, text)
        return self.decoder(cost, guidance)

    def forward(
        self,
        images: torch.Tensor,
        text_embeddings: torch.Tensor | None = None,
        *,
        text_tokens: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Segment ``images`` (B, 3, H, W) in [0, 1] against K classes.

        Returns ``logits`` (B, K, H, W) for every class (filtered-out ones at ``filtered_logit``)
        and ``class_indices`` (B, k) of the kept classes (all K when nothing was filtered).
        """
        text = self._text_embeddings(text_embeddings, text_tokens)
        image_features, guidance = self.visual_features(images)
        filtered = self.category_filter(image_features, text)
        logits = self.aggregate(filtered, image_features, guidance)
        logits = scatter_class_logits(logits, filtered.indices, filtered.num_classes, self.filtered_logit)
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        indices = filtered.indices
        if indices is None:
            indices = torch.arange(filtered.num_classes, device=images.device).expand(images.shape[0], -1)
        return {"logits": logits, "class_indices": indices}


def build_clip_encoder(
    clip_model: str = TINY_CLIP_NAME,
    clip_pretrained: str | None = None,
    *,
    image_size: int | None = None,
    force_quick_gelu: bool | None = None,
    clip_finetune: str = "qv",
    guidance_layers: Sequence[int] | None = None,
    cache_dir: str | None = None,
) -> CLIPDenseEncoder:
    """Load CLIP offline, set its fine-tuning mode, wrap it for dense features."""
    clip = load_clip(
        clip_model, clip_pretrained, image_size=image_size, force_quick_gelu=force_quick_gelu, cache_dir=cache_dir
    )
    configure_clip_finetuning(clip, clip_finetune)
    return CLIPDenseEncoder(clip, model_name=clip_model, guidance_layers=guidance_layers)


_CLIP_ENCODER_ARGS = frozenset(inspect.signature(build_clip_encoder).parameters)


def split_clip_encoder_options(
    image_size: int | None, options: dict[str, Any]
) -> tuple[CLIPDenseEncoder, dict[str, Any]]:
    """What the OVSS builders share: the :func:`build_clip_encoder` of ``image_size`` and of the builder's
    keyword ``options`` that are that function's (``clip_model``, ``clip_pretrained``, ``force_quick_gelu``,
    ``clip_finetune``, ``guidance_layers``, ``cache_dir``; its defaults for the others), and the remaining
    ``options`` (for the segmentor)."""
    clip_options = {key: value for key, value in options.items() if key in _CLIP_ENCODER_ARGS}
    head_kwargs = {key: value for key, value in options.items() if key not in _CLIP_ENCODER_ARGS}
    return build_clip_encoder(image_size=image_size, **clip_options), head_kwargs


@register_model("catseg")
def catseg(
    *,
    image_size: int | None = None,
    num_prompts: int = 1,
    top_k: int | None = 256,
    use_aggregation: bool = True,
    **options,
) -> CATSeg:
    """CAT-Seg on open_clip ``clip_model`` (weights ``clip_pretrained``: path / cached tag / None); the CLIP
    arguments in ``options`` build the encoder (:func:`split_clip_encoder_options`), the others go to
    :class:`CATSeg`."""
    encoder, head_kwargs = split_clip_encoder_options(image_size, options)
    return CATSeg(
        encoder,
        num_prompts=num_prompts,
        top_k=top_k,
        use_aggregation=use_aggregation,
        image_size=image_size,
        **head_kwargs,
    )

"""LSMSeg (thesis chapter 5): CAT-Seg-style cost volume with SAM fusion, category filtering and
feature refinement.

E  = w·F_c + (1 − w)·Linear(F_s)                     visual feature fusion      (eq. 5.1)
M  = cos(E, T)                                       cost map                   (eq. 5.2)
A  = max_{h,w,d} M;  I_k = TopK(A, k);  T' = Gather(Norm(T), I_k);  M' = cos(E, T')  (eq. 5.3–5.6)
M'' = S([M'; E]);  M''' = C([M''; T'])               feature refinement         (eq. 5.7–5.8)
O  = Up([M'''; E'])                                  upsampling decoder         (eq. 5.9)

At inference the k kept classes are scattered back into all K classes (filtered-out classes get a
very low logit) so evaluation sees the full vocabulary.

    model = create_model("lsmseg", clip_model="ViT-B-16", clip_pretrained="/ckpt/clip.bin",
                         image_size=384, force_quick_gelu=True, sam_variant="vit_l",
                         sam_checkpoint="/ckpt/sam_vit_l_0b3195.pth", top_k=32)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seg_pipelines.models.registry import register_model

from .catseg import CATSeg, split_clip_encoder_options
from .clip import CLIPDenseEncoder
from .cost_volume import class_text_guidance
from .filtering import FilteredCost
from .fusion import VisualFeatureFusion
from .refinement import FeatureRefinementModule
from .sam import SAMImageEncoder

# Bumped when a change makes the same settings train a different model; result caches keyed by
# settings include it so they never hand back numbers of the old code. 2: concat and attention
# fusion start from F_c (issue 27); 3: F_s is layer-normalised before its alignment (sam_feature_norm).
LSMSEG_REVISION = 3


class LSMSeg(CATSeg):
    """LSMSeg segmentor.

    Args:
        clip_encoder: dense CLIP wrapper.
        sam_encoder: frozen SAM image encoder, or None for "LSMSeg (w/o SAM)" (Table 5.6).
        fusion: ``weighted`` (eq. 5.1), ``concat`` or ``attention`` (Table 5.7).
        initial_fusion_weight: initial w (thesis 5.3.2: 0.5).
        sam_feature_norm: ``layernorm`` before the alignment of F_s, or ``none`` (the text); :mod:`.fusion`.
        top_k: classes kept by the category filtering module (Table 5.5: 32).
        **kwargs: cost-embedding / refinement / decoder settings of :class:`CATSeg`.
    """

    def __init__(
        self,
        clip_encoder: CLIPDenseEncoder,
        sam_encoder: SAMImageEncoder | None = None,
        *,
        fusion: str = "weighted",
        initial_fusion_weight: float = 0.5,
        sam_feature_norm: str = "layernorm",
        top_k: int | None = 32,
        num_layers: int = 2,
        hidden_dim: int = 128,
        appearance_guidance_dim: int = 128,
        text_guidance_dim: int = 128,
        num_heads: int = 4,
        window_size: int = 12,
        pooling_size: int = 2,
        **kwargs,
    ) -> None:
        super().__init__(
            clip_encoder,
            top_k=top_k,
            use_aggregation=False,  # CAT-Seg's aggregator is replaced by the refinement module below
            num_layers=0,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            window_size=window_size,
            pooling_size=pooling_size,
            **kwargs,
        )
        self.sam = sam_encoder
        self.fusion = (
            VisualFeatureFusion(
                clip_encoder.embed_dim,
                sam_encoder.out_channels,
                mode=fusion,
                initial_weight=initial_fusion_weight,
                sam_feature_norm=sam_feature_norm,
            )
            if sam_encoder is not None
            else None
        )
        embed_dim = clip_encoder.embed_dim
        self.visual_guidance = nn.Sequential(nn.Conv2d(embed_dim, appearance_guidance_dim, 3, padding=1), nn.ReLU())
        self.refinement_text_guidance = nn.Sequential(nn.Linear(embed_dim, text_guidance_dim), nn.ReLU())
        self.refinement = FeatureRefinementModule(
            num_layers,
            hidden_dim,
            appearance_guidance_dim,
            text_guidance_dim,
            num_heads=num_heads,
            window_size=window_size,
            pooling_size=pooling_size,
        )

    def visual_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """E = fusion(F_c, F_s) (eq. 5.1) and the CLIP intermediate layers E' for the decoder."""
        clip_features, guidance = super().visual_features(images)
        if self.sam is None:
            return clip_features, guidance
        with torch.no_grad():  # SAM stays frozen (thesis 5.2.4)
            sam_images = F.interpolate(images, size=(self.sam.image_size,) * 2, mode="bilinear", align_corners=False)
            sam_features = self.sam(self.sam.normalize(sam_images))
        return self.fusion(clip_features, sam_features), guidance

    def aggregate(
        self, filtered: FilteredCost, image_features: torch.Tensor, guidance: list[torch.Tensor]
    ) -> torch.Tensor:
        """M' → cost embedding → S (eq. 5.7) → C (eq. 5.8) → Up with E' (eq. 5.9)."""
        cost = self.embed_cost(filtered.cost)
        visual = self.visual_guidance(image_features)
        text = self.refinement_text_guidance(class_text_guidance(filtered.text))
        cost = self.refinement(cost, visual, text)
        return self.decoder(cost, guidance)


@register_model("lsmseg")
def lsmseg(
    *,
    image_size: int | None = None,
    use_sam: bool = True,
    sam_variant: str = "tiny",
    sam_checkpoint: str | None = None,
    sam_image_size: int | None = None,
    num_prompts: int = 1,
    top_k: int | None = 32,
    fusion: str = "weighted",
    initial_fusion_weight: float = 0.5,
    sam_feature_norm: str = "layernorm",
    **options,
) -> LSMSeg:
    """LSMSeg on open_clip ``clip_model`` and SAM ``sam_variant``; the CLIP arguments in ``options`` build the
    encoder as for CAT-Seg (:func:`~.catseg.split_clip_encoder_options`), the others go to :class:`LSMSeg`."""
    encoder, head_kwargs = split_clip_encoder_options(image_size, options)
    sam = None
    if use_sam:
        sam = SAMImageEncoder(
            sam_variant, image_size=sam_image_size or image_size or encoder.image_size, checkpoint=sam_checkpoint
        )
    return LSMSeg(
        encoder,
        sam,
        fusion=fusion,
        initial_fusion_weight=initial_fusion_weight,
        sam_feature_norm=sam_feature_norm,
        top_k=top_k,
        num_prompts=num_prompts,
        image_size=image_size,
        **head_kwargs,
    )

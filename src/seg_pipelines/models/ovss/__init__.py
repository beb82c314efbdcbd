"""Open-vocabulary semantic segmentation (thesis chapter 5): CLIP/SAM encoders, cost volume,
category filtering, aggregation/refinement, decoder, and the CAT-Seg and LSMSeg models.

Models are built through the registry: ``create_model("catseg", ...)``, ``create_model("lsmseg", ...)``.
"""

from .catseg import CATSeg, per_pixel_bce_loss
from .clip import (
    CLIP_FINETUNE_MODES,
    TINY_CLIP_NAME,
    CLIPDenseEncoder,
    build_class_prompts,
    configure_clip_finetuning,
    ensemble_text_embeddings,
    load_clip,
    save_clip_checkpoint,
)
from .lsmseg import LSMSeg
from .sam import SAMImageEncoder, build_sam_image_encoder

__all__ = [
    "CATSeg",
    "CLIPDenseEncoder",
    "CLIP_FINETUNE_MODES",
    "LSMSeg",
    "SAMImageEncoder",
    "TINY_CLIP_NAME",
    "build_class_prompts",
    "build_sam_image_encoder",
    "configure_clip_finetuning",
    "ensemble_text_embeddings",
    "load_clip",
    "per_pixel_bce_loss",
    "save_clip_checkpoint",
]

"""CLIP + SAM visual feature fusion (thesis 5.2.4, eq. 5.1; Table 5.7 ablation options).

SAM features (the last three global blocks, concatenated) are aligned to CLIP's channel dimension
by a linear layer and resized to CLIP's patch grid, then fused. ``sam_feature_norm="layernorm"``
puts a LayerNorm before that linear layer (not in the thesis; ``"none"`` is the text): SAM's block
outputs have no norm of their own (SAM's neck normalises them for its decoder), and a pretrained
tiny SAM's are ~6× a random one's (‖F_s‖ 72 vs 12, ‖F_c‖ 14), so Linear(F_s) would outweigh F_c in
eq. 5.1 at w = 0.5 (cos(E, F_c) 0.44 instead of 0.93) and the comparison would depend on SAM's scale:

* ``weighted`` (default): E = w·F_c + (1 − w)·F_s, a learnable scalar w initialised to 0.5.
* ``concat``: E = Linear([F_c; F_s]), the projection initialised to [I | 0] (identity on the F_c
  half, zeros on the F_s half, zero bias), so E = F_c at initialisation.
* ``attention``: E = F_c + CrossAttention(F_c → F_s)  (CLIP tokens attend to SAM tokens), the
  attention's output projection zero-initialised, so E = F_c at initialisation.

Table 5.7 compares fusion methods, not initialisations: ``concat`` and ``attention`` start from F_c
and learn to add SAM (their SAM-side weights get gradients from the first step on); ``weighted`` is
eq. 5.1 as written. A default-initialised ``Linear(2D, D)`` would replace F_c by a random projection
(cos(E, F_c) ≈ 0) and top-k filtering would then keep classes at chance.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

FUSION_MODES = ("weighted", "concat", "attention")
SAM_FEATURE_NORMS = ("layernorm", "none")


class VisualFeatureFusion(nn.Module):
    """Fuse dense CLIP features F_c (B, D, h, w) with SAM features F_s into E (B, D, h, w).

    Args:
        clip_channels: D, CLIP's joint-space dimension (the cost volume is computed against text).
        sam_channels: channels of the concatenated SAM feature maps.
        mode: ``weighted``, ``concat`` or ``attention``.
        initial_weight: initial w of the weighted fusion (thesis 5.3.2: 0.5). w is an unconstrained
            learnable scalar, as eq. 5.1 writes it.
        num_heads: heads of the attention fusion.
        sam_feature_norm: ``layernorm`` (F_s normalised per token before the alignment) or ``none`` (eq. 5.1
            as written: the linear layer alone).
    """

    def __init__(
        self,
        clip_channels: int,
        sam_channels: int,
        *,
        mode: str = "weighted",
        initial_weight: float = 0.5,
        num_heads: int = 4,
        sam_feature_norm: str = "layernorm",
    ) -> None:
        super().__init__()
        if mode not in FUSION_MODES:
            raise ValueError(f"unknown fusion {mode!r}; choose one of {FUSION_MODES}")
        if sam_feature_norm not in SAM_FEATURE_NORMS:
            raise ValueError(f"unknown sam_feature_norm {sam_feature_norm!r}; choose one of {SAM_FEATURE_NORMS}")
        self.mode = mode
        self.sam_norm = nn.LayerNorm(sam_channels) if sam_feature_norm == "layernorm" else nn.Identity()
        self.align = nn.Linear(sam_channels, clip_channels)  # channel alignment of F_s to F_c
        if mode == "weighted":
            self.weight = nn.Parameter(torch.tensor(float(initial_weight)))
        elif mode == "concat":
            self.mix = nn.Linear(2 * clip_channels, clip_channels)
            with torch.no_grad():  # [I | 0]: E = F_c at initialisation
                self.mix.weight.zero_()
                self.mix.weight[:, :clip_channels].copy_(torch.eye(clip_channels))
                self.mix.bias.zero_()
        else:
            heads = num_heads if clip_channels % num_heads == 0 else 1
            self.norm_clip = nn.LayerNorm(clip_channels)
            self.norm_sam = nn.LayerNorm(clip_channels)
            self.cross_attention = nn.MultiheadAttention(clip_channels, heads, batch_first=True)
            with torch.no_grad():  # zero residual branch: E = F_c at initialisation
                self.cross_attention.out_proj.weight.zero_()
                self.cross_attention.out_proj.bias.zero_()

    def forward(self, clip_features: torch.Tensor, sam_features: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if not isinstance(sam_features, torch.Tensor):
            sam_features = torch.cat(list(sam_features), dim=1)
        grid = clip_features.shape[-2:]
        if sam_features.shape[-2:] != grid:
            sam_features = F.interpolate(sam_features, size=grid, mode="bilinear", align_corners=False)
        aligned = self.align(self.sam_norm(sam_features.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        if self.mode == "weighted":
            return self.weight * clip_features + (1 - self.weight) * aligned  # eq. 5.1
        if self.mode == "concat":
            fused = self.mix(torch.cat([clip_features, aligned], dim=1).permute(0, 2, 3, 1))
            return fused.permute(0, 3, 1, 2)
        batch, channels, height, width = clip_features.shape
        queries = clip_features.flatten(2).transpose(1, 2)
        keys = self.norm_sam(aligned.flatten(2).transpose(1, 2))
        attended, _ = self.cross_attention(self.norm_clip(queries), keys, keys, need_weights=False)
        return (queries + attended).transpose(1, 2).reshape(batch, channels, height, width)

"""Class-Aware Affinity (CAA) add-on, thesis chapter 3 (eq. 3.1–3.12).

The add-on replaces a head's classifier: ``forward(features, target)`` returns ``"logits"``
(B, K, h, w) at feature resolution plus what :meth:`ClassAwareAffinity.losses` needs.

Loss contract: the segmentor adds the main CE on ``"logits"`` (λ1 = 1, eq. 3.11) itself;
``losses()`` returns only the already-weighted affinity (λ2 = 1, eq. 3.9) and auxiliary
(λ3 = 0.4, eq. 3.10) terms. ``computes_main_loss = False`` says so.

Choices the thesis leaves open (all constructor arguments):

* ``normalize_context``: divide ``M F`` and ``(1 − M) F`` by HW, as Context Prior (CPNet), which
  CAA's affinity supervision follows, does; without it the eq. 3.4 softmax saturates at HW = 4096.
* class centres use a softmax over pixels per class (OCR's spatial gather): each centre is a
  convex combination of pixel features (eq. 3.1).
* φ, ψ act on the input feature F ("two 1×1 convolutional layers on feature F"); the aggregated
  values and the class centres use the reduced F' (1×1 conv-BN-ReLU), so the dot products of
  eq. 3.4/3.6 are between D'-vectors. Eq. 3.8 concatenates the input F.
* ``association_scale`` multiplies the eq. 3.4/3.6 dot products (1.0 = the thesis).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg_pipelines.losses.affinity import affinity_bce_loss, chunked_sigmoid_affinity
from seg_pipelines.models.registry import register_addon


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def downsample_labels(target: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of integer labels (B, H, W) to ``size``."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    return F.interpolate(target[:, None].float(), size=size, mode="nearest")[:, 0].long()


@register_addon("caa")
class ClassAwareAffinity(nn.Module):
    """CAA: semantic affinity (pixel-to-pixel) + class centres (pixel-to-class), eq. 3.1–3.8.

    Args:
        in_channels: channels D of the head feature F.
        num_classes: number of classes K.
        channels: reduced channels D' of F' (1×1 conv-BN-ReLU, section 3.2.3) and of the output of Δ.
        affinity_channels: channels of φ(F), ψ(F) whose product gives the affinity logits.
        reduction_kernel_size: kernel of the reduction conv (1, the text's 1×1 conv, L535; 3 is the other
            reading of Table 3.5: +3.49 M parameters on a 512-channel head, 3.56 M with the head's classifier
            counted, against the thesis's +3.60-3.61 M; the text's 1×1 gives +1.39 M. The efficiency
            pipeline prints each reading: experiments.efficiency.PARAMETER_READINGS).
        use_class_center: "CC" in Table 3.2 (eq. 3.1, 3.4–3.7).
        use_semantic_affinity: "SA" in Table 3.2 (eq. 3.2–3.3, affinity loss).
        use_intra / use_inter: the intra- and inter-class branches of Table 3.3.
        affinity_loss_weight: λ2 of eq. 3.12 (0 switches the affinity loss off, Table 3.4).
        aux_loss_weight: λ3 of eq. 3.12 (0 switches the auxiliary loss off, Table 3.4).
        normalize_context: divide the affinity aggregations by HW (see module docstring).
        association_scale: factor on the pixel-to-centre dot products of eq. 3.4/3.6.
        dropout: dropout before the classifier.
        ignore_index: label ignored by all losses.
        memory_efficient: never materialise the HW×HW matrices (chunked custom autograd);
            ``False`` materialises them (reference / benchmark baseline).
        chunk_size: rows of the affinity processed at a time when ``memory_efficient``.
    """

    computes_main_loss = False

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        channels: int = 512,
        affinity_channels: int = 256,
        reduction_kernel_size: int = 1,
        use_class_center: bool = True,
        use_semantic_affinity: bool = True,
        use_intra: bool = True,
        use_inter: bool = True,
        affinity_loss_weight: float = 1.0,
        aux_loss_weight: float = 0.4,
        normalize_context: bool = True,
        association_scale: float = 1.0,
        dropout: float = 0.1,
        ignore_index: int = 255,
        memory_efficient: bool = True,
        chunk_size: int = 256,
    ) -> None:
        super().__init__()
        if use_semantic_affinity and not (use_intra or use_inter):
            raise ValueError("semantic affinity needs at least one of use_intra / use_inter")
        self.num_classes = num_classes
        self.use_class_center = use_class_center
        self.use_semantic_affinity = use_semantic_affinity
        self.use_intra = use_intra
        self.use_inter = use_inter
        self.affinity_loss_weight = affinity_loss_weight if use_semantic_affinity else 0.0
        self.aux_loss_weight = aux_loss_weight if use_class_center else 0.0
        self.normalize_context = normalize_context
        self.association_scale = association_scale
        self.ignore_index = ignore_index
        self.memory_efficient = memory_efficient
        self.chunk_size = chunk_size

        self.reduction = conv_bn_relu(in_channels, channels, reduction_kernel_size)  # F → F'
        if use_class_center:
            self.coarse_classifier = nn.Conv2d(channels, num_classes, 1)  # F_coarse of eq. 3.1
        if use_semantic_affinity:
            self.query = nn.Conv2d(in_channels, affinity_channels, 1)  # φ
            self.key = nn.Conv2d(in_channels, affinity_channels, 1)  # ψ
            num_branches = int(use_intra) + int(use_inter)
        else:
            num_branches = 1 if use_class_center else 0  # CC only: F' associated with the centres
        self.fuse = conv_bn_relu(in_channels + num_branches * channels, channels)  # Δ of eq. 3.8
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def _affinity_context(
        self, features: Tensor, values: Tensor, pair_weights: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Return (M F', (1 − M) F', φ, ψ, Σ w_i w_j softplus(z_ij)) for eq. 3.2, 3.3, 3.9."""
        query = self.query(features).flatten(2).transpose(1, 2)  # (B, N, Dk)
        key = self.key(features).flatten(2).transpose(1, 2)
        num_pixels = values.shape[1]
        if self.memory_efficient:
            intra, softplus_sum = chunked_sigmoid_affinity(query, key, values, pair_weights, self.chunk_size)
            inter = values.sum(dim=1, keepdim=True) - intra  # (1 − M)F' = 1ᵀF' − MF' (eq. 3.3)
        else:
            logits = torch.bmm(query, key.transpose(1, 2))
            affinity = torch.sigmoid(logits)  # M (eq. 3.2)
            intra = torch.bmm(affinity, values)
            inter = torch.bmm(1.0 - affinity, values)
            if pair_weights is None:
                softplus_sum = query.new_zeros(query.shape[0])
            else:
                pair = pair_weights[:, :, None] * pair_weights[:, None, :]
                softplus_sum = (F.softplus(logits) * pair).sum(dim=(1, 2))
        if self.normalize_context:
            intra, inter = intra / num_pixels, inter / num_pixels
        return intra, inter, query, key, softplus_sum

    def _associate(self, pixels: Tensor, class_centers: Tensor) -> Tensor:
        """Pixel-to-centre softmax association, eq. 3.4–3.7: Σ_j softmax_j(x_i·c_j) c_j."""
        relation = torch.softmax(self.association_scale * torch.bmm(pixels, class_centers.transpose(1, 2)), dim=-1)
        return torch.bmm(relation, class_centers)

    def forward(self, features: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
        batch, _, height, width = features.shape
        reduced = self.reduction(features)
        values = reduced.flatten(2).transpose(1, 2)  # F' as (B, N, D')
        outputs: dict[str, Tensor] = {}

        class_centers = None
        if self.use_class_center:
            coarse_logits = self.coarse_classifier(reduced)
            outputs["coarse_logits"] = coarse_logits
            # eq. 3.1: F_center = softmax(F_coarse) F'ᵀ, softmax over pixels per class → (B, K, D').
            class_centers = torch.bmm(torch.softmax(coarse_logits.flatten(2), dim=-1), values)

        branches: list[Tensor] = []
        if self.use_semantic_affinity:
            pair_weights = None
            if target is not None and self.affinity_loss_weight > 0:
                labels = downsample_labels(target, (height, width)).flatten(1)
                valid = (labels != self.ignore_index) & (labels >= 0) & (labels < self.num_classes)
                pair_weights = valid.to(values.dtype)
            intra, inter, query, key, softplus_sum = self._affinity_context(features, values, pair_weights)
            if pair_weights is not None:
                outputs.update(affinity_query=query, affinity_key=key, affinity_softplus_sum=softplus_sum)
            if self.use_intra:
                branches.append(intra)
            if self.use_inter:
                branches.append(inter)
        elif self.use_class_center:
            branches.append(values)

        if class_centers is not None:
            branches = [self._associate(branch, class_centers) for branch in branches]  # F̃_intra, F̃_inter
        context = [branch.transpose(1, 2).reshape(batch, -1, height, width) for branch in branches]
        fused = self.fuse(torch.cat([features, *context], dim=1))  # eq. 3.8
        outputs["logits"] = self.classifier(self.dropout(fused))
        return outputs

    def losses(self, outputs: dict[str, Tensor], target: Tensor) -> dict[str, Tensor]:
        """Weighted affinity (eq. 3.9) and auxiliary (eq. 3.10) terms; the main CE is the segmentor's."""
        losses: dict[str, Tensor] = {}
        if self.aux_loss_weight > 0 and "coarse_logits" in outputs:
            coarse = F.interpolate(
                outputs["coarse_logits"], size=target.shape[-2:], mode="bilinear", align_corners=False
            )
            losses["loss_aux"] = self.aux_loss_weight * F.cross_entropy(coarse, target, ignore_index=self.ignore_index)
        if self.affinity_loss_weight > 0:
            if "affinity_softplus_sum" not in outputs:
                raise KeyError("affinity loss needs forward(features, target) with the target given")
            height, width = outputs["logits"].shape[-2:]
            labels = downsample_labels(target, (height, width)).flatten(1)
            losses["loss_affinity"] = self.affinity_loss_weight * affinity_bce_loss(
                outputs["affinity_softplus_sum"],
                outputs["affinity_query"],
                outputs["affinity_key"],
                labels,
                self.num_classes,
                self.ignore_index,
            )
        return losses

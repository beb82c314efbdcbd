"""SAM's mask loss (Kirillov et al. 2023, §3 and appendix A "Training algorithm").

Mask prediction is supervised by a linear combination of focal and dice loss, 20 : 1; with several
output masks (an ambiguous single-point prompt) only the mask of lowest loss is back-propagated.
The IoU head regresses each output mask's IoU with the ground truth (MSE, weight 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss


def dice_loss(mask_logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 − (2|P∩G| + s) / (|P| + |G| + s)`` per mask on sigmoid probabilities (DETR's form).

    ``(..., H, W)`` → ``(...)``."""
    probabilities = mask_logits.sigmoid().flatten(-2)
    targets = targets.flatten(-2)
    overlap = (probabilities * targets).sum(-1)
    return 1 - (2 * overlap + smooth) / (probabilities.sum(-1) + targets.sum(-1) + smooth)


def mask_iou(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of the masks ``logits > 0`` with ``targets`` (``(..., H, W)`` → ``(...)``; 0 for two empty masks)."""
    predicted = (mask_logits > 0).flatten(-2)
    truth = targets.flatten(-2) > 0.5
    intersection = (predicted & truth).sum(-1).float()
    union = (predicted | truth).sum(-1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.zeros_like(union))


def sam_mask_loss(
    mask_logits: torch.Tensor,
    iou_predictions: torch.Tensor,
    targets: torch.Tensor,
    *,
    focal_weight: float = 20.0,
    dice_weight: float = 1.0,
    iou_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """SAM's loss for ``mask_logits`` ``(N, M, H, W)`` (M output masks per prompt), their predicted IoU
    ``(N, M)`` and the ground-truth masks ``targets`` ``(N, H, W)`` in {0, 1}.

    Per mask: ``focal_weight · focal + dice_weight · dice`` (focal: α = 0.25, γ = 2, mean over pixels);
    per prompt the smallest over its M masks; plus ``iou_weight ·`` MSE(IoU prediction, IoU of every mask).
    Returns ``{"focal", "dice", "iou", "loss"}`` (the first three of the chosen masks, means over prompts).
    """
    expanded = targets.unsqueeze(1).expand_as(mask_logits).to(mask_logits.dtype)
    focal = sigmoid_focal_loss(mask_logits, expanded, alpha=0.25, gamma=2.0, reduction="none").mean((-2, -1))
    dice = dice_loss(mask_logits, expanded)
    per_mask = focal_weight * focal + dice_weight * dice
    chosen = per_mask.argmin(dim=1, keepdim=True)  # only the lowest-loss mask is back-propagated
    iou_target = mask_iou(mask_logits.detach(), expanded)
    iou = F.mse_loss(iou_predictions, iou_target)
    mask = per_mask.gather(1, chosen).mean()
    return {
        "focal": focal.gather(1, chosen).mean(),
        "dice": dice.gather(1, chosen).mean(),
        "iou": iou,
        "loss": mask + iou_weight * iou,
    }

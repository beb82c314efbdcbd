"""SAM's mask loss (losses.sam): dice and IoU by hand, 20 focal + dice on the lowest-loss mask only."""

from __future__ import annotations

import torch
from torchvision.ops import sigmoid_focal_loss

from seg_pipelines.losses.sam import dice_loss, mask_iou, sam_mask_loss


def test_dice_and_iou_by_hand():
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    logits = torch.tensor([[0.0, 100.0], [100.0, -100.0]])  # probabilities 0.5, 1, 1, 0
    # 1 - (2 · 1.5 + 1) / (2.5 + 2 + 1) = 1 - 4 / 5.5
    torch.testing.assert_close(dice_loss(logits, targets), torch.tensor(1 - 4 / 5.5))
    # predicted {(0, 1), (1, 0)} (0 is not > 0), truth {(0, 0), (0, 1)}: 1 / 3
    torch.testing.assert_close(mask_iou(logits, targets), torch.tensor(1 / 3))
    assert mask_iou(torch.full((2, 2), -1.0), torch.zeros(2, 2)).item() == 0.0


def test_sam_loss_backpropagates_the_lowest_loss_mask_only():
    torch.manual_seed(0)
    targets = torch.zeros(2, 4, 4)
    targets[:, :2] = 1
    logits = torch.randn(2, 3, 4, 4)
    logits[0, 1] = 8 * (2 * targets[0] - 1)  # prompt 0: mask 1 is right
    logits[1, 2] = 8 * (2 * targets[1] - 1)  # prompt 1: mask 2 is right
    logits.requires_grad_(True)
    iou_predictions = torch.full((2, 3), 0.5, requires_grad=True)
    terms = sam_mask_loss(logits, iou_predictions, targets)
    expanded = targets.unsqueeze(1).expand(2, 3, 4, 4)
    focal = sigmoid_focal_loss(logits, expanded, alpha=0.25, gamma=2.0, reduction="none").mean((-2, -1))
    per_mask = 20 * focal + dice_loss(logits, expanded)
    chosen = per_mask[[0, 1], [1, 2]]
    iou_target = mask_iou(logits.detach(), expanded)
    assert iou_target[0, 1] == 1.0 and iou_target[1, 2] == 1.0
    torch.testing.assert_close(terms["loss"], chosen.mean() + ((iou_predictions - iou_target) ** 2).mean())
    terms["loss"].backward()
    grad_per_mask = logits.grad.abs().sum((-2, -1))
    assert grad_per_mask[0, 1] > 0 and grad_per_mask[1, 2] > 0
    assert grad_per_mask[0, [0, 2]].sum() == 0 and grad_per_mask[1, [0, 1]].sum() == 0
    assert iou_predictions.grad.abs().sum() > 0  # the IoU head learns on every mask

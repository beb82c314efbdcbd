"""Evaluation: confusion matrices, the two mIoU protocols and the inference modes (DESIGN.md §6).

* ``closed_set`` (MMSegmentation): IoU_c = I_c / U_c over the whole split; mIoU = nanmean, so a
  class absent from both prediction and ground truth is skipped, but a class predicted and absent
  from the ground truth counts 0.
* ``open_vocabulary`` (detectron2 / CAT-Seg): mean only over classes with ground-truth pixels.

Inference modes take a ``predict`` callable mapping a normalised image batch ``(B,3,H,W)`` to
logits ``(B,K,H,W)``: ``whole``, ``slide`` (overlapping windows, logits averaged where they
overlap) and ``multi_scale`` (rescaled copies, optionally flipped, softmax scores averaged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Predict = Callable[[torch.Tensor], torch.Tensor]
Protocol = Literal["closed_set", "open_vocabulary"]


class ConfusionMatrix:
    """Accumulates a ``K×K`` confusion matrix (rows: ground truth, columns: prediction)."""

    def __init__(self, num_classes: int, ignore_index: int) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted ids and ground-truth ids of the same shape."""
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != self.ignore_index
        truth, predicted = target[valid].long(), prediction[valid].long()
        if truth.numel() and (truth.min() < 0 or truth.max() >= self.num_classes):
            raise ValueError(
                f"target holds ids outside 0..{self.num_classes - 1} other than ignore {self.ignore_index}"
            )
        if predicted.numel() and (predicted.min() < 0 or predicted.max() >= self.num_classes):
            raise ValueError(f"prediction holds ids outside 0..{self.num_classes - 1}")
        flat = truth.cpu() * self.num_classes + predicted.cpu()
        self.matrix += torch.bincount(flat, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)


@dataclass
class SegmentationScores:
    """Per-class IoU/accuracy and the summary numbers of one evaluation."""

    iou: np.ndarray  # NaN where the class is not counted by the protocol
    accuracy: np.ndarray
    ground_truth_pixels: np.ndarray
    predicted_pixels: np.ndarray
    miou: float
    macc: float
    aacc: float
    protocol: str

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}mIoU": self.miou, f"{prefix}mAcc": self.macc, f"{prefix}aAcc": self.aacc}


def scores_from_confusion(matrix: torch.Tensor | np.ndarray, protocol: Protocol = "closed_set") -> SegmentationScores:
    """IoU_c = TP / (TP + FP + FN) per class and the protocol's mean (see module docstring)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    ground_truth = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    union = ground_truth + predicted - true_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = true_positive / union  # NaN where union == 0
        accuracy = true_positive / ground_truth
    if protocol == "open_vocabulary":
        iou = np.where(ground_truth > 0, iou, np.nan)
    elif protocol != "closed_set":
        raise ValueError(f"unknown protocol {protocol!r}; use 'closed_set' or 'open_vocabulary'")
    counted = ~np.isnan(iou)
    return SegmentationScores(
        iou=iou,
        accuracy=accuracy,
        ground_truth_pixels=ground_truth,
        predicted_pixels=predicted,
        miou=float(np.mean(iou[counted])) if counted.any() else float("nan"),
        macc=float(np.nanmean(accuracy)) if (ground_truth > 0).any() else float("nan"),
        aacc=float(true_positive.sum() / max(ground_truth.sum(), 1)),
        protocol=protocol,
    )


def chance_iou(ground_truth_pixels: np.ndarray) -> np.ndarray:
    """Expected per-class IoU of a uniform random predictor over the K classes (NaN where the class
    has no ground-truth pixels): with n_c pixels of class c among N, TP = n_c/K, FP = (N − n_c)/K and
    FN = n_c(1 − 1/K), so IoU_c = n_c / (N + n_c(K − 1)). A tiny class's chance IoU is about its
    pixel share, which is why "chance" for rare classes is far below 1/K."""
    counts = np.asarray(ground_truth_pixels, dtype=np.float64)
    total, num_classes = counts.sum(), len(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = counts / (total + counts * (num_classes - 1))
    return np.where(counts > 0, iou, np.nan)


def chance_miou(ground_truth_pixels: np.ndarray, protocol: Protocol = "closed_set") -> float:
    """mIoU (fraction) of a uniform random predictor under ``protocol``, from :func:`chance_iou`: the
    open-vocabulary mean counts classes with ground-truth pixels only; the closed-set mean also counts
    each class without any as 0 (a random predictor predicts it somewhere, so its union is not empty)."""
    iou = chance_iou(ground_truth_pixels)
    if protocol == "closed_set":
        iou = np.nan_to_num(iou, nan=0.0)
    elif protocol != "open_vocabulary":
        raise ValueError(f"unknown protocol {protocol!r}; use 'closed_set' or 'open_vocabulary'")
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def map_predictions_to_background(prediction: torch.Tensor, first_id: int, background_id: int) -> torch.Tensor:
    """VOC-21b rule: every predicted id ``>= first_id`` becomes ``background_id``."""
    return torch.where(prediction >= first_id, torch.full_like(prediction, background_id), prediction)


# --- inference modes -------------------------------------------------------------------------


def predict_whole(predict: Predict, images: torch.Tensor) -> torch.Tensor:
    logits = predict(images)
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def predict_slide(
    predict: Predict, images: torch.Tensor, crop_size: Sequence[int], stride: Sequence[int]
) -> torch.Tensor:
    """MMSegmentation's sliding window: windows of ``crop_size`` every ``stride`` (the last window
    aligned to the border), logits averaged over overlapping windows."""
    batch, _, height, width = images.shape
    crop_h, crop_w = crop_size
    stride_h, stride_w = stride
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    summed: torch.Tensor | None = None
    count = images.new_zeros(batch, 1, height, width)
    for row in range(rows):
        for col in range(cols):
            y0 = min(row * stride_h, max(height - crop_h, 0))
            x0 = min(col * stride_w, max(width - crop_w, 0))
            y1, x1 = min(y0 + crop_h, height), min(x0 + crop_w, width)
            window = predict_whole(predict, images[:, :, y0:y1, x0:x1])
            if summed is None:
                summed = images.new_zeros(batch, window.shape[1], height, width)
            summed[:, :, y0:y1, x0:x1] += window
            count[:, :, y0:y1, x0:x1] += 1
    assert summed is not None
    return summed / count


def predict_multi_scale(
    predict: Predict,
    images: torch.Tensor,
    scales: Iterable[float] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75),
    flip: bool = True,
) -> torch.Tensor:
    """Average of softmax scores over rescaled (and horizontally flipped) copies, at input size."""
    size = images.shape[-2:]
    total: torch.Tensor | None = None
    views = 0
    for scale in scales:
        scaled_size = [max(int(round(s * scale)), 1) for s in size]
        scaled = F.interpolate(images, size=scaled_size, mode="bilinear", align_corners=False)
        for flipped in (False, True) if flip else (False,):
            view = scaled.flip(-1) if flipped else scaled
            logits = predict_whole(predict, view)
            if flipped:
                logits = logits.flip(-1)
            scores = F.interpolate(logits, size=size, mode="bilinear", align_corners=False).softmax(dim=1)
            total = scores if total is None else total + scores
            views += 1
    assert total is not None
    return total / views


def upsampled_argmax(scores: torch.Tensor, size: tuple[int, int], max_band_values: int = 1 << 24) -> torch.Tensor:
    """``argmax`` over classes of ``scores`` (1, C, h, w) bilinearly resized to ``size`` (H, W), equal to
    ``F.interpolate(scores, size, mode="bilinear", align_corners=False).argmax(1)[0]`` but computed in
    bands of output rows, so memory stays at about ``max_band_values`` floats instead of C·H·W (a
    150-class map of a 12-megapixel photo is 7 GB in float32)."""
    height, width = int(size[0]), int(size[1])
    if tuple(scores.shape[-2:]) == (height, width):
        return scores.argmax(dim=1)[0]
    channels = scores.shape[1]
    band = max(1, min(height, max_band_values // max(channels * width, 1)))
    # grid_sample with align_corners=False and border padding samples exactly where bilinear
    # interpolation with align_corners=False does: source = (y + 0.5) · h / H − 0.5, clamped
    xs = (torch.arange(width, dtype=scores.dtype, device=scores.device) + 0.5) * (2.0 / width) - 1.0
    label = torch.empty((height, width), dtype=torch.long, device=scores.device)
    for top in range(0, height, band):
        rows = torch.arange(top, min(top + band, height), dtype=scores.dtype, device=scores.device)
        ys = (rows + 0.5) * (2.0 / height) - 1.0
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1).unsqueeze(0)
        resized = F.grid_sample(scores, grid, mode="bilinear", padding_mode="border", align_corners=False)
        label[top : top + len(rows)] = resized.argmax(dim=1)[0]
    return label


def run_inference(predict: Predict, images: torch.Tensor, mode: str = "whole", **options) -> torch.Tensor:
    """Dispatch to ``whole`` | ``slide`` | ``multi_scale``; returns per-class scores at input size."""
    if mode == "whole":
        return predict_whole(predict, images)
    if mode == "slide":
        return predict_slide(predict, images, options["crop_size"], options["stride"])
    if mode == "multi_scale":
        return predict_multi_scale(
            predict, images, options.get("scales", (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)), options.get("flip", True)
        )
    raise ValueError(f"unknown inference mode {mode!r}; use 'whole', 'slide' or 'multi_scale'")


@torch.no_grad()
def evaluate(
    predict: Predict,
    batches: Iterable[dict[str, torch.Tensor]],
    num_classes: int,
    ignore_index: int,
    protocol: Protocol = "closed_set",
    mode: str = "whole",
    background_mapping: tuple[int, int] | None = None,
    **mode_options,
) -> tuple[SegmentationScores, torch.Tensor]:
    """Run ``predict`` over ``batches`` (dicts with ``image`` and ``label``); return the scores and
    the confusion matrix. ``background_mapping=(first_id, background_id)`` applies the VOC-21b rule."""
    confusion = ConfusionMatrix(num_classes, ignore_index)
    for batch in batches:
        scores = run_inference(predict, batch["image"], mode, **mode_options)
        prediction = scores.argmax(dim=1)
        if background_mapping is not None:
            prediction = map_predictions_to_background(prediction, *background_mapping)
        confusion.update(prediction, batch["label"])
    return scores_from_confusion(confusion.matrix, protocol), confusion.matrix

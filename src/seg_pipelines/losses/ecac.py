"""ECAC losses, thesis chapter 4 (eq. 4.11–4.21).

All per-pixel terms take logits (B, K, h, w) and integer labels (B, h, w) at the same resolution;
pixels labelled ``ignore_index`` contribute nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seg_pipelines.datasets.statistics import class_weights_from_frequencies as dataset_class_weights
from seg_pipelines.losses.affinity import valid_one_hot


def class_weights_from_frequencies(frequencies: Tensor | Sequence[float], rho: float = 1.0) -> Tensor:
    """Eq. 4.14 as a float32 tensor; the one implementation is
    :func:`seg_pipelines.datasets.statistics.class_weights_from_frequencies`."""
    values = np.asarray(torch.as_tensor(frequencies, dtype=torch.float64))
    return torch.as_tensor(dataset_class_weights(values, rho), dtype=torch.float32)


def reweighted_cross_entropy(
    logits: Tensor, target: Tensor, class_weights: Tensor | None, ignore_index: int = 255
) -> Tensor:
    """Eq. 4.13 ``L_rce = w_c · L_ce``, as PyTorch's weighted mean ``Σ_i w_{y_i} ce_i / Σ_i w_{y_i}``.

    ``logits`` are resized bilinearly to the target resolution first. ``class_weights=None`` is the
    plain CE.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    weight = None if class_weights is None else class_weights.to(device=logits.device, dtype=logits.dtype)
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


#: How eq. 4.12 averages its per-class terms: ``"all_classes"`` divides by C, every class of the
#: label space (the thesis's 1/C, L1008); ``"present_classes"`` by |C_present|, the classes with a
#: labelled pixel in the batch (the loss before issue 28: larger by C/|C_present|).
KL_AVERAGES = ("all_classes", "present_classes")


def entropy_weighted_kl_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    ignore_index: int = 255,
    *,
    average: str,
) -> Tensor:
    """Eq. 4.12: class-balanced, teacher-entropy-weighted KL(teacher ‖ student).

    ``(1/C) Σ_k Σ_i B_k^i H^i KL_i / Σ_i B_k^i H^i`` with B_k the ground-truth mask of class k over
    the batch and H^i the entropy of the teacher distribution at pixel i; a class with no pixel
    contributes 0 to the sum. ``average`` (:data:`KL_AVERAGES`; the setting's default is the ECAC
    block's, ``seg_pipelines.parameters.ECACConfig``) picks the divisor: C (the thesis) or the number
    of classes present. We use the true KL ``Σ_c p_t (log p_t − log p_s)`` (eq. 4.11
    writes the cross-entropy, which differs by the teacher entropy, a constant for the student), so
    the loss is 0 when student == teacher.
    """
    if average not in KL_AVERAGES:
        raise ValueError(f"unknown KL average {average!r}; known: {KL_AVERAGES}")
    num_classes = student_logits.shape[1]
    log_student = F.log_softmax(student_logits, dim=1)
    log_teacher = F.log_softmax(teacher_logits, dim=1)
    teacher_prob = log_teacher.exp()
    kl = (teacher_prob * (log_teacher - log_student)).sum(dim=1).flatten()  # (B·h·w,)
    entropy = -(teacher_prob * log_teacher).sum(dim=1).flatten()  # H^i
    class_masks = valid_one_hot(labels.flatten(), num_classes, ignore_index, dtype=kl.dtype)  # B_k^i
    weighted_masks = class_masks * entropy[:, None]
    numerator = (weighted_masks * kl[:, None]).sum(dim=0)
    denominator = weighted_masks.sum(dim=0)
    present = class_masks.sum(dim=0) > 0
    if not present.any():
        return kl.sum() * 0.0
    per_class = numerator[present] / denominator[present].clamp_min(1e-12)
    divisor = num_classes if average == "all_classes" else int(present.sum())  # eq. 4.12: 1/C
    return per_class.sum() / divisor


def intra_class_cosine_similarity(logits: Tensor, labels: Tensor, ignore_index: int = 255) -> tuple[Tensor, Tensor]:
    """Eq. 4.15–4.18: cosine between each pixel's output and its class's mean output in the image.

    Returns ``(similarity (B, h·w), valid (B, h·w) bool)``.
    """
    batch, num_classes = logits.shape[:2]
    outputs = logits.flatten(2).transpose(1, 2)  # (B, N, K)
    one_hot = valid_one_hot(labels.flatten(1), num_classes, ignore_index, dtype=outputs.dtype)  # (B, N, K)
    counts = one_hot.sum(dim=1)  # N_c
    centers = torch.bmm(one_hot.transpose(1, 2), outputs) / counts.clamp_min(1.0)[..., None]  # CenterSeg
    pixel_centers = torch.bmm(one_hot, centers)  # the centre of each pixel's own class
    similarity = F.cosine_similarity(outputs, pixel_centers, dim=-1, eps=1e-8)
    return similarity, one_hot.sum(dim=-1) > 0


def intra_variance_loss(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, ignore_index: int = 255
) -> Tensor:
    """Eq. 4.19: ``MSE(D_intraS, D_intraT)`` over valid pixels."""
    student_similarity, valid = intra_class_cosine_similarity(student_logits, labels, ignore_index)
    teacher_similarity, _ = intra_class_cosine_similarity(teacher_logits, labels, ignore_index)
    if not valid.any():
        return student_similarity.sum() * 0.0
    return F.mse_loss(student_similarity[valid], teacher_similarity[valid])


def memory_loss(memory_logits: Tensor, labels: Tensor, ignore_index: int = 255) -> Tensor:
    """Eq. 4.20: pixel-wise CE of ``softmax(C_m)``, C_m the pixel-to-memory-bank logits."""
    if not (labels != ignore_index).any():
        return memory_logits.sum() * 0.0
    return F.cross_entropy(memory_logits, labels, ignore_index=ignore_index)

"""Category filtering module (CFM, thesis 5.2.5, eq. 5.3–5.6).

Keeps, per image, the k classes whose cost map responds most and recomputes the cost volume for
them only, so the expensive refinement runs on k ≪ K classes. The same mechanism is CAT-Seg's
many-class handling (its ``pad_len``), so both models share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cost_volume import batched_text_embeddings, cosine_cost_volume

FILTERED_CLASS_LOGIT = -100.0  # score given to filtered-out classes (CAT-Seg's value)


@dataclass
class FilteredCost:
    """cost: (B, P, k, H, W) cost volume M'; text: (B, k, P, D) normalised T'; indices: (B, k) into K."""

    cost: torch.Tensor
    text: torch.Tensor
    indices: torch.Tensor | None
    num_classes: int


def class_max_response(cost: torch.Tensor) -> torch.Tensor:
    """A = max_{h,w,d} M  (eq. 5.3): (B, P, K, H, W) → (B, K), max over space and prompts."""
    return cost.transpose(1, 2).flatten(2).amax(dim=-1)


def top_class_indices(cost: torch.Tensor, k: int) -> torch.Tensor:
    """I_k = TopK(A, k)  (eq. 5.4): (B, k) class indices, highest response first."""
    return class_max_response(cost).topk(k, dim=-1, sorted=True).indices


def gather_classes(text_embeddings: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """T' = Gather(Norm(T), I_k)  (eq. 5.5): (B, K, P, D) × (B, k) → (B, k, P, D), L2-normalised."""
    normalised = F.normalize(text_embeddings, dim=-1)
    index = indices[:, :, None, None].expand(-1, -1, normalised.shape[2], normalised.shape[3])
    return torch.gather(normalised, dim=1, index=index)


def scatter_class_logits(
    logits: torch.Tensor, indices: torch.Tensor | None, num_classes: int, fill_value: float = FILTERED_CLASS_LOGIT
) -> torch.Tensor:
    """Put (B, k, H, W) logits of the kept classes back into (B, K, H, W); others get ``fill_value``."""
    if indices is None:
        return logits
    full = logits.new_full((logits.shape[0], num_classes, *logits.shape[2:]), fill_value)
    index = indices[:, :, None, None].expand(-1, -1, *logits.shape[2:])
    return full.scatter(1, index, logits)


class CategoryFilter(nn.Module):
    """Cost volume with top-k class filtering when the vocabulary exceeds ``top_k`` (eq. 5.2–5.6).

    Args:
        top_k: classes kept per image (thesis Table 5.5: k = 32); 0 or None disables filtering.
    """

    def __init__(self, top_k: int | None = 32) -> None:
        super().__init__()
        self.top_k = top_k or 0

    def forward(self, image_features: torch.Tensor, text_embeddings: torch.Tensor) -> FilteredCost:
        text = batched_text_embeddings(text_embeddings, image_features.shape[0])
        num_classes = text.shape[1]
        cost = cosine_cost_volume(image_features, text)  # M, eq. 5.2
        if not self.top_k or num_classes <= self.top_k:
            return FilteredCost(cost, F.normalize(text, dim=-1), None, num_classes)
        indices = top_class_indices(cost, self.top_k)  # eq. 5.3–5.4
        kept_text = gather_classes(text, indices)  # eq. 5.5
        kept_cost = cosine_cost_volume(image_features, kept_text)  # M', eq. 5.6
        return FilteredCost(kept_cost, kept_text, indices, num_classes)

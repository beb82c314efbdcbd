"""Cosine cost volume between dense image features and per-class prompt embeddings (thesis eq. 5.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batched_text_embeddings(text_embeddings: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(K, P, D) shared or (B, K, P, D) per-sample text embeddings → (B, K, P, D)."""
    if text_embeddings.dim() == 2:  # (K, D): one prompt per class
        text_embeddings = text_embeddings.unsqueeze(1)
    if text_embeddings.dim() == 3:
        return text_embeddings.unsqueeze(0).expand(batch_size, -1, -1, -1)
    if text_embeddings.dim() == 4 and text_embeddings.shape[0] == batch_size:
        return text_embeddings
    raise ValueError(f"text embeddings must be (K, P, D) or (B, K, P, D), got {tuple(text_embeddings.shape)}")


def cosine_cost_volume(image_features: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """M_(i,j,n) = E_(i,j)·T_n / (|E_(i,j)| |T_n|)  (eq. 5.2), for every prompt.

    Args:
        image_features: (B, D, H, W) dense image features E.
        text_embeddings: (K, P, D) or (B, K, P, D) embeddings T of K classes × P prompts.
    Returns:
        cost volume (B, P, K, H, W).
    """
    text = F.normalize(batched_text_embeddings(text_embeddings, image_features.shape[0]), dim=-1)
    image = F.normalize(image_features, dim=1)
    return torch.einsum("bdhw,bkpd->bpkhw", image, text)


def class_text_guidance(text_embeddings: torch.Tensor) -> torch.Tensor:
    """Per-class text guidance: mean of normalised prompt embeddings, re-normalised; (B, K, P, D) → (B, K, D)."""
    return F.normalize(F.normalize(text_embeddings, dim=-1).mean(dim=-2), dim=-1)

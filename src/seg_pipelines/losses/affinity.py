"""CAA semantic-affinity maths without the O((HW)^2) matrices (thesis ch. 3, eq. 3.2, 3.3, 3.9).

With queries ``q_i = φ(F)_i`` and keys ``k_j = ψ(F)_j`` the affinity logits are ``z_ij = q_i·k_j`` and
the affinity map is ``M = σ(z)``. Everything the module and its loss need from the N×N matrix is

* ``M V`` (eq. 3.2) and ``(1 − M) V = 1ᵀV − M V`` (eq. 3.3),
* the affinity BCE (eq. 3.9), rewritten with ``−log σ(z) = softplus(z) − z`` and
  ``−log(1 − σ(z)) = softplus(z)`` as ``Σ_ij w_i w_j softplus(z_ij) − Σ_ij g_ij z_ij``, where the
  ground-truth term collapses to class sums, ``Σ_ij g_ij z_ij = Σ_c (Σ_{i∈c} q_i)·(Σ_{j∈c} k_j)``.

:class:`ChunkedSigmoidAffinity` computes ``M V`` and ``Σ w_i w_j softplus(z_ij)`` in row blocks in
forward *and* backward, so peak memory is O(B × chunk × N) instead of O(B × N²).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


class ChunkedSigmoidAffinity(torch.autograd.Function):
    """``(σ(Q Kᵀ) V, Σ_ij w_i w_j softplus(q_i·k_j))`` computed in row blocks of ``chunk_size``.

    Shapes: ``query``/``key`` (B, N, Dk), ``value`` (B, N, Dv), ``pair_weights`` (B, N) or None.
    Returns ``aggregated`` (B, N, Dv) and ``softplus_sum`` (B,) (zeros when ``pair_weights`` is None).
    """

    @staticmethod
    def forward(ctx, query: Tensor, key: Tensor, value: Tensor, pair_weights: Tensor | None, chunk_size: int):
        batch, num_pixels, _ = query.shape
        aggregated = value.new_empty(batch, num_pixels, value.shape[-1])
        softplus_sum = query.new_zeros(batch)
        key_t = key.transpose(1, 2)
        for start in range(0, num_pixels, chunk_size):
            stop = min(start + chunk_size, num_pixels)
            logits = torch.bmm(query[:, start:stop], key_t)  # z_ij for a row block, (B, c, N)
            aggregated[:, start:stop] = torch.bmm(torch.sigmoid(logits), value)  # eq. 3.2, MV
            if pair_weights is not None:
                pair = pair_weights[:, start:stop, None] * pair_weights[:, None, :]
                softplus_sum += (F.softplus(logits) * pair).sum(dim=(1, 2))
        ctx.save_for_backward(query, key, value, pair_weights)
        ctx.chunk_size = chunk_size
        return aggregated, softplus_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_aggregated: Tensor, grad_softplus_sum: Tensor):
        query, key, value, pair_weights = ctx.saved_tensors
        chunk_size = ctx.chunk_size
        num_pixels = query.shape[1]
        grad_query = torch.zeros_like(query)
        grad_key = torch.zeros_like(key)
        grad_value = torch.zeros_like(value)
        key_t = key.transpose(1, 2)
        value_t = value.transpose(1, 2)
        for start in range(0, num_pixels, chunk_size):
            stop = min(start + chunk_size, num_pixels)
            q_block = query[:, start:stop]
            affinity = torch.sigmoid(torch.bmm(q_block, key_t))  # recomputed M block, (B, c, N)
            g_block = grad_aggregated[:, start:stop]
            grad_value += torch.bmm(affinity.transpose(1, 2), g_block)
            # d/dz of <G, σ(z)V> is (G Vᵀ) ⊙ σ(z)(1 − σ(z)); d/dz softplus(z) = σ(z).
            grad_logits = torch.bmm(g_block, value_t) * (1.0 - affinity)
            if pair_weights is not None:
                pair = pair_weights[:, start:stop, None] * pair_weights[:, None, :]
                grad_logits = grad_logits + grad_softplus_sum[:, None, None] * pair
            grad_logits = grad_logits * affinity
            grad_query[:, start:stop] = torch.bmm(grad_logits, key)
            grad_key += torch.bmm(grad_logits.transpose(1, 2), q_block)
        return grad_query, grad_key, grad_value, None, None


def chunked_sigmoid_affinity(
    query: Tensor, key: Tensor, value: Tensor, pair_weights: Tensor | None = None, chunk_size: int = 256
) -> tuple[Tensor, Tensor]:
    """Memory-efficient ``(σ(Q Kᵀ) V, Σ_ij w_i w_j softplus(z_ij))``; see :class:`ChunkedSigmoidAffinity`."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return ChunkedSigmoidAffinity.apply(query, key, value, pair_weights, chunk_size)


def affinity_ground_truth_term(
    query: Tensor, key: Tensor, labels: Tensor, num_classes: int, ignore_index: int
) -> Tensor:
    """``Σ_ij g_ij z_ij`` per image, g = one-hot(labels)·one-hot(labels)ᵀ, never materialised.

    ``labels`` (B, N) at feature resolution; ignored pixels have an all-zero one-hot row.
    Returns (B,).
    """
    one_hot = valid_one_hot(labels, num_classes, ignore_index, dtype=query.dtype)  # (B, N, K)
    class_query_sums = torch.bmm(one_hot.transpose(1, 2), query)  # Σ_{i∈c} q_i, (B, K, Dk)
    class_key_sums = torch.bmm(one_hot.transpose(1, 2), key)  # Σ_{j∈c} k_j
    return (class_query_sums * class_key_sums).sum(dim=(1, 2))


def valid_one_hot(labels: Tensor, num_classes: int, ignore_index: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot (…, K) of integer labels with all-zero rows at ``ignore_index`` (and any label ≥ K)."""
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    return F.one_hot(safe, num_classes).to(dtype) * valid.unsqueeze(-1).to(dtype)


def affinity_bce_loss(
    softplus_sum: Tensor,
    query: Tensor,
    key: Tensor,
    labels: Tensor,
    num_classes: int,
    ignore_index: int = 255,
) -> Tensor:
    """Affinity BCE (eq. 3.9) averaged over all valid pixel pairs of the batch.

    ``softplus_sum`` is the second output of :func:`chunked_sigmoid_affinity` computed with
    ``pair_weights = (labels != ignore)``; pairs touching an ignored pixel are excluded.
    """
    valid = ((labels != ignore_index) & (labels >= 0) & (labels < num_classes)).to(query.dtype)
    num_pairs = (valid.sum(dim=1) ** 2).sum()
    gt_term = affinity_ground_truth_term(query, key, labels, num_classes, ignore_index)
    return (softplus_sum - gt_term).sum() / num_pairs.clamp_min(1.0)


def naive_affinity_bce_loss(
    query: Tensor, key: Tensor, labels: Tensor, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """Reference eq. 3.9 that materialises the N×N ground-truth affinity (tests and benchmarks only)."""
    one_hot = valid_one_hot(labels, num_classes, ignore_index, dtype=query.dtype)
    affinity_target = torch.bmm(one_hot, one_hot.transpose(1, 2))  # L = Ḡ Ḡᵀ (Figure 3.5)
    valid = ((labels != ignore_index) & (labels >= 0) & (labels < num_classes)).to(query.dtype)
    pair_mask = valid[:, :, None] * valid[:, None, :]
    logits = torch.bmm(query, key.transpose(1, 2))
    bce = F.binary_cross_entropy_with_logits(logits, affinity_target, reduction="none")
    return (bce * pair_mask).sum() / pair_mask.sum().clamp_min(1.0)

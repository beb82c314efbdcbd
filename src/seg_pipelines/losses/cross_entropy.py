"""Pixel cross-entropy of bilinearly upsampled logits, fused (MMSegmentation's decode-head loss).

MMSegmentation computes a segmentor's CE on the logits resized to the label size:
``F.cross_entropy(F.interpolate(logits, size, mode="bilinear"), target, weight, ignore_index)``.
On a CPU that costs far more than the network producing the logits at small widths: the
(B, K, H, W) tensor is written, read by ``log_softmax``, its gradient by ``nll_loss`` filled and
scattered and ``upsample_bilinear2d_backward`` reads it again, each pass over a tensor that is
K·H·W / (h·w) = 64× the head's output at stride 8 (issue 15: ~60% of the default FCN step).

:func:`upsampled_cross_entropy` computes the same value and gradient without keeping it:

* bilinear resizing is separable and linear, ``up = A_h · L · A_wᵀ`` with the interpolation
  matrices of :func:`bilinear_matrix` (PyTorch's own weights: ``F.interpolate`` of an identity),
  so the forward is two small matrix products per image;
* the loss is ``Σ_p w_{t_p} (logsumexp_k up_{k,p} − up_{t_p,p}) / Σ_p w_{t_p}`` over the pixels
  ``p`` whose label is not ``ignore_index`` (``F.cross_entropy``'s ``mean`` with weights);
* the gradient ``∂/∂up = w_{t_p} (softmax(up)_p − onehot(t_p)) / Σ w`` is recomputed per image in
  the backward pass and pulled back with ``A_hᵀ · G · A_w``; only the per-pixel log-sum-exp is kept.

Per image, the upsampled map stays in cache (2.2 MB for 60 classes at 96²); the numbers equal the
unfused two-step loss to float rounding (tested against it, with and without class weights and
ignored pixels, both ``align_corners``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bilinear_matrix(
    in_size: int, out_size: int, align_corners: bool = False, *, dtype=torch.float32, device=None
) -> Tensor:
    """(out_size, in_size) matrix ``A`` with ``A @ x`` = 1-D linear interpolation of ``x`` to
    ``out_size`` exactly as ``F.interpolate(..., mode="bilinear", align_corners=align_corners)``
    resizes each axis (built by interpolating the identity, so the weights are PyTorch's own)."""
    eye = torch.eye(in_size, dtype=dtype, device=device)[None]
    return F.interpolate(eye, size=out_size, mode="linear", align_corners=align_corners)[0].T.contiguous()


def _right_multiply(x: Tensor, matrix: Tensor) -> Tensor:
    """``x @ matrix`` over the last axis as one matrix product (``torch.matmul`` would batch a
    non-contiguous ``x`` into many small ones)."""
    return (x.reshape(-1, x.shape[-1]) @ matrix).view(*x.shape[:-1], matrix.shape[-1])


def _upsample(logits: Tensor, rows_t: Tensor, cols_t: Tensor) -> Tensor:
    """``A_h · L · A_wᵀ`` per (image, class): (c, K, h, w) → (c, K, H, W), two matrix products."""
    by_rows = _right_multiply(logits.transpose(-1, -2), rows_t)  # (c, K, w, H) = (A_h L)ᵀ
    return _right_multiply(by_rows.transpose(-1, -2), cols_t)


def _pull_back(grad: Tensor, rows_t: Tensor, cols_t: Tensor) -> Tensor:
    """``A_hᵀ · G · A_w``, the adjoint of :func:`_upsample`: (c, K, H, W) → (c, K, h, w)."""
    by_cols = _right_multiply(grad, cols_t.T)  # (c, K, H, w)
    return _right_multiply(by_cols.transpose(-1, -2), rows_t.T).transpose(-1, -2)


class _UpsampledCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int, align_corners: bool):
        (height, width), (h, w) = target.shape[-2:], logits.shape[-2:]
        options = {"dtype": logits.dtype, "device": logits.device}
        rows_t = bilinear_matrix(h, height, align_corners, **options).T.contiguous()  # (h, H)
        cols_t = bilinear_matrix(w, width, align_corners, **options).T.contiguous()  # (w, W)
        valid = target != ignore_index
        labels = torch.where(valid, target, 0).long()[:, None]  # (B, 1, H, W)
        pixel_weight = valid.to(logits.dtype) if weight is None else weight.to(logits.dtype)[labels[:, 0]] * valid
        denominator = pixel_weight.sum()
        # softmax of the upsampled logits, kept for the backward pass (the unfused loss keeps the
        # upsampled logits and their log-softmax: twice this)
        probabilities = logits.new_empty((logits.shape[0], logits.shape[1], height, width))
        chunk = 1 if logits.device.type == "cpu" else logits.shape[0]  # CPU: one image's map stays in cache
        total = logits.new_zeros(())
        for start in range(0, logits.shape[0], chunk):
            part = slice(start, start + chunk)
            up = _upsample(logits[part], rows_t, cols_t)
            peak = up.amax(dim=1, keepdim=True)
            exponentials = torch.sub(up, peak, out=probabilities[part]).exp_()
            sums = exponentials.sum(dim=1, keepdim=True)
            nll = peak.add_(sums.log()).sub_(up.gather(1, labels[part]))  # logsumexp − picked logit
            total = total + (nll[:, 0] * pixel_weight[part]).sum()
            exponentials.div_(sums)
        ctx.save_for_backward(probabilities, labels, pixel_weight, rows_t, cols_t, denominator)
        ctx.consumed = False
        return total / denominator.clamp_min(torch.finfo(logits.dtype).tiny)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        if ctx.consumed:  # the saved softmax becomes the gradient in place
            raise RuntimeError("upsampled_cross_entropy supports one backward pass (no retain_graph)")
        ctx.consumed = True
        probabilities, labels, pixel_weight, rows_t, cols_t, denominator = ctx.saved_tensors
        scale = pixel_weight * (grad_output / denominator.clamp_min(torch.finfo(probabilities.dtype).tiny))
        grad = probabilities.new_empty((*probabilities.shape[:2], rows_t.shape[0], cols_t.shape[0]))
        chunk = 1 if probabilities.device.type == "cpu" else probabilities.shape[0]
        for start in range(0, probabilities.shape[0], chunk):
            part = slice(start, start + chunk)
            softmax = probabilities[part]
            softmax.scatter_add_(1, labels[part], torch.full_like(labels[part], -1, dtype=softmax.dtype))
            softmax.mul_(scale[part, None])
            grad[part] = _pull_back(softmax, rows_t, cols_t)
        return grad, None, None, None, None


def upsampled_cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = 255,
    align_corners: bool = False,
) -> Tensor:
    """``F.cross_entropy(F.interpolate(logits, target.shape[-2:], mode="bilinear",
    align_corners=align_corners), target, weight=weight, ignore_index=ignore_index)``, fused (module
    docstring). ``logits`` (B, K, h, w), ``target`` (B, H, W) integer labels; computed in float32
    (as autocast runs ``cross_entropy``). 0 when every pixel is ignored (PyTorch gives NaN)."""
    if logits.dim() != 4 or target.dim() != 3 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"logits (B, K, h, w) and target (B, H, W) expected, got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    with torch.autocast(logits.device.type, enabled=False):
        return _UpsampledCrossEntropy.apply(
            logits.float().contiguous(), target, weight, int(ignore_index), bool(align_corners)
        )

"""Extended Context-Aware Classifier (ECAC) add-on, thesis chapter 4 (eq. 4.1–4.21).

``forward(features, target)`` returns ``"logits"`` — the calibrated student output Õ_s (eq. 4.8,
4.10) at feature resolution, the prediction used at inference — plus, when a target is given,
the teacher output Õ_t (eq. 4.5, 4.9) and the pixel-to-memory logits C_m (eq. 4.20). In training
mode it then updates the memory bank (eq. 4.1–4.2) and the iteration counter.

Loss contract: ECAC's main loss is the *re-weighted* CE on the student (L_rceS, eq. 4.13), so
``losses()`` returns it as ``"loss_ce_main"`` and ``computes_main_loss = True``: the segmentor
must not add its own plain CE on ``"logits"`` as well.

Choices the thesis leaves open (constructor arguments):

* the coarse segmentation F_coarse of eq. 4.6 comes from a 1×1 classifier on F supervised by a
  plain CE (``coarse_loss_weight``, default 0.4 like chapter 3's auxiliary loss; eq. 4.21 has no
  such term, set it to 0 to follow it literally — the coarse head is then trained only through
  the student path).
* the teacher is detached in the KL and intra-variance terms (``detach_teacher``), as in CAC [43].
* the projector ξ is Linear(2d, hidden) → ReLU → Linear(hidden, d); ``hidden = d`` by default.
* L_iv (eq. 4.15–4.19), ``intra_variance_on``: ``"logits"`` is the literal reading (Õ the
  calibrated logits of eq. 4.9–4.10, the thesis env); ``"probabilities"`` takes softmax(Õ), the
  notation of eq. 4.11 (Õ_t · log Õ_s). Why the literal term blew up from iteration 0, and the fix
  (``intra_variance_start_iter``): at initialisation the classifier rows ξ(C_c ⊕ M) are nearly the
  same for every class (ξ's bias and the shared mean feature dominate; C_s of eq. 4.6 is ~ the mean
  feature for every class), so a pixel's logit vector is ~ a·(1, …, 1) with a class-dependent part
  ~20× smaller (measured: mean over classes 0.40 vs spread 0.02). The cosine of eq. 4.15 then
  measures the sign of a — a component softmax and the CE ignore — so D_intraS, D_intraT ≈ ±1 and
  β·MSE is O(β); the cosine's gradient is orthogonal to Õ and ∝ 1/‖Õ‖, so each SGD step *grows*
  the logits (0.9 → 129 in 5 steps), the CE then explodes (1.6 → 18) and the student ends on a few
  classes. Detaching F does not help (the projector and γ, δ do the same); centring the logits
  over classes makes it worse (‖Õ − mean‖ ≈ 0.05 at init). The term is meaningful only once the
  outputs carry class structure, which is the thesis's own reason for delaying L_M ("feature
  stability", §4.2.4): ``intra_variance_start_iter`` can delay L_iv the same way. The text delays
  L_M only ("L_M is activated only after 1,000 iterations", eq. 4.21), so the thesis env keeps L_iv
  on from iteration 0 (``intra_variance_start_iter: 0``, issue 28; on the synthetic world at 200
  iterations the student then learnt nothing, docs/fidelity.md); a run that diverges as above can set
  it to 1,000 (the thesis env's value before issue 28).
* ``intra_variance_detach_features`` (today's variant, with ``"probabilities"``): L_iv evaluated
  on a second student output built from detached F, so it trains the student classifier only.
* eq. 4.3 leaves the teacher centre of a class absent from the image undefined (0/0). As CAC [43]
  does with its base classifier, we use that class's memory entry M_c (``teacher_absent_centers``
  ``"memory"``; ``"zero"``: a zero centre).
* eq. 4.1 / 4.3 resize the GT to the feature map without naming the mode (``label_resize``:
  ``"nearest"`` default, or ``"area"`` memberships), and eq. 4.11–4.12 count "pixels in the image"
  while eq. 4.20 averages over the h·w feature pixels (``pixel_losses_at``: ``"features"`` default,
  or ``"labels"``: L_KL, L_iv and L_M on logits resized to the labels). On the synthetic world at
  the default budget neither alternative raised the tail group (0.00 on 3 seeds for ``"area"``,
  2 seeds for both) and mIoU moved within seed noise.
* C_m (eq. 4.20) is not defined: ``memory_logit_temperature`` τ (15, CAC's cosine temperature)
  gives C_m = τ·cos(M_c, f_i); ``None`` the dot product M F (the bank as a classifier, the thesis
  env), whose L_M started at ≈ 10 (vs ln K for the CE) on the synthetic world.
* ``memory_learning``: "We propose a memory loss for updating the memory bank" (eq. 4.20).
  ``"loss_and_momentum"`` (the thesis env): the bank is a parameter that the optimiser moves with
  ∂L_M/∂M, and after each iteration eq. 4.2 blends in the batch's class means as well (the
  classifiers of eq. 4.4 / 4.7 read the bank detached, so only L_M trains it; F still gets L_M's
  gradient as every term of eq. 4.21). ``"momentum"`` (before): the bank is a buffer moved only by
  eq. 4.2, so L_M shapes F alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from seg_pipelines.losses.affinity import valid_one_hot
from seg_pipelines.losses.ecac import (
    KL_AVERAGES,
    entropy_weighted_kl_loss,
    intra_variance_loss,
    memory_loss,
    reweighted_cross_entropy,
)
from seg_pipelines.models.caa import downsample_labels
from seg_pipelines.models.registry import register_addon

MEMORY_UPDATE_STRATEGIES = ("gt_mean", "cosine")
MEMORY_LEARNING_MODES = ("momentum", "loss_and_momentum")


LABEL_RESIZE_MODES = ("nearest", "area")
PIXEL_LOSS_RESOLUTIONS = ("features", "labels")


def resized_label_masks(
    target: Tensor,
    size: tuple[int, int],
    num_classes: int,
    mode: str = "nearest",
    ignore_index: int = 255,
    dtype=torch.float32,
) -> Tensor:
    """Y of eq. 4.1 / 4.3: class memberships (B, h·w, K) of the labels ``target`` (B, H, W) resized to ``size``.

    The thesis says the ground truth is "resized" to the feature map without a mode:
    ``"nearest"`` keeps one label per feature pixel (0/1 rows, an object smaller than a feature cell
    can vanish); ``"area"`` averages the one-hot labels over each cell (fractional rows that sum to
    the cell's share of non-ignored pixels), so every labelled pixel reaches its class centre.
    """
    if mode not in LABEL_RESIZE_MODES:
        raise ValueError(f"unknown label resize mode {mode!r}; known: {LABEL_RESIZE_MODES}")
    if mode == "nearest" or tuple(target.shape[-2:]) == tuple(size):
        labels = downsample_labels(target, size)
        return valid_one_hot(labels.flatten(1), num_classes, ignore_index, dtype=dtype)
    one_hot = valid_one_hot(target, num_classes, ignore_index, dtype=dtype).permute(0, 3, 1, 2)  # (B, K, H, W)
    return F.interpolate(one_hot, size=size, mode="area").flatten(2).transpose(1, 2)


def memory_class_statistics(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    memory: Tensor,
    strategy: str = "gt_mean",
    ignore_index: int = 255,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class (weighted feature sums (K, d), weight totals (K,), pixel counts (K,)) of one batch.

    ``features`` (B, d, h, w); ``labels`` integer (B, h, w) or class memberships (B, h·w, K) from
    :func:`resized_label_masks` (pixel counts are then the summed memberships). ``gt_mean`` weights
    every pixel by its membership (eq. 4.1, Z = Y F / K_i). ``cosine`` (MCIBI's strategy, Table 4.4)
    weights pixel i of class c by ``1 − cos(f_i, M_c)`` as well, so pixels the bank already
    represents well count less. Sums rather than means so that DDP ranks can all_reduce them.
    """
    if strategy not in MEMORY_UPDATE_STRATEGIES:
        raise ValueError(f"unknown memory update strategy {strategy!r}; known: {MEMORY_UPDATE_STRATEGIES}")
    pixels = features.flatten(2).transpose(1, 2).reshape(-1, features.shape[1]).to(memory.dtype)
    if labels.is_floating_point():
        one_hot = labels.reshape(-1, num_classes).to(memory.dtype)  # Y_flat (N, K), fractional
    else:
        one_hot = valid_one_hot(labels.reshape(-1), num_classes, ignore_index, dtype=memory.dtype)  # Y_flat (N, K)
    pixel_counts = one_hot.sum(dim=0)
    if strategy == "cosine":
        cosine = F.normalize(pixels, dim=1) @ F.normalize(memory, dim=1).t()  # (N, K)
        one_hot = one_hot * (1.0 - cosine)
    return one_hot.t() @ pixels, one_hot.sum(dim=0), pixel_counts


def momentum_update(
    memory: Tensor,
    initialized: Tensor,
    class_sums: Tensor,
    weight_totals: Tensor,
    pixel_counts: Tensor,
    momentum: float,
) -> tuple[Tensor, Tensor]:
    """Eq. 4.2 ``M_i ← (1 − μ) M_i + μ Z_i`` for classes present in the batch.

    A class seen for the first time is initialised to Z_i; absent classes keep their entry.
    Returns the new (memory, initialized).
    """
    present = pixel_counts > 0
    class_means = class_sums / weight_totals.clamp_min(1e-12)[:, None]  # Z (eq. 4.1)
    blended = torch.where(initialized[:, None], (1.0 - momentum) * memory + momentum * class_means, class_means)
    return torch.where(present[:, None], blended, memory), initialized | present


def soft_class_centers(coarse_logits: Tensor, pixels: Tensor, softmax_over: str) -> Tensor:
    """Eq. 4.6 class centres (B, K, d) from coarse logits (B, K, N) and pixel features (B, d, N)."""
    if softmax_over == "pixels":
        return torch.bmm(torch.softmax(coarse_logits, dim=-1), pixels.transpose(1, 2))
    probabilities = torch.softmax(coarse_logits, dim=1)
    weights = probabilities / probabilities.sum(dim=-1, keepdim=True).clamp_min(1e-6)
    return torch.bmm(weights, pixels.transpose(1, 2))


@register_addon("ecac")
class ExtendedContextAwareClassifier(nn.Module):
    """ECAC: memory bank + GT-teacher / soft-student class centres → dynamic calibrated classifier.

    Args:
        in_channels: feature channels d (the memory bank is K × d).
        num_classes: number of classes K.
        projector_hidden_channels: hidden width of ξ (default d).
        memory_momentum: μ of eq. 4.2.
        memory_update: ``"gt_mean"`` (eq. 4.1, the thesis) or ``"cosine"`` (MCIBI), Table 4.4.
        use_calibration: per-class γ·logit + δ for teacher and student (eq. 4.9–4.10, Table 4.5).
        class_weights: w_c of eq. 4.13 (see :func:`class_weights_from_frequencies`); None = plain CE.
        use_reweighting: use ``class_weights`` in the student/teacher CE (L_rce, Table 4.2).
        teacher_ce_weight: weight of L_rceT in eq. 4.21 (1).
        kl_weight: α of eq. 4.21 (1; 0 switches L_KL off).
        intra_variance_weight: β of eq. 4.21 (50; 0 switches L_iv off).
        memory_loss_weight: weight of L_M in eq. 4.21 (1; 0 switches it off).
        memory_loss_start_iter: L_M is zero before this many training iterations (1,000).
        coarse_loss_weight: CE on the coarse logits of eq. 4.6 (see module docstring).
        detach_teacher: stop gradients from the distillation terms into the teacher.
        cosine_temperature: if set, eq. 4.5 / 4.8 use cosine similarity × this temperature
            (CAC, which ECAC extends, uses 15); ``None`` (default) is the literal dot product
            ``T_ecac · F``.
        student_center_softmax: axis of the softmax in eq. 4.6 (the thesis does not say):
            ``"pixels"`` (default): a softmax over pixels per class (OCR's gather, as CAA's eq. 3.1);
            ``"classes"`` (as CAC): per-pixel class probabilities, each centre their weighted mean
            of pixel features, like the GT mean of eq. 4.3.
        intra_variance_detach_features: L_iv trains only the student classifier (module docstring).
        teacher_absent_centers: ``"memory"`` (M_c) or ``"zero"``: eq. 4.3 centre of absent classes.
        memory_logit_temperature: ``None``: C_m = M F; τ: C_m = τ·cos(M, F) (eq. 4.20).
        intra_variance_on: ``"logits"`` or ``"probabilities"``: what Õ is in eq. 4.15–4.18 (eq. 4.11
            takes log Õ, i.e. treats Õ as softmax probabilities; eq. 4.9–4.10 define Õ as logits).
        intra_variance_start_iter: L_iv is zero before this many training iterations (module docstring).
        memory_learning: ``"momentum"`` (eq. 4.2 only) or ``"loss_and_momentum"`` (L_M trains the
            bank too, eq. 4.20; module docstring).
        label_resize: how the GT is resized to the features for Y of eq. 4.1 / 4.3 (memory bank,
            teacher centres): ``"nearest"`` or ``"area"`` (fractional memberships; see
            :func:`resized_label_masks`).
        kl_average: divisor of eq. 4.12's class sum (:data:`seg_pipelines.losses.ecac.KL_AVERAGES`):
            ``"all_classes"`` (1/C, the text) or ``"present_classes"`` (1/|C_present|, before issue 28).
        pixel_losses_at: resolution of L_KL, L_iv and L_M (eq. 4.12, 4.19, 4.20): ``"features"``
            (labels resized nearest to the logits) or ``"labels"`` (logits resized bilinearly to the
            labels, as the CE of eq. 4.13 and MMSegmentation's losses).
        ignore_index: label ignored by all losses and by the memory update.
    """

    computes_main_loss = True

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        projector_hidden_channels: int | None = None,
        memory_momentum: float = 0.1,
        memory_update: str = "gt_mean",
        use_calibration: bool = True,
        class_weights: Tensor | Sequence[float] | None = None,
        use_reweighting: bool = True,
        teacher_ce_weight: float = 1.0,
        kl_weight: float = 1.0,
        intra_variance_weight: float = 50.0,
        memory_loss_weight: float = 1.0,
        memory_loss_start_iter: int = 1000,
        coarse_loss_weight: float = 0.4,
        detach_teacher: bool = True,
        cosine_temperature: float | None = None,
        student_center_softmax: str = "pixels",
        intra_variance_detach_features: bool = True,
        teacher_absent_centers: str = "memory",
        memory_logit_temperature: float | None = 15.0,
        intra_variance_on: str = "probabilities",
        intra_variance_start_iter: int = 0,
        memory_learning: str = "momentum",
        label_resize: str = "nearest",
        pixel_losses_at: str = "features",
        kl_average: str = "present_classes",
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        if memory_update not in MEMORY_UPDATE_STRATEGIES:
            raise ValueError(f"unknown memory update strategy {memory_update!r}; known: {MEMORY_UPDATE_STRATEGIES}")
        if not 0.0 <= memory_momentum <= 1.0:
            raise ValueError(f"memory_momentum must lie in [0, 1], got {memory_momentum}")
        hidden = projector_hidden_channels or in_channels
        self.num_classes = num_classes
        self.memory_momentum = memory_momentum
        self.memory_update = memory_update
        self.use_calibration = use_calibration
        self.use_reweighting = use_reweighting
        self.teacher_ce_weight = teacher_ce_weight
        self.kl_weight = kl_weight
        self.intra_variance_weight = intra_variance_weight
        self.memory_loss_weight = memory_loss_weight
        self.memory_loss_start_iter = memory_loss_start_iter
        self.coarse_loss_weight = coarse_loss_weight
        self.detach_teacher = detach_teacher
        self.cosine_temperature = cosine_temperature
        if student_center_softmax not in ("classes", "pixels"):
            raise ValueError(f"student_center_softmax must be 'classes' or 'pixels', got {student_center_softmax!r}")
        self.student_center_softmax = student_center_softmax
        if teacher_absent_centers not in ("memory", "zero"):
            raise ValueError(f"teacher_absent_centers must be 'memory' or 'zero', got {teacher_absent_centers!r}")
        self.intra_variance_detach_features = intra_variance_detach_features
        self.teacher_absent_centers = teacher_absent_centers
        self.memory_logit_temperature = memory_logit_temperature
        if intra_variance_on not in ("logits", "probabilities"):
            raise ValueError(f"intra_variance_on must be 'logits' or 'probabilities', got {intra_variance_on!r}")
        self.intra_variance_on = intra_variance_on
        if intra_variance_start_iter < 0:
            raise ValueError(f"intra_variance_start_iter must be >= 0, got {intra_variance_start_iter}")
        self.intra_variance_start_iter = int(intra_variance_start_iter)
        if memory_learning not in MEMORY_LEARNING_MODES:
            raise ValueError(f"memory_learning must be one of {MEMORY_LEARNING_MODES}, got {memory_learning!r}")
        self.memory_learning = memory_learning
        if label_resize not in LABEL_RESIZE_MODES:
            raise ValueError(f"label_resize must be one of {LABEL_RESIZE_MODES}, got {label_resize!r}")
        if pixel_losses_at not in PIXEL_LOSS_RESOLUTIONS:
            raise ValueError(f"pixel_losses_at must be one of {PIXEL_LOSS_RESOLUTIONS}, got {pixel_losses_at!r}")
        if kl_average not in KL_AVERAGES:
            raise ValueError(f"kl_average must be one of {KL_AVERAGES}, got {kl_average!r}")
        self.label_resize = label_resize
        self.pixel_losses_at = pixel_losses_at
        self.kl_average = kl_average
        self.ignore_index = ignore_index

        self.coarse_classifier = nn.Conv2d(in_channels, num_classes, 1)  # F_coarse of eq. 4.6
        self.projector = nn.Sequential(  # ξ of eq. 4.4 / 4.7, shared by teacher and student
            nn.Linear(2 * in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, in_channels)
        )
        if use_calibration:  # eq. 4.9 (teacher) and 4.10 (student): separate γ, δ
            self.teacher_scale = nn.Parameter(torch.ones(num_classes))
            self.teacher_shift = nn.Parameter(torch.zeros(num_classes))
            self.student_scale = nn.Parameter(torch.ones(num_classes))
            self.student_shift = nn.Parameter(torch.zeros(num_classes))
        if memory_learning == "loss_and_momentum":  # eq. 4.20 trains it, eq. 4.2 blends in Z as well
            self.memory_bank = nn.Parameter(torch.zeros(num_classes, in_channels))
        else:
            self.register_buffer("memory_bank", torch.zeros(num_classes, in_channels))
        self.register_buffer("memory_initialized", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        if class_weights is not None:
            class_weights = torch.as_tensor(class_weights, dtype=torch.float32)
            if class_weights.shape != (num_classes,):
                raise ValueError(f"class_weights must have shape ({num_classes},), got {tuple(class_weights.shape)}")
        self.register_buffer("class_weights", class_weights)

    def _classify(self, class_centers: Tensor, memory: Tensor, pixels: Tensor) -> Tensor:
        """ξ(C ⊕ M) · F (eq. 4.4–4.5 / 4.7–4.8). ``class_centers`` (B, K, d), ``pixels`` (B, d, N)."""
        memory = memory.to(class_centers.dtype).expand(class_centers.shape[0], -1, -1)
        classifier = self.projector(torch.cat([class_centers, memory], dim=-1))
        if self.cosine_temperature is not None:
            classifier = F.normalize(classifier, dim=-1)
            pixels = F.normalize(pixels, dim=1)
            return self.cosine_temperature * torch.bmm(classifier, pixels)
        return torch.bmm(classifier, pixels)

    def _calibrate(self, logits: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        if not self.use_calibration:
            return logits
        return scale[None, :, None] * logits + shift[None, :, None]  # eq. 4.9 / 4.10

    def _student(self, features: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Calibrated student logits Õ_s (B, K, N) (eq. 4.6–4.8, 4.10) and the coarse logits."""
        pixels = features.flatten(2)  # F_flat (B, d, N)
        coarse_logits = self.coarse_classifier(features)
        # eq. 4.6: C_s = softmax(F'_coarse) F_flatᵀ (softmax axis: see student_center_softmax).
        student_centers = soft_class_centers(coarse_logits.flatten(2), pixels, self.student_center_softmax)
        student_logits = self._classify(student_centers, memory, pixels)
        if self.use_calibration:
            student_logits = self._calibrate(student_logits, self.student_scale, self.student_shift)
        return student_logits, coarse_logits

    def memory_logits(self, memory: Tensor, pixels: Tensor) -> Tensor:
        """C_m of eq. 4.20 (B, K, N): M F, or τ·cos(M, F) when ``memory_logit_temperature`` is set."""
        memory = memory.to(pixels.dtype)
        if self.memory_logit_temperature is None:
            return torch.einsum("kd,bdn->bkn", memory, pixels)
        cosine = torch.einsum("kd,bdn->bkn", F.normalize(memory, dim=1), F.normalize(pixels, dim=1))
        return self.memory_logit_temperature * cosine

    def forward(self, features: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
        batch, _, height, width = features.shape
        pixels = features.flatten(2)  # F_flat (B, d, N)
        # the bank as it was before this iteration's update; the classifiers read it without gradient,
        # C_m of eq. 4.20 with gradient when L_M trains the bank (memory_learning)
        bank = self.memory_bank.clone()
        memory = bank.detach()
        if self.memory_learning == "loss_and_momentum":
            # a class not seen yet has a zero row: no gradient into it (the cosine's 1/‖M_c‖ would be 1/eps)
            bank = torch.where(self.memory_initialized.clone()[:, None], bank, memory)
        student_logits, coarse_logits = self._student(features, memory)
        outputs = {
            "logits": student_logits.reshape(batch, -1, height, width),
            "coarse_logits": coarse_logits,
        }
        if target is None:
            return outputs

        one_hot = resized_label_masks(  # Y (B, N, K), GT resized to the features (label_resize)
            target, (height, width), self.num_classes, self.label_resize, self.ignore_index, features.dtype
        )
        counts = one_hot.sum(dim=1)  # Σ_i Y_ic
        # eq. 4.3: C_t = Y F / Σ Y (clamp only guards 0/0; a fractional total below 1 is kept)
        teacher_centers = torch.bmm(one_hot.transpose(1, 2), pixels.transpose(1, 2)) / counts.clamp_min(1e-6)[..., None]
        if self.teacher_absent_centers == "memory":  # absent class: its global centre M_c (as CAC [43])
            absent = (counts == 0)[..., None]
            teacher_centers = torch.where(
                absent, memory.to(teacher_centers.dtype).expand_as(teacher_centers), teacher_centers
            )
        teacher_logits = self._classify(teacher_centers, memory, pixels)
        if self.use_calibration:
            teacher_logits = self._calibrate(teacher_logits, self.teacher_scale, self.teacher_shift)
        outputs["teacher_logits"] = teacher_logits.reshape(batch, -1, height, width)
        memory_logits = self.memory_logits(bank, pixels)  # C_m of eq. 4.20
        outputs["memory_logits"] = memory_logits.reshape(batch, -1, height, width)
        if self.intra_variance_weight > 0 and self.intra_variance_detach_features and torch.is_grad_enabled():
            # L_iv's student output: same classifier, no gradient into F (module docstring)
            detached_student, _ = self._student(features.detach(), memory)
            outputs["intra_variance_logits"] = detached_student.reshape(batch, -1, height, width)
        outputs["iteration"] = self.iteration.clone()
        if self.training:
            self.update_memory(features.detach(), one_hot.detach())
            self.iteration += 1
        return outputs

    @torch.no_grad()
    def update_memory(self, features: Tensor, labels: Tensor) -> None:
        """Eq. 4.1–4.2 on labels at feature resolution (integer (B, h, w) or memberships (B, h·w, K));
        sums and counts are all_reduced under DDP."""
        class_sums, weight_totals, pixel_counts = memory_class_statistics(
            features, labels, self.num_classes, self.memory_bank, self.memory_update, self.ignore_index
        )
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            packed = torch.cat([class_sums, weight_totals[:, None], pixel_counts[:, None]], dim=1)
            dist.all_reduce(packed, op=dist.ReduceOp.SUM)
            class_sums, weight_totals, pixel_counts = packed[:, :-2], packed[:, -2], packed[:, -1]
        memory, initialized = momentum_update(
            self.memory_bank, self.memory_initialized, class_sums, weight_totals, pixel_counts, self.memory_momentum
        )
        self.memory_bank.copy_(memory)
        self.memory_initialized.copy_(initialized)

    def losses(self, outputs: dict[str, Tensor], target: Tensor, iteration: int | None = None) -> dict[str, Tensor]:
        """Weighted terms of eq. 4.21 (+ the coarse CE); ``"loss_ce_main"`` is L_rceS.

        ``iteration`` overrides the counter recorded by ``forward`` for the L_M delay.
        """
        if "teacher_logits" not in outputs:
            raise KeyError("ECAC losses need forward(features, target) with the target given")
        weights = self.class_weights if self.use_reweighting else None
        size = tuple(target.shape[-2:]) if self.pixel_losses_at == "labels" else tuple(outputs["logits"].shape[-2:])
        labels = downsample_labels(target, size)

        def at_loss_resolution(logits: Tensor) -> Tensor:  # bilinear, as the CE of eq. 4.13
            if tuple(logits.shape[-2:]) == size:
                return logits
            return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

        # resized once here; the CE resizes to the labels itself when the other terms stay at h×w
        student, teacher = at_loss_resolution(outputs["logits"]), at_loss_resolution(outputs["teacher_logits"])
        losses = {"loss_ce_main": reweighted_cross_entropy(student, target, weights, self.ignore_index)}
        if self.coarse_loss_weight > 0:
            losses["loss_coarse"] = self.coarse_loss_weight * reweighted_cross_entropy(
                outputs["coarse_logits"], target, None, self.ignore_index
            )
        if self.teacher_ce_weight > 0:
            losses["loss_ce_teacher"] = self.teacher_ce_weight * reweighted_cross_entropy(
                teacher, target, weights, self.ignore_index
            )
        distill_teacher = teacher.detach() if self.detach_teacher else teacher
        if self.kl_weight > 0:
            losses["loss_kl"] = self.kl_weight * entropy_weighted_kl_loss(
                student, distill_teacher, labels, self.ignore_index, average=self.kl_average
            )
        step = int(outputs["iteration"]) if iteration is None else int(iteration)
        if self.intra_variance_weight > 0 and step < self.intra_variance_start_iter:
            losses["loss_intra_variance"] = outputs["logits"].sum() * 0.0
        elif self.intra_variance_weight > 0:
            iv_student = (
                at_loss_resolution(outputs["intra_variance_logits"]) if "intra_variance_logits" in outputs else student
            )
            iv_teacher = distill_teacher
            if self.intra_variance_on == "probabilities":
                iv_student, iv_teacher = iv_student.softmax(dim=1), iv_teacher.softmax(dim=1)
            losses["loss_intra_variance"] = self.intra_variance_weight * intra_variance_loss(
                iv_student, iv_teacher, labels, self.ignore_index
            )
        if self.memory_loss_weight > 0:
            if step >= self.memory_loss_start_iter:
                losses["loss_memory"] = self.memory_loss_weight * memory_loss(
                    at_loss_resolution(outputs["memory_logits"]), labels, self.ignore_index
                )
            else:
                losses["loss_memory"] = outputs["memory_logits"].sum() * 0.0
        return losses

"""Training of the open-vocabulary segmentors (CAT-Seg baseline, LSMSeg) on a training vocabulary.

Recipe (thesis 5.3.2): AdamW, initial LR 2e-4, weight decay 1e-4, CLIP image and text encoders
fine-tuned (CLIP_qv, Table 5.10) at a lower LR multiplier, per-pixel BCE (CAT-Seg's loss) against
the training vocabulary (``seen``: unseen pixels are ignored, thesis 5.2.1). The text side is given
as token ids so the text tower is fine-tuned too. Resumable from ``last.pt``.

Not in the thesis, each a switch: ``clip_lr_multiplier`` (1 = off), ``lr_schedule`` (``cosine``
ending at ``min_lr_ratio``·lr, ``poly`` or ``constant``; the thesis says only "initial learning rate"),
``grad_clip_norm`` (null = off) and ``loss_on_kept_classes``. conf/thesis takes CAT-Seg's released
schedule and multiplier (cosine to 0, CLIP at 0.01×: LSMSeg is CAT-Seg plus its modules) and turns
the other two off.

With category filtering active during training (LSMSeg's k < K), the BCE is taken over the k kept
classes of each image only (``loss_on_kept_classes``): filtered-out classes have a constant logit and
no gradient, so counting them would add a constant without teaching anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from seg_pipelines.engine.training import CheckpointError, EpochBatches, TrainingTask, run_training


@dataclass
class OVSSTrainConfig:
    """Optimisation settings of :func:`train_ovss_model`."""

    iterations: int = 300
    batch_size: int = 8
    lr: float = 2e-4
    clip_lr_multiplier: float = 0.1
    min_lr_ratio: float = 0.01
    weight_decay: float = 1e-4
    grad_clip_norm: float | None = 1.0
    loss_on_kept_classes: bool = True
    lr_schedule: str = "cosine"  # cosine | poly | constant (module docstring)
    poly_power: float = 0.9
    seed: int = 0
    log_interval: int = 10
    checkpoint_interval: int = 100
    checkpoint_seconds: float | None = None  # set: write last.pt when this much wall time has passed
    foreach: bool | None = None  # AdamW's multi-tensor update (None: PyTorch's default, per-tensor on CPU)


def masked_per_pixel_bce(
    logits: torch.Tensor, targets: torch.Tensor, class_indices: torch.Tensor | None, ignore_index: int
) -> torch.Tensor:
    """Per-pixel BCE over classes (CAT-Seg), restricted to each image's kept classes when given.

    logits (B, K, H, W) at the label size, targets (B, H, W), class_indices (B, k) or None.
    Ignored pixels have an all-negative target (CAT-Seg keeps them, as ``per_pixel_bce_loss``).
    """
    num_classes = logits.shape[1]
    valid = targets != ignore_index
    one_hot = F.one_hot(torch.where(valid, targets, 0).long(), num_classes).permute(0, 3, 1, 2).to(logits.dtype)
    one_hot = one_hot * valid.unsqueeze(1)
    losses = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
    if class_indices is None or class_indices.shape[1] == num_classes:
        return losses.mean()
    kept = torch.zeros(logits.shape[0], num_classes, dtype=logits.dtype, device=logits.device)
    kept.scatter_(1, class_indices, 1.0)
    weights = kept[:, :, None, None].expand_as(losses)
    return (losses * weights).sum() / weights.sum().clamp_min(1.0)


def ovss_parameter_groups(model: nn.Module, config: OVSSTrainConfig) -> list[dict[str, Any]]:
    """Trainable CLIP parameters at ``clip_lr_multiplier`` × LR, the head at the full LR."""
    clip_params, head_params = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (clip_params if name.startswith("clip.") else head_params).append(parameter)
    groups = [{"params": head_params, "lr_mult": 1.0}]
    if clip_params:
        groups.append({"params": clip_params, "lr_mult": config.clip_lr_multiplier})
    return groups


def cosine_lr(base_lr: float, iteration: int, iterations: int, min_ratio: float) -> float:
    progress = min(iteration / max(1, iterations), 1.0)
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


LR_SCHEDULES = ("cosine", "poly", "constant")


def ovss_lr(config: OVSSTrainConfig, iteration: int) -> float:
    """The learning rate at ``iteration``: cosine to ``min_lr_ratio``·lr, poly ``lr·(1 − t/T)^p``, or constant."""
    if config.lr_schedule == "cosine":
        return cosine_lr(config.lr, iteration, config.iterations, config.min_lr_ratio)
    if config.lr_schedule == "poly":
        return config.lr * (1 - min(iteration / max(1, config.iterations), 1.0)) ** config.poly_power
    if config.lr_schedule == "constant":
        return config.lr
    raise ValueError(f"training.lr_schedule must be one of {LR_SCHEDULES}, got {config.lr_schedule!r}")


def train_ovss_model(
    model: nn.Module,
    dataset: Dataset,
    text_tokens: torch.Tensor,
    config: OVSSTrainConfig,
    *,
    ignore_index: int,
    checkpoint_dir: str | Path | None = None,
    model_config: dict[str, Any] | None = None,
    show_progress: bool = True,
    description: str = "train",
) -> list[dict[str, float]]:
    """Train ``model`` (CAT-Seg / LSMSeg) on ``dataset`` (dicts with ``image`` in [0, 1], ``label``) against
    the training vocabulary's prompt tokens (K, P, L) with :func:`run_training`. Returns the curve (the
    loss of a row is the mean since the previous row); resumes from ``checkpoint_dir/last.pt``.

    Data order: shuffled by a generator re-seeded with ``seed + epoch`` at each epoch; the global RNG
    is re-seeded from ``(seed, iteration)`` after each batch is drawn."""
    ovss_lr(config, 0)  # an unknown lr_schedule fails before any work
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(
        ovss_parameter_groups(model, config), lr=config.lr, weight_decay=config.weight_decay, foreach=config.foreach
    )
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True, generator=generator)
    batches = EpochBatches(loader, lambda epoch: generator.manual_seed(config.seed + epoch))

    def batch_at(iteration: int) -> dict[str, Any]:
        batches.seek(iteration)
        batch = next(batches)
        torch.manual_seed(config.seed * 1_000_003 + iteration)
        return batch

    def loss(trained: nn.Module, batch: dict[str, Any], iteration: int) -> dict[str, torch.Tensor]:
        outputs = trained(batch["image"], text_tokens=text_tokens)
        indices = outputs["class_indices"] if config.loss_on_kept_classes else None
        return {"loss": masked_per_pixel_bce(outputs["logits"], batch["label"], indices, ignore_index)}

    task = TrainingTask(
        model=model,
        optimizer=optimizer,
        iterations=config.iterations,
        batch=batch_at,
        loss=loss,
        lr=lambda t: ovss_lr(config, t),
        # the model config as JSON would load it back
        resume_fields={"model_config": json.loads(json.dumps(model_config or {})), "train_config": asdict(config)},
        running_mean_loss=True,
        grad_clip_norm=config.grad_clip_norm,
        description=description,
    )
    return run_training(
        task,
        checkpoint_dir,
        log_interval=config.log_interval,
        checkpoint_interval=config.checkpoint_interval,
        checkpoint_seconds=config.checkpoint_seconds,
        show_progress=show_progress,
    )


def load_prompt_set(path: str | Path) -> dict[str, list[str]]:
    """Prompt-set JSON file ``{class name: prompt or [prompts]}`` (the attribute-selection output) →
    lists (see :func:`parse_prompt_set`). Raises FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt set not found: {path}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"prompt set {path} is not valid JSON: {error}") from error
    return parse_prompt_set(record, str(path))


def parse_prompt_set(record: Any, source: str = "prompt set") -> dict[str, list[str]]:
    """A loaded prompt set ``{class name: prompt or [prompts]}`` (also ``{"prompts": {...}}``) → one
    list of prompts per class. Raises ValueError naming ``source`` on anything else."""
    if isinstance(record, dict) and isinstance(record.get("prompts"), dict):
        record = record["prompts"]
    if not isinstance(record, dict) or not record:
        raise ValueError(f"prompt set {source} must be a non-empty JSON object {{class name: prompt}}")
    prompts: dict[str, list[str]] = {}
    for name, value in record.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise ValueError(f"prompt set {source}: class {name!r} needs a non-empty prompt string or list of strings")
        prompts[name] = values
    return prompts


def class_prompts(
    class_names: Sequence[str],
    templates: Sequence[str],
    prompt_set: dict[str, list[str]] | None = None,
    *,
    source: str = "prompt set",
) -> list[list[str]]:
    """One list of prompts per class: from the prompt set when given (every class must be there), else templates."""
    if prompt_set is None:
        return [[template.format(name) for template in templates] for name in class_names]
    missing = [name for name in class_names if name not in prompt_set]
    if missing:
        raise ValueError(f"{source} has no prompt for classes {missing[:10]}{' …' if len(missing) > 10 else ''}")
    return [list(prompt_set[name]) for name in class_names]


def check_top_k(top_k: int | None, num_classes: int, model_name: str) -> None:
    """k of the category filter must not exceed the training vocabulary (it would filter nothing)."""
    if top_k and top_k > num_classes:
        raise ValueError(f"{model_name}: top_k={top_k} is larger than the training vocabulary ({num_classes} classes)")


def check_clip_checkpoint(state_dict: dict[str, torch.Tensor], reference: nn.Module, source: str) -> None:
    """Raise CheckpointError when a CLIP state dict belongs to another architecture (keys or widths differ;
    the position embedding may differ in length only, it is resized on load)."""
    own = reference.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [
        key
        for key, value in state_dict.items()
        if key in own and own[key].shape != value.shape and not key.endswith("positional_embedding")
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"CLIP checkpoint {source} is for a different architecture: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shape mismatches "
            f"{[(k, tuple(state_dict[k].shape), tuple(own[k].shape)) for k in mismatched[:5]]}"
        )

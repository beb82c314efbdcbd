"""Class-agnostic pretraining of the tiny SAM (embedded default of LSMSeg's SAM branch, thesis 5.2.4).

No SAM weights can be downloaded here (DESIGN.md §2), so segment_anything's architecture at tiny sizes
(``create_model("sam", variant="tiny")`` and its larger sibling ``tiny_l``, the SAM-B and SAM-L stand-ins:
image encoder, prompt encoder, mask decoder) is trained the way SAM is (Kirillov et al. 2023), on the
synthetic world's train split:

* **masks without classes**: each region is a connected component of one concept's pixels in the label
  map; the concept id only separates regions and is then dropped (SA-1B's masks carry no classes);
* **prompts**: per image either one point per region (uniform inside the mask, 3 output masks: the
  ambiguity-aware output) or one box per region (tight box + Gaussian noise of 10 % of its side, at
  most 20 px; 1 output mask);
* **loss**: 20 · focal + 1 · dice on the lowest-loss output mask, + MSE of the IoU head
  (:func:`seg_pipelines.losses.sam.sam_mask_loss`); AdamW, linear warm-up + cosine decay;
* on the one training loop (:func:`seg_pipelines.engine.training.run_training`, a ``TrainingTask``).

Left out at this scale: SAM's interactive rounds (points sampled from the error region, previous mask
as a prompt) and the data engine. The check (:func:`point_prompt_check`) segments every held-out region
from one point (the interior point farthest from the region's boundary, the mask SAM ranks best of
its three) and compares the mean IoU of the pretrained SAM with the same architecture at random init, for
each size, and the two pretrained sizes with each other.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from seg_pipelines.datasets.base import SegmentationReader
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.engine.ablations import ResultCache, json_ready
from seg_pipelines.engine.runtime import set_torch_threads
from seg_pipelines.engine.training import (
    TrainingTask,
    load_checkpoint,
    load_model_weights,
    run_training,
    state_dict_digest,
)
from seg_pipelines.experiments.clip_pretraining import warmup_cosine_lr
from seg_pipelines.experiments.data_preparation import prepared_sample_ids
from seg_pipelines.experiments.embedded_pretraining import synthetic_only_reason, timed_pretraining
from seg_pipelines.losses.sam import mask_iou, sam_mask_loss
from seg_pipelines.models.factory import create_model
from seg_pipelines.models.ovss.sam import normalize_sam_images
from seg_pipelines.parameters import SAM_TRAINING_BLOCKS

logger = logging.getLogger(__name__)


@dataclass
class SamPretrainingConfig:
    """Settings of :func:`pretrain_sam` (defaults: a minute or two on 2 CPU cores)."""

    variant: str = "tiny"
    image_size: int = 96
    steps: int = 300
    batch_size: int = 16  # images per step
    prompts_per_image: int = 4  # regions per image (drawn with replacement when it has fewer)
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip_norm: float | None = 1.0
    box_probability: float = 0.5  # an image's prompts are boxes with this probability, else single points
    box_noise: float = 0.1  # SAM: noise std 10 % of the box side ...
    box_noise_max: float = 20.0  # ... at most 20 px
    min_region_pixels: int = 16  # smaller connected components are not regions
    flip_probability: float = 0.5
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    seed: int = 0
    log_interval: int = 10
    checkpoint_interval: int = 100


@dataclass
class RegionMasks:
    """A split in memory at the SAM input size: images uint8 ``(N, 3, S, S)`` and region ids ``(N, S, S)``
    (0: no region, 1..``counts[i]`` the regions of image i)."""

    images: torch.Tensor
    regions: torch.Tensor
    counts: list[int]

    def __len__(self) -> int:
        return len(self.counts)

    def masks(self, index: int) -> torch.Tensor:
        """The region masks of image ``index`` as bool ``(counts[index], S, S)``."""
        ids = torch.arange(1, self.counts[index] + 1).view(-1, 1, 1)
        return self.regions[index].unsqueeze(0) == ids


# --------------------------------------------------------------------------- data


def not_trained_reason(manifest: dict[str, Any]) -> str | None:
    """Why no tiny SAM is trained for ``manifest`` (a real dataset: the real path's SAM is a checkpoint,
    ``models.lsmseg.sam_checkpoint``), or ``None`` on the synthetic world."""
    return synthetic_only_reason(
        manifest, "tiny SAM", "set models.lsmseg.sam_variant: vit_b | vit_l and sam_checkpoint: <path to sam_vit_*.pth>"
    )


def region_map(label: np.ndarray, ignore_index: int, min_pixels: int) -> tuple[np.ndarray, int]:
    """Class-agnostic regions of a label map: the connected components (4-connectivity) of each label's
    pixels with at least ``min_pixels`` pixels, numbered 1..n (0 elsewhere); the labels are dropped."""
    regions = np.zeros(label.shape, dtype=np.int32)
    count = 0
    for value in np.unique(label):
        if value == ignore_index:
            continue
        components, found = ndimage.label(label == value)
        sizes = np.bincount(components.ravel(), minlength=found + 1)
        for component in range(1, found + 1):
            if sizes[component] >= min_pixels:
                count += 1
                regions[components == component] = count
    return regions, count


def load_region_masks(
    reader: SegmentationReader,
    split: str,
    image_size: int,
    min_pixels: int,
    limit: int | None = None,
    sample_ids: Collection[str] | None = None,
) -> RegionMasks:
    """Images and class-agnostic region maps of ``split`` resized to ``image_size`` (images without a
    region are left out); ``sample_ids``: only these samples (the prepared index's)."""
    images, regions, counts = [], [], []
    samples = [s for s in reader.list_samples(split) if sample_ids is None or s.sample_id in sample_ids]
    for sample in samples[:limit]:
        image, label = reader.load_pair(sample)
        image = torch.from_numpy(image).permute(2, 0, 1).float().unsqueeze(0)
        label = torch.from_numpy(label.astype(np.int64))[None, None].float()
        if image.shape[-1] != image_size or image.shape[-2] != image_size:
            image = F.interpolate(image, size=(image_size, image_size), mode="bilinear", align_corners=False)
            label = F.interpolate(label, size=(image_size, image_size), mode="nearest")
        region, count = region_map(label[0, 0].long().numpy(), int(reader.ignore_index), min_pixels)
        if count:
            images.append(image[0].round().clamp(0, 255).to(torch.uint8))
            regions.append(torch.from_numpy(region))
            counts.append(count)
    if not counts:
        raise ValueError(f"split {split!r} has no region of at least {min_pixels} pixels")
    return RegionMasks(torch.stack(images), torch.stack(regions), counts)


def _synthetic_regions(
    manifest: dict[str, Any], split: str, config: SamPretrainingConfig, sample_ids: Collection[str] | None = None
) -> RegionMasks:
    reason = not_trained_reason(manifest)
    if reason:
        raise ValueError(reason)
    reader = create_reader("synthetic", manifest["root"])
    return load_region_masks(reader, split, config.image_size, config.min_region_pixels, sample_ids=sample_ids)


# --------------------------------------------------------------------------- prompts


def point_in_mask(mask: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A pixel of ``mask`` ``(S, S)`` drawn uniformly, as SAM's ``(x, y)``."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    pick = int(rng.integers(len(xs)))
    return torch.stack([xs[pick], ys[pick]]).float()


def interior_point(mask: torch.Tensor) -> torch.Tensor:
    """The pixel of ``mask`` farthest from its boundary (SAM's evaluation point), as ``(x, y)``."""
    distance = ndimage.distance_transform_edt(np.pad(mask.numpy(), 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return torch.tensor([float(x), float(y)])


def noisy_box(mask: torch.Tensor, rng: np.random.Generator, noise: float, noise_max: float) -> torch.Tensor:
    """The tight ``(x0, y0, x1, y1)`` box of ``mask`` with Gaussian noise (std ``noise`` × side, at most
    ``noise_max`` px) on each coordinate, inside the image."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    box = torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float()
    sides = torch.stack([box[2] - box[0] + 1, box[3] - box[1] + 1]).repeat(2)
    jitter = torch.from_numpy(rng.normal(size=4)).float() * (noise * sides).clamp(max=noise_max)
    return (box + jitter).clamp(0, mask.shape[-1] - 1)


# --------------------------------------------------------------------------- model


def predict_masks(
    sam: nn.Module,
    image_embedding: torch.Tensor,
    *,
    points: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    multimask_output: bool,
    size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits ``(P, M, size, size)`` and predicted IoU ``(P, M)`` of ``P`` prompts on one image:
    one point each (``points`` ``(P, 2)``, foreground) or one box each (``boxes`` ``(P, 4)``)."""
    point_prompts = None
    if points is not None:
        point_prompts = (points.unsqueeze(1), torch.ones(len(points), 1, dtype=torch.int))
    sparse, dense = sam.prompt_encoder(points=point_prompts, boxes=boxes, masks=None)
    low_resolution, iou_predictions = sam.mask_decoder(
        image_embeddings=image_embedding,
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask_output,
    )
    logits = F.interpolate(low_resolution, size=(size, size), mode="bilinear", align_corners=False)
    return logits, iou_predictions


def build_tiny_sam(config: SamPretrainingConfig) -> nn.Module:
    """The untrained SAM of ``config`` (seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    return create_model("sam", variant=config.variant, image_size=config.image_size)


def sam_from_state_dict(sam_config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Rebuild the pretrained SAM described by ``sam_config`` (``tiny_sam_config``) from its weights."""
    sam = create_model("sam", variant=sam_config["variant"], image_size=int(sam_config["image_size"]))
    load_model_weights(sam, state_dict, "tiny SAM")
    return sam.eval()


# --------------------------------------------------------------------------- training


def pretrain_sam(
    data: RegionMasks, config: SamPretrainingConfig, *, checkpoint_dir: str | Path | None = None
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train SAM ``config.variant`` from scratch on ``data``'s region masks with :func:`run_training`;
    return it and its curve (loss = mean since the previous row, with the focal / dice / IoU terms).

    Batches are drawn from a generator seeded by ``(seed, step)``, so a resumed run sees the same ones."""
    sam = build_tiny_sam(config)
    decay = [p for p in sam.parameters() if p.ndim >= 2]
    no_decay = [p for p in sam.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": config.weight_decay}],
        lr=config.lr,
    )
    size = config.image_size

    def batch_at(step: int) -> dict[str, Any]:
        rng = np.random.default_rng([config.seed, step])
        indices = rng.choice(len(data), size=min(config.batch_size, len(data)), replace=False)
        images, prompts = [], []
        for index in indices.tolist():
            masks = data.masks(index)
            image = data.images[index].float() / 255
            if rng.random() < config.flip_probability:
                image, masks = image.flip(-1), masks.flip(-1)
            chosen = rng.choice(
                len(masks), size=config.prompts_per_image, replace=len(masks) < config.prompts_per_image
            )
            targets = masks[torch.from_numpy(chosen)]
            if rng.random() < config.box_probability:
                boxes = torch.stack([noisy_box(m, rng, config.box_noise, config.box_noise_max) for m in targets])
                prompts.append({"boxes": boxes, "targets": targets})
            else:
                prompts.append({"points": torch.stack([point_in_mask(m, rng) for m in targets]), "targets": targets})
            images.append(image)
        return {"images": torch.stack(images), "prompts": prompts}

    def loss(trained: nn.Module, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        embeddings = trained.image_encoder(normalize_sam_images(batch["images"]))
        terms: list[dict[str, torch.Tensor]] = []
        for embedding, prompt in zip(embeddings, batch["prompts"]):
            logits, iou_predictions = predict_masks(
                trained,
                embedding.unsqueeze(0),
                points=prompt.get("points"),
                boxes=prompt.get("boxes"),
                multimask_output="points" in prompt,  # one point is ambiguous: SAM's 3 masks
                size=size,
            )
            terms.append(
                sam_mask_loss(
                    logits,
                    iou_predictions,
                    prompt["targets"].float(),
                    focal_weight=config.focal_weight,
                    dice_weight=config.dice_weight,
                    iou_weight=config.iou_weight,
                )
            )
        return {key: torch.stack([term[key] for term in terms]).mean() for key in terms[0]}

    def curve_extra(done: int, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        return {key: float(value.detach()) for key, value in losses.items() if key != "loss"}

    task = TrainingTask(
        model=sam,
        optimizer=optimizer,
        iterations=config.steps,
        batch=batch_at,
        loss=loss,
        lr=lambda step: warmup_cosine_lr(step, config),
        resume_fields={"config": _config_key(config, data)} if checkpoint_dir is not None else {},
        position_key="step",
        running_mean_loss=True,
        curve_extra=curve_extra,
        grad_clip_norm=config.grad_clip_norm,
        description="sam pretraining",
    )
    curve = run_training(
        task, checkpoint_dir, log_interval=config.log_interval, checkpoint_interval=config.checkpoint_interval
    )
    return sam, curve


def region_data_digest(data: RegionMasks) -> str:
    """sha256 of the images and region masks of ``data``: what pretraining and the check read."""
    digest = hashlib.sha256(data.images.numpy().tobytes())
    digest.update(data.regions.numpy().tobytes())
    return digest.hexdigest()


def _config_key(config: SamPretrainingConfig, data: RegionMasks) -> str:
    """What a resume must match: the settings and the training data (a re-rendered world trains afresh)."""
    return repr(sorted(asdict(config).items())) + " data " + region_data_digest(data)


# --------------------------------------------------------------------------- check


@torch.no_grad()
def point_prompt_ious(sam: nn.Module, data: RegionMasks, image_size: int) -> dict[str, np.ndarray]:
    """Per region of ``data``: the IoU of the mask SAM ranks best of its three from one interior point
    (``predicted``) and of the best of the three (``oracle``)."""
    sam.eval()
    predicted, oracle = [], []
    for index in range(len(data)):
        masks = data.masks(index)
        embedding = sam.image_encoder(normalize_sam_images(data.images[index : index + 1].float() / 255))
        points = torch.stack([interior_point(mask) for mask in masks])
        logits, iou_predictions = predict_masks(sam, embedding, points=points, multimask_output=True, size=image_size)
        ious = mask_iou(logits, masks.unsqueeze(1).expand_as(logits).float())
        predicted.append(ious.gather(1, iou_predictions.argmax(1, keepdim=True)).squeeze(1))
        oracle.append(ious.max(1).values)
    return {"predicted": torch.cat(predicted).numpy(), "oracle": torch.cat(oracle).numpy()}


def paired_bootstrap_interval(
    difference: np.ndarray, seed: int = 0, resamples: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of the paired ``difference`` (one value per region)."""
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), size=(resamples, len(difference)))].mean(1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def point_prompt_check(pretrained: nn.Module, data: RegionMasks, config: SamPretrainingConfig) -> dict[str, Any]:
    """Mean one-point mask IoU on ``data`` of the pretrained SAM against the same architecture at random
    init (seeded as the pretraining was), with the paired bootstrap 95 % interval of the difference."""
    return _point_prompt_check(pretrained, data, config)[0]


def _point_prompt_check(
    pretrained: nn.Module, data: RegionMasks, config: SamPretrainingConfig
) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`point_prompt_check`'s report and the pretrained SAM's IoU per region (for paired comparisons)."""
    random_init = build_tiny_sam(config)
    ours = point_prompt_ious(pretrained, data, config.image_size)
    baseline = point_prompt_ious(random_init, data, config.image_size)
    difference = ours["predicted"] - baseline["predicted"]
    report = {
        "images": len(data),
        "regions": len(difference),
        "prompt": "one point per region (its interior point farthest from the boundary); the mask SAM ranks "
        "best of its 3 ('oracle': the best of the 3)",
        "pretrained": {"miou": float(ours["predicted"].mean()), "oracle_miou": float(ours["oracle"].mean())},
        "random_init": {"miou": float(baseline["predicted"].mean()), "oracle_miou": float(baseline["oracle"].mean())},
        "difference": {"miou": float(difference.mean()), "ci95": list(paired_bootstrap_interval(difference))},
    }
    return report, ours["predicted"]


# --------------------------------------------------------------------------- runs (nodes)


def _config(params: dict[str, Any], variant: str = "tiny") -> SamPretrainingConfig:
    block = SAM_TRAINING_BLOCKS[variant]
    config = SamPretrainingConfig(**dict(params.get(block, {})))
    if config.variant != variant:
        raise ValueError(f"sam_pretraining.{block}.variant is {config.variant!r}; that block trains {variant!r}")
    return config


def _checkpoint_dir(params: dict[str, Any], variant: str) -> Path | None:
    """Each size's resume state in its own folder under ``checkpoint_dir``."""
    return Path(params["checkpoint_dir"]) / variant if params.get("checkpoint_dir") else None


def pretrain_tiny_sam(
    manifest: dict[str, Any], params: dict[str, Any], variant: str = "tiny", index: pd.DataFrame | None = None
) -> tuple[Any, list[dict[str, float]]]:
    """Train the SAM ``variant`` (``tiny`` | ``tiny_l``) on the train split's region masks (resumable from
    ``checkpoint_dir/<variant>``); on a real dataset nothing is trained (an empty state dict, a warning).
    ``index``: the prepared index, whose train-split samples are the ones trained on."""
    reason = not_trained_reason(manifest)
    if reason:
        logger.warning("sam_pretraining (%s) skipped: %s", variant, reason)
        return {}, []
    set_torch_threads(params.get("num_threads"), default=2)
    config = _config(params, variant)
    split = params.get("train_split", "train")
    sample_ids = None if index is None else prepared_sample_ids(manifest, index, split)
    data = _synthetic_regions(manifest, split, config, sample_ids)
    checkpoint_dir = _checkpoint_dir(params, variant)
    return timed_pretraining(
        f"SAM {variant}", config.steps, lambda: pretrain_sam(data, config, checkpoint_dir=checkpoint_dir)
    )


def _load_sam(checkpoint: str | dict[str, torch.Tensor], config: SamPretrainingConfig) -> nn.Module:
    state = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    return sam_from_state_dict({"variant": config.variant, "image_size": config.image_size}, state)


def evaluate_tiny_sams(
    checkpoints: dict[str, str | dict[str, torch.Tensor]], manifest: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """The one-point mask IoU check (:func:`point_prompt_check`) on the held-out split for each size in
    ``checkpoints`` (variant → weights), and, where both sizes see the same regions, the paired difference
    ``tiny_l`` − ``tiny`` of the pretrained models."""
    reason = not_trained_reason(manifest)
    if reason:
        return {"not_trained": reason}
    set_torch_threads(params.get("num_threads"), default=2)
    split = params.get("eval_split", "val")
    # a rerun with the same weights, settings and data reuses the report
    cache_dir = Path(params["checkpoint_dir"]) / "evaluations" if params.get("checkpoint_dir") else None
    cache = ResultCache(cache_dir)
    inputs, prepared = [], {}
    for variant, checkpoint in checkpoints.items():
        config = _config(params, variant)
        weights = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        data = _synthetic_regions(manifest, split, config)
        inputs.append([variant, state_dict_digest(weights), asdict(config), region_data_digest(data)])
        prepared[variant] = (config, weights, data)
    key = ResultCache.key("tiny_sam_evaluation", split, inputs)
    cached = cache.get(key)
    if cached is not None:
        logger.info("tiny SAM evaluation: same weights, settings and data as before; reusing its report")
        return cached
    report: dict[str, Any] = {"split": split}
    predicted: dict[str, np.ndarray] = {}
    data_keys: dict[str, tuple[int, int]] = {}
    for variant, (config, weights, data) in prepared.items():
        check, predicted[variant] = _point_prompt_check(_load_sam(weights, config), data, config)
        data_keys[variant] = (config.image_size, config.min_region_pixels)
        report[variant] = check
        logger.info(
            "SAM %s one-point mIoU on %s: pretrained %.3f vs random init %.3f (difference %.3f, 95%% CI %s)",
            variant,
            split,
            check["pretrained"]["miou"],
            check["random_init"]["miou"],
            check["difference"]["miou"],
            check["difference"]["ci95"],
        )
    if {"tiny", "tiny_l"} <= set(predicted) and data_keys["tiny"] == data_keys["tiny_l"]:
        difference = predicted["tiny_l"] - predicted["tiny"]
        report["tiny_l_minus_tiny"] = {
            "miou": float(difference.mean()),
            "ci95": list(paired_bootstrap_interval(difference)),
        }
    report = json_ready(report)
    cache.put(key, report)
    return report


def describe_tiny_sam(
    params: dict[str, Any], tiny_sam_checkpoint: str, manifest: dict[str, Any], variant: str = "tiny"
) -> dict[str, Any]:
    """The re-buildable description of the SAM ``variant``'s checkpoint: variant, input size, where the
    weights are and how they were trained (``not_trained`` on a real dataset)."""
    config = _config(params, variant)
    described = {
        "variant": config.variant,
        "image_size": config.image_size,
        "checkpoint": str(tiny_sam_checkpoint),
        "training": asdict(config),
    }
    reason = not_trained_reason(manifest)
    return {**described, "not_trained": reason} if reason else described

"""Contrastive pretraining of the tiny CLIP on the synthetic world's image–caption pairs, and its probes.

The embedded default has no downloadable CLIP (DESIGN.md §2), so the tiny open_clip ViT is trained
here with the usual symmetric InfoNCE loss (Radford et al. 2021) on:

* the world's own captions (``reader.captions(split)``), and
* **re-sampled captions** of the same images (whole image or a random region crop) composed from the
  concepts under the crop with the world's caption rules: attribute words are said often, a class
  name with the world's naming probability, an unseen concept never by name. Names of tail classes
  are therefore seen rarely (they are rare in the images), attribute words constantly: the CLIP
  knows attributes well and tail names poorly, which is what makes LSMSeg's attribute prompts matter;
* a **region–phrase** term (``region_loss_weight``): the mean dense embedding over each concept's
  patches (the avg-pooled image embedding restricted to the region) against that concept's phrase.
  Image-level captions alone teach the global embedding but leave the patch embeddings, which the
  cost volume uses, weak (dense shape accuracy 10%); with the region term 45%, and unseen concepts
  become reachable through attribute prompts (dense pixel accuracy 1.6% with names → 69% with
  descriptions) at 1.7× the pretraining time.

Probes (logged as metrics): image→text recall@1 on held-out captions, dense zero-shot pixel accuracy
(cosine of every patch feature to each class text, argmax, upsampled) with name-only vs attribute
prompts for head / tail / unseen classes, and dense colour / shape / texture attribute accuracy.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seg_pipelines.datasets.base import SegmentationReader
from seg_pipelines.datasets.synthetic.concepts import CONCEPTS, Concept
from seg_pipelines.datasets.synthetic.render import P_ATTRIBUTE, P_NAME_STUFF, P_NAME_THING
from seg_pipelines.engine.training import TrainingTask, load_model_weights, run_training
from seg_pipelines.models.ovss.clip import (
    TINY_CLIP_NAME,
    CLIPDenseEncoder,
    encode_text_trimmed,
    load_clip,
    register_model_configs,
)
from seg_pipelines.prompts.prompt_set import clip_token_count, fit_words

NAME_TEMPLATE = "a photo of a {}."
ATTRIBUTE_PROBE_TEMPLATE = "a photo of a {} object."
_PLAIN = {"plain"}


@dataclass
class ClipPretrainingConfig:
    """Settings of :func:`pretrain_clip` (defaults: the embedded default's few-minute CPU budget)."""

    model_name: str = TINY_CLIP_NAME
    image_size: int = 96
    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 40
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip_norm: float | None = 1.0
    original_caption_probability: float = 0.25  # else a re-sampled caption
    region_crop_probability: float = 0.5  # re-sampled captions: a random region crop instead of the whole image
    region_min_side: float = 0.35  # crop side as a fraction of the image side, at least
    region_min_fraction: float = 0.12  # a concept is mentioned when it covers this much of the crop
    max_phrases: int = 3
    name_probability_thing: float = P_NAME_THING
    name_probability_stuff: float = P_NAME_STUFF
    attribute_probability: dict[str, float] = field(default_factory=lambda: dict(P_ATTRIBUTE))
    flip_probability: float = 0.0  # captions name positions ("on the left"): no flip by default
    # Re-sampled captions that read the way descriptions read, with this probability (issue 26 item 2):
    # per-concept sentences in one of DESCRIPTION_PHRASINGS ("The lime is small and green.", "A small,
    # round, green lime lies on the grass.", "Limes are round.", "A lime is small. A lime is green."),
    # after "a photo of …" with ``description_header_probability``; same naming rules and attribute
    # words as the phrase form ("a photo of a small green lime."). 0: the phrase form only.
    description_caption_probability: float = 0.0
    description_header_probability: float = 0.5
    description_sentences: int = 3  # concepts described by a sentence, largest first
    # Region–phrase contrastive term (RegionCLIP-style grounding, Zhong et al. 2022): with ``pool_type``
    # "avg" the image embedding is the mean of the dense patch embeddings, so the mean over one concept's
    # patches is that region's embedding; it is contrasted with the concept's caption phrase (same naming
    # rules: unseen concepts never named). 0 switches it off (the plain image–caption CLIP).
    region_loss_weight: float = 0.0
    region_min_patches: float = 1.0  # a region needs at least this many patches' worth of pixels
    max_regions: int = 384  # per batch, largest first
    seed: int = 0
    log_interval: int = 10
    checkpoint_interval: int = 100


@dataclass
class CaptionedImages:
    """A split held in memory: images uint8 (N, 3, H, W), concept-id labels (N, H, W), captions."""

    images: torch.Tensor
    labels: torch.Tensor
    captions: list[str]
    ignore_index: int = 255

    def __len__(self) -> int:
        return len(self.captions)


# --------------------------------------------------------------------------- data


def load_captioned_split(
    reader: SegmentationReader, split: str, limit: int | None = None, sample_ids: Collection[str] | None = None
) -> CaptionedImages:
    """Images, concept labels and captions of ``split`` of a synthetic world (reader without vocabulary);
    ``sample_ids``: only these samples (the prepared index's), else every sample of the split."""
    if getattr(reader, "family", None) != "synthetic" or getattr(reader, "vocabulary_name", None):
        raise ValueError("CLIP pretraining needs the synthetic reader in concept space (no vocabulary=)")
    records = {record["image"]: record["caption"] for record in reader.captions(split)}
    images, labels, captions = [], [], []
    samples = [s for s in reader.list_samples(split) if sample_ids is None or s.sample_id in sample_ids]
    for sample in samples[:limit]:
        relative = Path(sample.image_path).resolve().relative_to(Path(reader.data_root).resolve()).as_posix()
        if relative not in records:
            raise ValueError(f"no caption for {sample.image_path} in {reader.data_root / 'captions.jsonl'}")
        image, label = reader.load_pair(sample)
        images.append(torch.from_numpy(image).permute(2, 0, 1))
        labels.append(torch.from_numpy(label.astype(np.int64)))
        captions.append(records[relative])
    if not captions:
        raise ValueError(f"split {split!r} has no samples")
    return CaptionedImages(torch.stack(images), torch.stack(labels), captions, int(reader.ignore_index))


def _concept_words(concept: Concept, rng: np.random.Generator, config: ClipPretrainingConfig) -> tuple[list[str], str]:
    """(attribute words, noun) of one concept by the world's caption rules: its name or generic noun."""
    words = concept.attribute_words()
    if concept.kind == "thing":
        chosen = [
            words[key]
            for key in ("size", "texture", "shape", "colour", "material")
            if words.get(key) and words[key] not in _PLAIN and rng.random() < config.attribute_probability.get(key, 0.0)
        ] or [words["colour"]]
        named = not concept.unseen and rng.random() < config.name_probability_thing
        return chosen, concept.name if named else concept.generic
    adjectives = [
        word
        for word, key in ((concept.colour_word, "colour"), (concept.texture_word, "texture"))
        if word not in _PLAIN and rng.random() < config.attribute_probability.get(key, 0.0)
    ]
    if not concept.unseen and rng.random() < config.name_probability_stuff:
        return adjectives, concept.name
    return (adjectives if concept.colour_word in adjectives else [concept.colour_word, *adjectives]), concept.generic


def concept_phrase(concept: Concept, rng: np.random.Generator, config: ClipPretrainingConfig) -> str:
    """The world's caption phrase of one concept: attribute words, then its name or generic noun.

    Unseen concepts are never named (thesis 5.2.1); names of seen ones appear with the world's
    naming probability, so a class name is seen as often as the class is.
    """
    adjectives, noun = _concept_words(concept, rng, config)
    return " ".join(adjectives + [noun])


def _joined(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _with_article(concept: Concept, noun: str) -> str:
    return (("an " if noun[0] in "aeiou" else "a ") + noun) if concept.kind == "thing" else noun


#: How a description-form caption says one concept's attribute words (issue 26 item 2): the forms a
#: person or an LLM writes, none taken from an LLM's answers. ``lies_on`` names the stuff under a thing
#: when that stuff is in the crop (one of the thing's hosts), else it reads as ``adjectives``.
DESCRIPTION_PHRASINGS = ("is", "the_is", "usually", "adjectives", "lies_on", "plural", "per_attribute")


def plural(noun: str) -> str:
    """English plural of a (last) noun: "lime" → "limes", "bus" → "buses", "cherry" → "cherries"."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


def describe_concept(
    concept: Concept, adjectives: Sequence[str], noun: str, phrasing: str, host_noun: str | None = None
) -> str:
    """One concept's description sentence(s) in ``phrasing`` (:data:`DESCRIPTION_PHRASINGS`), e.g.
    ``"The lime is small and green."``; stuff takes no article ("Grass is green.")."""
    if phrasing not in DESCRIPTION_PHRASINGS:
        raise ValueError(f"phrasing must be one of {DESCRIPTION_PHRASINGS}, got {phrasing!r}")
    thing = concept.kind == "thing"
    subject = _with_article(concept, noun)
    if phrasing == "per_attribute":  # the thesis's composition: one sentence per attribute
        return " ".join(f"{subject.capitalize()} is {word}." for word in adjectives)
    if phrasing in ("adjectives", "lies_on"):
        described = " ".join([", ".join(adjectives), noun]) if adjectives else noun
        described = (("an " if described[0] in "aeiou" else "a ") + described) if thing else described
        place = f" lies on the {host_noun}" if phrasing == "lies_on" and host_noun and thing else ""
        return f"{described.capitalize()}{place}."
    if phrasing == "plural" and thing:
        return f"{plural(noun).capitalize()} are {_joined(adjectives)}."
    if phrasing == "the_is":
        return f"The {noun} is {_joined(adjectives)}."
    usually = "usually " if phrasing == "usually" else ""
    return f"{subject.capitalize()} is {usually}{_joined(adjectives)}."


def compose_region_caption(
    concept_fractions: dict[int, float],
    rng: np.random.Generator,
    config: ClipPretrainingConfig,
    concepts: Sequence[Concept] = CONCEPTS,
) -> str | None:
    """Caption of a crop from the concepts covering at least ``region_min_fraction`` of it (largest first)."""
    present = sorted(
        (cid for cid, fraction in concept_fractions.items() if fraction >= config.region_min_fraction),
        key=lambda cid: -concept_fractions[cid],
    )[: config.max_phrases]
    if not present:
        return None
    if config.description_caption_probability and rng.random() < config.description_caption_probability:
        # the way descriptions read: "a photo of a lime and grass. The lime is small and green. Grass is green."
        words = [(concepts[cid], *_concept_words(concepts[cid], rng, config)) for cid in present]
        nouns = {concept.name: noun for concept, _, noun in words}
        sentences = []
        for concept, adjectives, noun in words[: config.description_sentences]:
            if not adjectives:
                continue
            phrasing = DESCRIPTION_PHRASINGS[int(rng.integers(len(DESCRIPTION_PHRASINGS)))]
            host = next((nouns[name] for name in concept.hosts if name in nouns), None)
            sentences.append(describe_concept(concept, adjectives, noun, phrasing, host))
        if not sentences or rng.random() < config.description_header_probability:
            sentences.insert(0, f"a photo of {_joined([_with_article(c, noun) for c, _, noun in words])}.")
        return " ".join(sentences)
    phrases = [_with_article(concepts[cid], concept_phrase(concepts[cid], rng, config)) for cid in present]
    return f"a photo of {_joined(phrases)}."


@functools.lru_cache(maxsize=16)
def text_context_length(model_name: str) -> int:
    """The text context of ``model_name``'s open_clip config (77 for every open_clip text tower)."""
    import open_clip

    register_model_configs()
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ValueError(f"no open_clip model config named {model_name!r}")
    return int(config.get("text_cfg", {}).get("context_length", 77))


def fit_caption(caption: str, max_tokens: int) -> tuple[str, str]:
    """``caption`` within ``max_tokens`` CLIP tokens and how: ``"whole"``, ``"phrases dropped"`` (whole
    trailing sentences or phrases left out, so what is trained on is never cut mid-phrase) or ``"cut"``
    (one phrase alone is over the context: cut at a word)."""
    if clip_token_count(caption) <= max_tokens:
        return caption, "whole"
    text = caption.strip()
    while clip_token_count(text) > max_tokens:
        body = text.rstrip(" .")
        boundary = max(body.rfind(". "), body.rfind(", "), body.rfind(" and "))
        if boundary <= 0:
            return fit_words(body, max_tokens), "cut"
        text = body[:boundary].rstrip(" ,.") + "."
    return text, "phrases dropped"


def caption_token_report(captions: Sequence[str], context_length: int) -> dict[str, float]:
    """How much of ``captions`` a text context of ``context_length`` (start and end tokens included)
    loses when it truncates: captions over it, and the share of all caption tokens past it."""
    counts = np.asarray([clip_token_count(caption) for caption in captions], dtype=np.int64)
    budget = context_length - 2
    lost = np.clip(counts - budget, 0, None)
    return {
        "context_length": float(context_length),
        "captions": float(len(counts)),
        "mean_tokens": float(counts.mean()) if len(counts) else 0.0,
        "max_tokens": float(counts.max()) if len(counts) else 0.0,
        "share_of_captions_over": float((lost > 0).mean()) if len(counts) else 0.0,
        "share_of_tokens_lost": float(lost.sum() / max(int(counts.sum()), 1)),
    }


def training_caption_tokens(
    data: CaptionedImages, config: ClipPretrainingConfig, samples: int = 1024, contexts: Sequence[int] = (32,)
) -> dict[str, dict[str, float]]:
    """The tokens lost by truncation on what pretraining sees (the split's captions and ``samples``
    re-sampled ones), at the model's text context and each of ``contexts``, and how many of them
    pretraining fits by leaving whole phrases out (:func:`fit_caption`)."""
    rng = np.random.default_rng([config.seed, 7919])
    indices = rng.choice(len(data), size=samples, replace=samples > len(data))
    resampled = [
        caption
        for start in range(0, samples, 256)
        for caption in sample_batch(data, indices[start : start + 256], rng, config, fit=False)[1]
    ]
    captions = [*data.captions, *resampled]
    context = text_context_length(config.model_name)
    report = {f"context_{n}": caption_token_report(captions, n) for n in sorted({*contexts, context})}
    fitted = [fit_caption(caption, context - 2)[1] for caption in captions]
    report["trained"] = {
        "context_length": float(context),
        "captions": float(len(captions)),
        "phrases_dropped": float(fitted.count("phrases dropped")),
        "cut_mid_phrase": float(fitted.count("cut")),
    }
    return report


def sample_batch(
    data: CaptionedImages,
    indices: np.ndarray,
    rng: np.random.Generator,
    config: ClipPretrainingConfig,
    return_labels: bool = False,
    fit: bool = True,
):
    """Images in [0, 1] at ``config.image_size`` and their captions (original or re-sampled, with
    ``fit`` made to fit the text context by :func:`fit_caption`); with ``return_labels`` also the
    concept labels of the (cropped) images at that size (nearest)."""
    size = config.image_size
    budget = text_context_length(config.model_name) - 2
    height, width = data.images.shape[-2:]
    images, captions, labels = [], [], []
    for index in indices:
        image, caption = data.images[index], None
        if rng.random() >= config.original_caption_probability:
            y0, x0, y1, x1 = 0, 0, height, width
            if rng.random() < config.region_crop_probability:
                side = rng.uniform(config.region_min_side, 1.0)
                crop_h, crop_w = max(8, int(round(side * height))), max(8, int(round(side * width)))
                y0, x0 = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
                y1, x1 = y0 + crop_h, x0 + crop_w
            label = data.labels[index, y0:y1, x0:x1]
            valid = label[label != data.ignore_index]
            counts = torch.bincount(valid.flatten(), minlength=len(CONCEPTS)).numpy()
            fractions = {int(c): float(counts[c]) / label.numel() for c in np.flatnonzero(counts)}
            caption = compose_region_caption(fractions, rng, config)
            if caption is not None:
                image = image[:, y0:y1, x0:x1]
        if caption is None:
            caption = data.captions[index]
            y0, x0, y1, x1 = 0, 0, height, width
        label = data.labels[index, y0:y1, x0:x1][None, None].float()
        image = image.float().div(255).unsqueeze(0)
        if tuple(image.shape[-2:]) != (size, size):
            image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            label = F.interpolate(label, size=(size, size), mode="nearest")
        if config.flip_probability and rng.random() < config.flip_probability:
            image, label = image.flip(-1), label.flip(-1)
        images.append(image)
        captions.append(fit_caption(caption, budget)[0] if fit else caption)
        labels.append(label[:, 0].long())
    if return_labels:
        return torch.cat(images), captions, torch.cat(labels)
    return torch.cat(images), captions


# --------------------------------------------------------------------------- training


def clip_contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    caption_ids: torch.Tensor,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE over normalised features; identical captions in a batch are all positives
    (or the boolean (N, N) ``positives`` matrix, when given, which must be symmetric)."""
    logits = logit_scale * image_features @ text_features.t()
    if positives is None:
        positives = caption_ids[:, None] == caption_ids[None, :]
    positives = positives.float()
    targets = positives / positives.sum(dim=1, keepdim=True)
    image_to_text = torch.sum(-targets * logits.log_softmax(dim=1), dim=1).mean()
    text_to_image = torch.sum(-targets * logits.t().log_softmax(dim=1), dim=1).mean()
    return 0.5 * (image_to_text + text_to_image)


def region_embeddings(
    dense: torch.Tensor,
    labels: torch.Tensor,
    num_concepts: int,
    ignore_index: int,
    min_patches: float,
    max_regions: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Area-weighted mean of the dense embeddings (B, D, h, w) over each concept's pixels.

    ``labels`` (B, H, W) at the image size, H = h·patch. Returns the region embeddings (R, D), their
    image index and concept id (R,), the ``max_regions`` largest regions of at least ``min_patches``.
    """
    batch, _, grid_h, grid_w = dense.shape
    labels = torch.where(labels == ignore_index, torch.full_like(labels, num_concepts), labels)
    one_hot = F.one_hot(labels, num_concepts + 1)[..., :num_concepts].permute(0, 3, 1, 2).float()
    fractions = F.adaptive_avg_pool2d(one_hot, (grid_h, grid_w))  # (B, C, h, w): share of each patch
    area = fractions.sum(dim=(2, 3))  # in patches
    image_index, concept_index = torch.nonzero(area >= min_patches, as_tuple=True)
    order = torch.argsort(area[image_index, concept_index], descending=True)[:max_regions]
    image_index, concept_index = image_index[order], concept_index[order]
    weights = fractions[image_index, concept_index] / area[image_index, concept_index][:, None, None]
    embeddings = torch.einsum("rhw,rdhw->rd", weights, dense[image_index])
    return embeddings, image_index, concept_index


def region_phrase_loss(
    model: nn.Module,
    encoder: CLIPDenseEncoder,
    tokenizer,
    dense: torch.Tensor,
    labels: torch.Tensor,
    rng: np.random.Generator,
    config: ClipPretrainingConfig,
    ignore_index: int,
) -> torch.Tensor:
    """InfoNCE between concept regions and their caption phrases ("a photo of a small green object.");
    regions of the same concept, or with the same phrase, are positives of each other."""
    regions, _, concept_ids = region_embeddings(
        dense, labels, len(CONCEPTS), ignore_index, config.region_min_patches, config.max_regions
    )
    if len(regions) < 2:
        return dense.sum() * 0.0
    phrases = [compose_region_caption({int(c): 1.0}, rng, config) for c in concept_ids.tolist()]
    unique, phrase_ids = np.unique(np.asarray(phrases), return_inverse=True)
    text = encode_text_trimmed(model, tokenizer(list(unique)), normalize=True)[torch.from_numpy(phrase_ids)]
    phrase_ids = torch.from_numpy(phrase_ids)
    positives = (concept_ids[:, None] == concept_ids[None, :]) | (phrase_ids[:, None] == phrase_ids[None, :])
    return clip_contrastive_loss(F.normalize(regions, dim=-1), text, model.logit_scale.exp(), phrase_ids, positives)


def warmup_cosine_lr(step: int, config: ClipPretrainingConfig) -> float:
    """Linear warm-up to ``lr`` then cosine decay to ``min_lr`` at ``steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip's rule: no decay on gains, biases, embeddings and the logit scale."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        exclude = parameter.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        exclude = exclude or "embedding" in name or "class_embedding" in name
        (no_decay if exclude else decay).append(parameter)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def pretrain_clip(
    train_data: CaptionedImages,
    config: ClipPretrainingConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    show_progress: bool = True,
    eval_fn=None,
    eval_interval: int = 0,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``config.model_name`` from scratch with :func:`run_training`; return the model and its curve
    (one row per log step, the loss of a row is the mean since the previous row).

    Resumes from ``checkpoint_dir/last.pt`` (weights, optimizer, step, curve) written for the same
    settings and training data; batches are drawn from a generator seeded by ``(seed, step)``, so a
    resumed run sees the same batches. ``eval_fn(model)`` → dict of numbers is added to the curve
    every ``eval_interval`` steps.
    """
    torch.manual_seed(config.seed)
    model = load_clip(config.model_name, None, image_size=config.image_size)
    tokenizer = _tokenizer(model, config.model_name)
    dense_encoder = CLIPDenseEncoder(model, model_name=config.model_name)
    encoder_normalize = dense_encoder.normalize
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, config.weight_decay), lr=config.lr, betas=tuple(config.betas), eps=1e-6
    )

    def batch_at(step: int) -> dict[str, Any]:
        rng = np.random.default_rng([config.seed, step])  # the region term draws its phrases from it too
        indices = rng.choice(len(train_data), size=min(config.batch_size, len(train_data)), replace=False)
        images, captions, labels = sample_batch(train_data, indices, rng, config, return_labels=True)
        _, caption_ids = np.unique(np.asarray(captions), return_inverse=True)
        return {"images": images, "captions": captions, "labels": labels, "caption_ids": caption_ids, "rng": rng}

    def loss(trained: nn.Module, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        if config.region_loss_weight:
            # avg-pooled ViT: the image embedding is the mean of the dense embeddings (one forward for both)
            dense = dense_encoder(encoder_normalize(batch["images"])).dense
            image_features = F.normalize(dense.mean(dim=(2, 3)), dim=-1)
        else:
            image_features = trained.encode_image(encoder_normalize(batch["images"]), normalize=True)
        text_features = encode_text_trimmed(trained, tokenizer(batch["captions"]), normalize=True)
        total = clip_contrastive_loss(
            image_features, text_features, trained.logit_scale.exp(), torch.from_numpy(batch["caption_ids"])
        )
        if config.region_loss_weight:
            total = total + config.region_loss_weight * region_phrase_loss(
                trained, dense_encoder, tokenizer, dense, batch["labels"], batch["rng"], config, train_data.ignore_index
            )
        return {"loss": total}

    def clamp_logit_scale() -> None:
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))

    def curve_extra(done: int, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        extra = {"logit_scale": float(model.logit_scale.detach().exp())}
        if eval_fn is not None and eval_interval and (done % eval_interval == 0 or done == config.steps):
            model.eval()
            extra.update(eval_fn(model))
            model.train()
        return extra

    task = TrainingTask(
        model=model,
        optimizer=optimizer,
        iterations=config.steps,
        batch=batch_at,
        loss=loss,
        lr=lambda step: warmup_cosine_lr(step, config),
        resume_fields={"config": _config_key(config, train_data)} if checkpoint_dir is not None else {},
        position_key="step",
        running_mean_loss=True,
        curve_extra=curve_extra,
        after_step=clamp_logit_scale,
        grad_clip_norm=config.grad_clip_norm,
        description="clip pretraining",
    )
    curve = run_training(
        task,
        checkpoint_dir,
        log_interval=config.log_interval,
        checkpoint_interval=config.checkpoint_interval,
        show_progress=show_progress,
    )
    return model, curve


def captioned_data_digest(data: CaptionedImages) -> str:
    """sha256 of the images, labels and captions of ``data``: what training and evaluation read."""
    digest = hashlib.sha256(data.images.numpy().tobytes())
    digest.update(data.labels.numpy().tobytes())
    digest.update("\n".join(data.captions).encode())
    return digest.hexdigest()


def _config_key(config: ClipPretrainingConfig, data: CaptionedImages) -> str:
    """What a resume must match: the settings and the training data (a re-rendered world trains afresh)."""
    return repr(sorted(asdict(config).items())) + " data " + captioned_data_digest(data)


def _tokenizer(model: nn.Module, model_name: str):
    import open_clip

    return open_clip.get_tokenizer(model_name, context_length=model.context_length)


# --------------------------------------------------------------------------- probes


@torch.no_grad()
def encode_texts(model: nn.Module, model_name: str, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """L2-normalised text embeddings (N, D)."""
    tokenizer = _tokenizer(model, model_name)
    chunks = [
        encode_text_trimmed(model, tokenizer(list(texts[i : i + batch_size])), normalize=True)
        for i in range(0, len(texts), batch_size)
    ]
    return torch.cat(chunks)


@torch.no_grad()
def encode_images(
    model: nn.Module, model_name: str, images: torch.Tensor, image_size: int, batch_size: int = 128
) -> torch.Tensor:
    """L2-normalised global embeddings (N, D) of uint8 images (N, 3, H, W)."""
    normalize = CLIPDenseEncoder(model, model_name=model_name).normalize
    chunks = []
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size].float().div(255)
        batch = F.interpolate(
            batch, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )
        chunks.append(model.encode_image(normalize(batch), normalize=True))
    return torch.cat(chunks)


def retrieval_recall_at_1(
    image_features: torch.Tensor, text_features: torch.Tensor, captions: Sequence[str]
) -> dict[str, float]:
    """Image→text and text→image recall@1 (a retrieved caption identical to the own one counts as a hit).

    ``chance_recall_at_1`` is what a random retrieval scores under that rule: the mean share of
    captions identical to each image's own (``1/N`` when all captions differ)."""
    similarity = image_features @ text_features.t()
    captions = np.asarray(captions)
    _, inverse, counts = np.unique(captions, return_inverse=True, return_counts=True)
    image_to_text = float(np.mean(captions[similarity.argmax(dim=1).numpy()] == captions))
    text_to_image = float(np.mean(captions[similarity.argmax(dim=0).numpy()] == captions))
    return {
        "image_to_text_recall_at_1": image_to_text,
        "text_to_image_recall_at_1": text_to_image,
        "chance_recall_at_1": float(np.mean(counts[inverse] / len(captions))),
    }


@torch.no_grad()
def dense_zero_shot_logits(
    model: nn.Module,
    model_name: str,
    images: torch.Tensor,
    class_text: torch.Tensor,
    image_size: int,
    batch_size: int = 64,
) -> torch.Tensor:
    """Cosine of every patch feature to each class text (K, D), upsampled to the label size: (N, K, H, W)."""
    encoder = CLIPDenseEncoder(model, model_name=model_name).eval()
    class_text = F.normalize(class_text, dim=-1)
    outputs = []
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size].float().div(255)
        resized = F.interpolate(
            batch, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )
        dense = F.normalize(encoder(encoder.normalize(resized)).dense, dim=1)
        cosine = torch.einsum("bdhw,kd->bkhw", dense, class_text)
        outputs.append(F.interpolate(cosine, size=batch.shape[-2:], mode="bilinear", align_corners=False))
    return torch.cat(outputs)


def pixel_accuracy_by_group(
    prediction: torch.Tensor, target: torch.Tensor, ignore_index: int, groups: dict[str, Sequence[int]]
) -> dict[str, float]:
    """Pixel accuracy over all valid pixels and over the pixels whose ground truth is in each group,
    plus the mean per-class accuracy (classes with pixels)."""
    valid = target != ignore_index
    correct = (prediction == target) & valid
    result = {"pixel_accuracy": float(correct.sum() / valid.sum().clamp_min(1))}
    for name, ids in groups.items():
        member = torch.isin(target, torch.as_tensor(list(ids), dtype=target.dtype)) & valid
        result[f"pixel_accuracy_{name}"] = (
            float(correct[member].sum() / member.sum().clamp_min(1)) if member.any() else float("nan")
        )
    classes = torch.unique(target[valid])
    per_class = [float(correct[target == c].sum() / (target == c).sum()) for c in classes.tolist()]
    result["mean_class_accuracy"] = float(np.mean(per_class)) if per_class else float("nan")
    return result


def attribute_targets(
    labels: torch.Tensor, attribute: str, concepts: Sequence[Concept], ignore_index: int
) -> tuple[torch.Tensor, list[str]]:
    """Per-pixel index of the concept's ``attribute`` word among the distinct words (ignore where none)."""
    words = sorted({c.attribute_words().get(attribute) for c in concepts} - {None, ""})
    lookup = torch.full((max(len(concepts), ignore_index + 1),), ignore_index, dtype=torch.int64)
    for concept in concepts:
        word = concept.attribute_words().get(attribute)
        if word:
            lookup[concept.id] = words.index(word)
    clipped = torch.where(labels == ignore_index, torch.full_like(labels, ignore_index), labels)
    return lookup[clipped], words


def zero_shot_probe(
    model: nn.Module,
    model_name: str,
    data: CaptionedImages,
    concepts: Sequence[Concept],
    groups: dict[str, Sequence[int]],
    *,
    image_size: int,
    descriptions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Dense zero-shot pixel accuracy with name-only vs attribute prompts, and attribute accuracies.

    ``groups`` maps a group name (head, tail, unseen…) to concept ids; ``descriptions`` default to
    ``Concept.describe()`` ("a lime is small, round, green and smooth").
    """
    model.eval()
    name_prompts = [NAME_TEMPLATE.format(c.name) for c in concepts]
    attribute_prompts = list(descriptions) if descriptions is not None else [c.describe() + "." for c in concepts]
    result: dict[str, Any] = {"chance_pixel_accuracy": 1.0 / len(concepts)}
    for key, prompts in (("name_prompts", name_prompts), ("attribute_prompts", attribute_prompts)):
        logits = dense_zero_shot_logits(
            model, model_name, data.images, encode_texts(model, model_name, prompts), image_size
        )
        result[key] = pixel_accuracy_by_group(logits.argmax(1), data.labels, data.ignore_index, groups)
    for attribute in ("colour", "shape", "texture"):
        target, words = attribute_targets(data.labels, attribute, concepts, data.ignore_index)
        text = encode_texts(model, model_name, [ATTRIBUTE_PROBE_TEMPLATE.format(word) for word in words])
        prediction = dense_zero_shot_logits(model, model_name, data.images, text, image_size).argmax(1)
        valid = target != data.ignore_index
        result[f"{attribute}_accuracy"] = float(((prediction == target) & valid).sum() / valid.sum().clamp_min(1))
        result[f"{attribute}_chance"] = 1.0 / len(words)
    return result


def concept_groups(world: dict[str, Any]) -> dict[str, list[int]]:
    """head / mid / tail (world.json frequency groups) and unseen concept ids."""
    by_name = {concept["name"]: concept["id"] for concept in world["concepts"]}
    groups = {group: [by_name[name] for name in names] for group, names in world["groups"].items()}
    groups["unseen"] = [concept["id"] for concept in world["concepts"] if concept.get("unseen")]
    return groups


def clip_from_state_dict(clip_config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Rebuild the pretrained CLIP from ``tiny_clip_config`` and ``tiny_clip_checkpoint`` (catalog entries)."""
    model = load_clip(clip_config["model_name"], None, image_size=clip_config["image_size"])
    load_model_weights(model, state_dict, "tiny_clip_checkpoint")
    return model.eval()


def held_out_probes(
    model: nn.Module, config: ClipPretrainingConfig, data: CaptionedImages, world: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    """(retrieval recall@1, dense zero-shot probe) of a pretrained tiny CLIP on a held-out split of ``world``."""
    image_features = encode_images(model, config.model_name, data.images, config.image_size)
    text_features = encode_texts(model, config.model_name, data.captions)
    retrieval = retrieval_recall_at_1(image_features, text_features, data.captions)
    probe = zero_shot_probe(
        model, config.model_name, data, CONCEPTS, concept_groups(world), image_size=config.image_size
    )
    return retrieval, probe

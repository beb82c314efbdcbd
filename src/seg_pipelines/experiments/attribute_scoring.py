"""Attribute scoring for LLM prompt selection (thesis 5.2.3 "Attribute Selection", Table 5.3/5.4).

Each attribute's prompts are evaluated with the lightweight OVSS baseline, CAT-Seg *without* its
spatial and class aggregation (``create_model("catseg", use_aggregation=False)``), on every
benchmark vocabulary, with the open-vocabulary mIoU protocol.

Work is shared between prompt sets (DESIGN.md §8): the image side (CLIP dense features, and the
decoder guidance features for ``finetune`` mode) is computed **once** per image by
:class:`ImageFeatureBank`; scoring a prompt set only re-encodes its text and recomputes the cost
map. Benchmarks that share images (the synthetic world's six vocabularies are label mappings of
the same images) also share the cost map: the logits of the union of their classes are
computed and upsampled once per image batch, and each benchmark takes its own class columns
(bilinear upsampling is per channel, so this is exact).

Two modes:

- ``zero_shot`` (:class:`AttributeScorer` with no training): frozen CLIP; prediction = argmax over
  classes of the cosine cost map M = cos(E, T) (eq. 5.2) upsampled to the label size — the
  untrained aggregation-free CAT-Seg reduces to exactly this.
- ``finetune`` (:func:`finetune_head`, the default and the thesis's scorer, 5.3.4: "training on
  the COCO-Stuff dataset using CATSeg without spatial and class aggregation"): per prompt set, the
  aggregation-free head (cost embedding + upsampling decoder with its guidance projections,
  eq. 5.9) is trained from the same initial weights on the *seen* classes of the training split
  with per-pixel BCE, then evaluated on every benchmark; seen and unseen classes are reported
  apart (:attr:`AttributeScorer.last_seen_unseen`).

  **Frozen**: the whole CLIP (image and text towers). Its image features (dense features and the
  intermediate guidance features of every training and evaluation image) are computed once by
  :func:`build_scorer` and shared by every prompt set; the text tower only encodes each prompt
  set's class prompts. **Trained per prompt set**: every non-CLIP parameter of the head. (The
  thesis also fine-tunes CLIP's attention q/v; that would make the image features depend on the
  prompt set's training run, i.e. recompute them per prompt set, which is what the shared image
  side avoids.) Noise replicates are training seeds (head initialisation and batch order):
  :meth:`AttributeScorer.evaluate_replicates`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from seg_pipelines.engine.evaluation import map_predictions_to_background, scores_from_confusion
from seg_pipelines.models.ovss.catseg import CATSeg, per_pixel_bce_loss
from seg_pipelines.models.ovss.cost_volume import cosine_cost_volume
from seg_pipelines.models.ovss.filtering import FilteredCost, scatter_class_logits

logger = logging.getLogger(__name__)

PromptsByClass = Mapping[str, "str | Sequence[str]"]


# --------------------------------------------------------------------------- data containers


@dataclass
class ScoringBenchmark:
    """One benchmark: its vocabulary and labels, with images referenced by key in a feature bank.

    Args:
        name: column name in the tables (``syn847``, ``A-847``...).
        class_names: the vocabulary, class-id order.
        image_keys: one key per sample (the image path), looked up in :class:`ImageFeatureBank`.
        labels: (N, H, W) int64 class ids in this vocabulary, ``ignore_index`` where unlabelled.
        ignore_index: this benchmark's ignore value (255, 65535, number of classes...).
        background_mapping: ``(first_id, background_id)`` for the VOC-21b rule, else ``None``.
    """

    name: str
    class_names: list[str]
    image_keys: list[str]
    labels: torch.Tensor
    ignore_index: int
    background_mapping: tuple[int, int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class ImageFeatureBank:
    """Frozen image-side features, one row per distinct image.

    dense: (M, D, h, w) CLIP dense features (joint space, not normalised);
    guidance: list of (M, C, h, w) intermediate features (only kept for ``finetune``);
    index: image key → row.
    """

    dense: torch.Tensor
    guidance: list[torch.Tensor] | None
    index: dict[str, int]

    def rows(self, keys: Sequence[str]) -> torch.Tensor:
        try:
            return torch.as_tensor([self.index[key] for key in keys], dtype=torch.long)
        except KeyError as error:
            raise KeyError(f"image {error.args[0]!r} has no cached features") from error


@torch.no_grad()
def compute_image_features(
    model: CATSeg,
    images: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]],
    *,
    batch_size: int = 32,
    keep_guidance: bool = False,
    progress: bool = True,
) -> ImageFeatureBank:
    """Run the image side of ``model`` once per distinct image (uint8 H×W×3 arrays).

    Images are scaled to [0, 1] and resized to the CLIP input size by ``model.visual_features``.
    """
    items = list(images.items()) if isinstance(images, Mapping) else list(images)
    keys: list[str] = []
    unique: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, image in items:
        if key not in unique:
            unique[key] = image
    keys = list(unique)
    dense_chunks: list[torch.Tensor] = []
    guidance_chunks: list[list[torch.Tensor]] = []
    model.eval()
    for start in tqdm(range(0, len(keys), batch_size), desc="CLIP image features", disable=not progress):
        batch_keys = keys[start : start + batch_size]
        shapes = {unique[k].shape for k in batch_keys}
        if len(shapes) != 1:  # different sizes: encode one by one (CLIP resizes each to its input size)
            outs = [model.visual_features(_to_tensor([unique[k]])) for k in batch_keys]
            dense = torch.cat([o[0] for o in outs])
            guidance = [torch.cat([o[1][i] for o in outs]) for i in range(len(outs[0][1]))]
        else:
            dense, guidance = model.visual_features(_to_tensor([unique[k] for k in batch_keys]))
        dense_chunks.append(dense)
        if keep_guidance:
            guidance_chunks.append(guidance)
    dense = torch.cat(dense_chunks) if dense_chunks else torch.empty(0)
    guidance = None
    if keep_guidance and guidance_chunks:
        guidance = [torch.cat([chunk[i] for chunk in guidance_chunks]) for i in range(len(guidance_chunks[0]))]
    return ImageFeatureBank(dense=dense, guidance=guidance, index={key: row for row, key in enumerate(keys)})


def _to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    array = np.stack([np.asarray(image) for image in images])
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"images must be H×W×3, got batch of shape {array.shape}")
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div_(255.0)


# --------------------------------------------------------------------------- text side


def normalise_prompts(prompts_by_class: PromptsByClass, class_names: Sequence[str]) -> list[list[str]]:
    """``{class: prompt | [prompts]}`` → class-major list of prompt lists for ``class_names``."""
    out = []
    for name in class_names:
        if name not in prompts_by_class:
            raise KeyError(f"no prompt for class {name!r}")
        value = prompts_by_class[name]
        prompts = [value] if isinstance(value, str) else list(value)
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise ValueError(f"class {name!r} has an empty prompt")
        out.append(prompts)
    return out


@torch.no_grad()
def encode_class_prompts(model: CATSeg, prompts: Sequence[Sequence[str]], batch_size: int = 256) -> torch.Tensor:
    """(K, D) class embeddings: each class's prompts encoded (truncated to the CLIP context) and
    L2-normalised, averaged over its prompts and re-normalised (template ensembling)."""
    flat = [prompt for per_class in prompts for prompt in per_class]
    owners = torch.as_tensor([k for k, per_class in enumerate(prompts) for _ in per_class])
    chunks = []
    for start in range(0, len(flat), batch_size):
        tokens = model.clip.tokenize([[p] for p in flat[start : start + batch_size]])
        chunks.append(model.clip.encode_text_tokens(tokens)[:, 0])
    embeddings = F.normalize(torch.cat(chunks), dim=-1)
    summed = torch.zeros(len(prompts), embeddings.shape[-1], dtype=embeddings.dtype).index_add_(0, owners, embeddings)
    return F.normalize(summed, dim=-1)


# --------------------------------------------------------------------------- head (finetune mode)


def head_logits(
    model: CATSeg,
    dense: torch.Tensor,
    guidance: list[torch.Tensor],
    text: torch.Tensor,
    filtered: FilteredCost | None = None,
) -> torch.Tensor:
    """Aggregation-free CAT-Seg on cached features: (B, D, h, w) × (K, D) → logits (B, K, 4h, 4w).

    ``filtered``: the cost volume of these images (:meth:`CATSeg.category_filter`), when already
    computed (it only depends on the frozen features and the prompt set's text).
    """
    text = text.unsqueeze(-2) if text.dim() == 2 else text
    filtered = model.category_filter(dense, text) if filtered is None else filtered
    logits = aggregation_free_logits(model, filtered.cost, guidance)
    return scatter_class_logits(logits, filtered.indices, filtered.num_classes, model.filtered_logit)


def aggregation_free_logits(model: CATSeg, cost: torch.Tensor, guidance: list[torch.Tensor]) -> torch.Tensor:
    """``model.aggregate`` without aggregation layers — O = Up(Emb(M'), E') (eq. 5.9) — computed
    with fewer operations, same function of the same parameters:

    * cost embedding (7×7 conv) → first transposed conv → the first 3×3 conv's cost half is one
      affine map of the P·h·w cost values of an (image, class) pair (no non-linearity between
      them): its matrix is obtained by pushing the P·h·w unit inputs through the bias-free layers,
      its offset by pushing a zero input through the layers with bias; every (image, class) pair
      then costs one matrix product instead of three convolutions (exact up to float rounding,
      gradients flow to the same weights);
    * the guidance half of each block's first conv is computed once per image
      (:meth:`GuidedUpsampleBlock.guidance_conv`).

    cost (B, P, k, h, w), guidance: CLIP intermediate features → logits (B, k, 4h, 4w).
    """
    if model.use_aggregation:
        raise ValueError("aggregation_free_logits needs CAT-Seg built with use_aggregation=False")
    decoder = model.decoder
    batch, prompts, classes, height, width = cost.shape
    x = cost.transpose(1, 2).reshape(batch * classes, prompts, height, width)
    if len(decoder.guidance_projections) and guidance:
        projected = [project(g) for project, g in zip(decoder.guidance_projections, guidance)]
    else:
        projected = [None] * len(decoder.blocks)
    first = decoder.blocks[0]
    embedding, up = model.cost_embedding, first.up

    def prefix(z: torch.Tensor, bias: bool) -> torch.Tensor:
        z = F.conv2d(z, embedding.weight, embedding.bias if bias else None, padding=embedding.padding)
        z = F.conv_transpose2d(z, up.weight, up.bias if bias else None, stride=up.stride)
        return first.input_conv(z)

    inputs = prompts * height * width
    if x.shape[0] > inputs:  # the matrix is worth building
        unit = torch.eye(inputs, dtype=x.dtype, device=x.device).view(inputs, prompts, height, width)
        matrix = prefix(unit, bias=False)  # (P·h·w, C, 2h, 2w)
        offset = prefix(x.new_zeros(1, prompts, height, width), bias=True)
        y = (x.flatten(1) @ matrix.flatten(1)).view(-1, *matrix.shape[1:]) + offset
    else:
        y = prefix(x, bias=True)
    g = projected[0]
    x = first.finish(y, first.guidance_conv(g) if g is not None else None)
    for block, g in zip(decoder.blocks[1:], projected[1:]):
        x = block(x, g)
    logits = decoder.head(x)
    return logits.view(batch, classes, *logits.shape[-2:])


@dataclass
class FinetuneConfig:
    """Short training of the aggregation-free head per prompt set (thesis: "training ... CAT-Seg
    without spatial and class aggregation" for every attribute)."""

    steps: int = 60
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0


def finetune_head(
    model: CATSeg,
    train_features: ImageFeatureBank,
    train_keys: Sequence[str],
    train_labels: torch.Tensor,
    text: torch.Tensor,
    ignore_index: int,
    config: FinetuneConfig,
    initial_state: Mapping[str, torch.Tensor] | None = None,
) -> list[float]:
    """Train ``model``'s cost embedding + decoder (CLIP frozen, features cached) with per-pixel BCE.

    ``initial_state`` (the head's weights before any training) makes every prompt set start from
    the same initialisation. Returns the loss per step.

    Frozen and therefore computed once per call, not per step: the cost volume (with its top-k
    class filtering) of every training image against ``text`` — it depends only on the frozen
    CLIP features and the prompt set. Each step runs the trained layers only
    (:func:`aggregation_free_logits`), with autograd recording nothing of CLIP.
    """
    if train_features.guidance is None:
        raise ValueError("finetune mode needs guidance features: compute_image_features(keep_guidance=True)")
    head_parameters = [p for n, p in model.named_parameters() if not n.startswith("clip.")]
    if initial_state is not None:
        model.load_state_dict(dict(initial_state), strict=False)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(head_parameters, lr=config.lr, weight_decay=config.weight_decay)
    rows = train_features.rows(train_keys)
    costs = _filtered_costs(model, train_features.dense[rows], text)
    losses = []
    model.train()
    for _ in range(config.steps):
        pick = torch.randint(len(rows), (min(config.batch_size, len(rows)),), generator=generator)
        index = rows[pick]
        guidance = [g[index] for g in train_features.guidance]
        indices = costs.indices[pick] if costs.indices is not None else None
        logits = aggregation_free_logits(model, costs.cost[pick], guidance)
        logits = scatter_class_logits(logits, indices, costs.num_classes, model.filtered_logit)
        loss = per_pixel_bce_loss(logits, train_labels[pick], ignore_index=ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def _filtered_costs(model: CATSeg, dense: torch.Tensor, text: torch.Tensor, batch_size: int = 64) -> FilteredCost:
    """The category filter's cost volume (eq. 5.2–5.6) of every image, in batches: cost
    (N, P, k, h, w), kept class indices (N, k) or None."""
    text = text.unsqueeze(-2) if text.dim() == 2 else text
    parts = [model.category_filter(dense[i : i + batch_size], text) for i in range(0, len(dense), batch_size)]
    indices = None if parts[0].indices is None else torch.cat([p.indices for p in parts])
    cost, kept_text = torch.cat([p.cost for p in parts]), torch.cat([p.text for p in parts])
    return FilteredCost(cost, kept_text, indices, parts[0].num_classes)


# --------------------------------------------------------------------------- scorer


@dataclass
class ScoringTimes:
    image_seconds: float = 0.0
    text_seconds: float = 0.0
    cost_seconds: float = 0.0
    train_seconds: float = 0.0
    evaluations: int = 0

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


@dataclass
class AttributeScorer:
    """Scores prompt sets on benchmarks with the image side computed once.

    Build with :meth:`build`; call :meth:`evaluate` with ``{class: prompt or [prompts]}``.
    In ``finetune`` mode pass ``train`` = (keys, labels, ignore_index, class_names, FinetuneConfig).
    """

    model: CATSeg
    features: ImageFeatureBank
    benchmarks: list[ScoringBenchmark]
    mode: str = "zero_shot"
    batch_size: int = 32
    train_features: ImageFeatureBank | None = None
    train_keys: list[str] = field(default_factory=list)
    train_labels: torch.Tensor | None = None
    train_ignore_index: int = 255
    train_class_names: list[str] = field(default_factory=list)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    folds: int = 1
    fold_seed: int = 0
    #: the evaluation images' folds form two halves: the first ``folds // 2`` (the *selection*
    #: half, where attributes are ranked and combinations chosen) and the rest (the *held-out*
    #: half, where only the chosen prompt set is compared with the template). See
    #: :meth:`evaluate_split`.
    held_out: bool = False
    times: ScoringTimes = field(default_factory=ScoringTimes)
    images_encoded: int = 0
    _head_init: dict[str, torch.Tensor] | None = None
    _seed_inits: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    #: after each evaluation (``finetune``): {benchmark: {"seen": mIoU, "unseen": mIoU}} over the
    #: benchmark's classes in / not in the training vocabulary; one entry per replicate
    last_seen_unseen: list[dict[str, dict[str, float]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in ("zero_shot", "finetune"):
            raise ValueError(f"scoring mode must be 'zero_shot' or 'finetune', got {self.mode!r}")
        if self.mode == "finetune" and (self.train_features is None or self.train_labels is None):
            raise ValueError("finetune mode needs train_features and train_labels")
        if self.folds < 1:
            raise ValueError(f"folds must be >= 1, got {self.folds}")
        if self.held_out and self.folds % 2:
            raise ValueError(f"a held-out half needs an even number of folds (two equal halves), got {self.folds}")
        self._head_init = {
            k: v.detach().clone() for k, v in self.model.state_dict().items() if not k.startswith("clip.")
        }
        self._groups = self._group_benchmarks()

    @property
    def class_names(self) -> list[str]:
        """Union of every benchmark's classes (and the training vocabulary), first-seen order."""
        names = list(self.train_class_names) if self.mode == "finetune" else []
        for benchmark in self.benchmarks:
            names.extend(benchmark.class_names)
        return list(OrderedDict.fromkeys(names))

    @property
    def context_length(self) -> int:
        return self.model.clip.context_length

    def _group_benchmarks(self) -> list[tuple[list[str], list[ScoringBenchmark], list[str]]]:
        """Benchmarks over the same images share one cost map over the union of their classes."""
        groups: OrderedDict[tuple[str, ...], list[ScoringBenchmark]] = OrderedDict()
        for benchmark in self.benchmarks:
            groups.setdefault(tuple(benchmark.image_keys), []).append(benchmark)
        out = []
        for keys, members in groups.items():
            union = list(OrderedDict.fromkeys(name for b in members for name in b.class_names))
            out.append((list(keys), members, union))
        return out

    def encode(self, prompts_by_class: PromptsByClass, class_names: Sequence[str]) -> torch.Tensor:
        start = time.perf_counter()
        text = encode_class_prompts(self.model, normalise_prompts(prompts_by_class, class_names))
        self.times.text_seconds += time.perf_counter() - start
        return text

    @torch.no_grad()
    def _logits(self, dense: torch.Tensor, guidance: list[torch.Tensor] | None, text: torch.Tensor) -> torch.Tensor:
        if self.mode == "zero_shot":
            return cosine_cost_volume(dense, text.unsqueeze(1))[:, 0]  # eq. 5.2, (B, K, h, w)
        return head_logits(self.model, dense, guidance or [], text)

    def _prepare_targets(self) -> None:
        """Per benchmark, once: flat positions of the labelled pixels and ``truth * K`` offsets, so
        each evaluation only gathers predictions there and bincounts (no masking per prompt set)."""
        self._targets = {}
        for keys, members, _ in self._groups:
            # image -> fold: a seeded permutation dealt round-robin into `folds` disjoint parts
            order = torch.randperm(len(keys), generator=torch.Generator().manual_seed(self.fold_seed))
            fold_of_image = torch.empty(len(keys), dtype=torch.long)
            fold_of_image[order] = torch.arange(len(keys)) % self.folds
            for benchmark in members:
                labels = benchmark.labels
                valid = labels != benchmark.ignore_index
                truth = labels[valid]
                if truth.numel() and (truth.min() < 0 or truth.max() >= benchmark.num_classes):
                    raise ValueError(f"benchmark {benchmark.name!r}: labels outside 0..{benchmark.num_classes - 1}")
                batches = []
                for begin in range(0, len(keys), self.batch_size):
                    chunk = valid[begin : begin + self.batch_size].reshape(-1)
                    position = chunk.nonzero().squeeze(1)
                    k = benchmark.num_classes
                    truth_offset = labels[begin : begin + self.batch_size].reshape(-1)[position] * k
                    pixels = labels.shape[-1] * labels.shape[-2]
                    fold = fold_of_image[begin : begin + self.batch_size][position // pixels]
                    batches.append((position, truth_offset + fold * k * k))
                self._targets[benchmark.name] = batches

    def head_init(self, seed: int) -> dict[str, torch.Tensor]:
        """The head's initial weights for training seed ``seed`` (the build-time ones for the
        config's seed; otherwise every head layer re-initialised under ``torch.manual_seed(seed)``)."""
        if seed == self.finetune.seed or self._head_init is None:
            return self._head_init or {}
        if seed not in self._seed_inits:
            current = {k: v.detach().clone() for k, v in self.model.state_dict().items() if not k.startswith("clip.")}
            torch.manual_seed(seed)
            for name, module in self.model.named_modules():
                if name and not name.startswith("clip") and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            self._seed_inits[seed] = {
                k: v.detach().clone() for k, v in self.model.state_dict().items() if not k.startswith("clip.")
            }
            self.model.load_state_dict(current, strict=False)
        return self._seed_inits[seed]

    def evaluate(self, prompts_by_class: PromptsByClass, seed: int | None = None) -> dict[str, float]:
        """mIoU (%, open-vocabulary protocol) of ``prompts_by_class`` on every benchmark
        (``finetune``: the head trained with ``seed``, default the config's)."""
        return self._evaluate(prompts_by_class, seed)[0]

    def evaluate_replicates(self, prompts_by_class: PromptsByClass, seeds: Sequence[int]) -> list[dict[str, float]]:
        """One score dict per noise replicate, paired across prompt sets: the selection half of
        :meth:`evaluate_split` (every image when the scorer has no held-out half)."""
        return self.evaluate_split(prompts_by_class, seeds)[0]

    def evaluate_split(
        self, prompts_by_class: PromptsByClass, seeds: Sequence[int]
    ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        """(selection replicates, held-out replicates) of one prompt set, from one pass.

        Replicates: ``finetune``, one per training seed (head init and batch order); ``zero_shot``
        (deterministic given the images), one per disjoint image fold, i.e. the image-sampling noise.
        With :attr:`held_out` the images are split into two disjoint halves of folds, and each
        replicate is scored on both: the selection half (``finetune``: fold 0; ``zero_shot``: the
        first ``folds // 2`` folds) ranks and chooses, the held-out half (``finetune``: fold 1;
        ``zero_shot``: the other folds) only confirms, so a choice's verdict is not measured on the
        images that chose it (the winner's curse). Without it the second list is empty.
        """
        parts = 2 if self.held_out else 1
        if self.mode == "finetune":
            selection, held_out, splits = [], [], []
            for seed in seeds:
                overall, folds = self._evaluate(prompts_by_class, int(seed))
                selection.append(folds[0] if self.held_out else overall)
                if self.held_out:
                    held_out.append(folds[1])
                splits.extend(self.last_seen_unseen)
            self.last_seen_unseen = splits
            return selection, held_out
        if len(seeds) > 1 and self.folds < 2 * parts:
            raise ValueError(
                f"zero_shot replicates are image folds: {len(seeds)} replicates need a scorer built with "
                f"folds = {len(seeds) * parts}, it has {self.folds}"
            )
        overall, folds = self._evaluate(prompts_by_class, None)
        if not self.held_out:
            return (folds if len(seeds) > 1 else [overall]), []
        half = self.folds // 2
        return folds[:half], folds[half:]

    def _evaluate(
        self, prompts_by_class: PromptsByClass, seed: int | None
    ) -> tuple[dict[str, float], list[dict[str, float]]]:
        if not hasattr(self, "_targets"):
            self._prepare_targets()
        if self.mode == "finetune":
            seed = self.finetune.seed if seed is None else seed
            train_text = self.encode(prompts_by_class, self.train_class_names)
            start = time.perf_counter()
            finetune_head(
                self.model,
                self.train_features,
                self.train_keys,
                self.train_labels,
                train_text,
                self.train_ignore_index,
                FinetuneConfig(**{**self.finetune.__dict__, "seed": seed}),
                self.head_init(seed),
            )
            self.times.train_seconds += time.perf_counter() - start
        results: dict[str, float] = {}
        per_fold: list[dict[str, float]] = [{} for _ in range(self.folds)]
        seen_names = set(self.train_class_names)
        split: dict[str, dict[str, float]] = {}
        for keys, members, union in self._groups:
            text = self.encode(prompts_by_class, union)
            start = time.perf_counter()
            # Benchmarks with the same class list (syn847 / synpc459) share one argmax.
            class_lists: OrderedDict[tuple[str, ...], list[ScoringBenchmark]] = OrderedDict()
            for benchmark in members:
                class_lists.setdefault(tuple(benchmark.class_names), []).append(benchmark)
            columns = {names: torch.as_tensor([union.index(n) for n in names]) for names in class_lists}
            counts = {b.name: torch.zeros(self.folds * b.num_classes**2, dtype=torch.int64) for b in members}
            rows = self.features.rows(keys)
            label_size = tuple(members[0].labels.shape[-2:])
            for batch_number, begin in enumerate(range(0, len(keys), self.batch_size)):
                index = rows[begin : begin + self.batch_size]
                guidance = [g[index] for g in self.features.guidance] if self.features.guidance is not None else None
                low_res = self._logits(self.features.dense[index], guidance, text)
                for names, benchmarks in class_lists.items():
                    subset = low_res[:, columns[names]].contiguous(memory_format=torch.channels_last)
                    # bilinear upsampling to the label size, then argmax over classes (NHWC: contiguous)
                    upsampled = F.interpolate(subset, size=label_size, mode="bilinear", align_corners=False)
                    prediction = upsampled.permute(0, 2, 3, 1).argmax(dim=-1).reshape(-1)
                    for benchmark in benchmarks:
                        position, truth_offset = self._targets[benchmark.name][batch_number]
                        predicted = prediction[position]
                        if benchmark.background_mapping is not None:
                            predicted = map_predictions_to_background(predicted, *benchmark.background_mapping)
                        counts[benchmark.name] += torch.bincount(
                            truth_offset + predicted, minlength=self.folds * benchmark.num_classes**2
                        )
            for benchmark in members:
                k = benchmark.num_classes
                matrices = counts[benchmark.name].view(self.folds, k, k)
                scores = scores_from_confusion(matrices.sum(0), protocol="open_vocabulary")
                results[benchmark.name] = 100.0 * scores.miou
                if seen_names:  # thesis 5.2.3: "assessing both seen and unseen classes"
                    seen = np.array([name in seen_names for name in benchmark.class_names])
                    split[benchmark.name] = {
                        part: _mean_iou(scores.iou[mask]) for part, mask in (("seen", seen), ("unseen", ~seen))
                    }
                if self.folds > 1:
                    for fold in range(self.folds):
                        miou = scores_from_confusion(matrices[fold], protocol="open_vocabulary").miou
                        per_fold[fold][benchmark.name] = 100.0 * miou
            self.times.cost_seconds += time.perf_counter() - start
        self.times.evaluations += 1
        self.last_seen_unseen = [split] if split else []
        order = [b.name for b in self.benchmarks]
        overall = {name: results[name] for name in order}
        folds = [{name: fold[name] for name in order} for fold in per_fold] if self.folds > 1 else [overall]
        return overall, folds


def _mean_iou(iou: np.ndarray) -> float:
    """Mean (%) of the counted IoUs (classes present in the labels), NaN when none is."""
    counted = iou[np.isfinite(iou)]
    return 100.0 * float(counted.mean()) if counted.size else float("nan")


def build_scorer(
    model: CATSeg,
    benchmarks: Sequence[tuple[ScoringBenchmark, Mapping[str, np.ndarray]]],
    *,
    mode: str = "zero_shot",
    batch_size: int = 32,
    train: tuple[Mapping[str, np.ndarray], torch.Tensor, int, Sequence[str]] | None = None,
    finetune: FinetuneConfig | None = None,
    progress: bool = True,
    folds: int = 1,
    held_out: bool = False,
) -> AttributeScorer:
    """Compute the image side once for every distinct image of ``benchmarks`` (and ``train``).

    Args:
        benchmarks: (benchmark, {image key: uint8 image}) pairs; shared keys are encoded once.
        train: for ``finetune``: ({key: image}, labels (N, H', W') at the head's output size or any
            size, ignore index, training class names).
        folds, held_out: disjoint image folds of the evaluation images and whether they form a
            selection and a held-out half (:meth:`AttributeScorer.evaluate_split`).
    """
    start = time.perf_counter()
    images: OrderedDict[str, np.ndarray] = OrderedDict()
    for _, benchmark_images in benchmarks:
        for key, image in benchmark_images.items():
            images.setdefault(key, image)
    keep_guidance = mode == "finetune"
    features = compute_image_features(
        model, images, batch_size=batch_size, keep_guidance=keep_guidance, progress=progress
    )
    encoded = len(images)
    train_kwargs: dict = {}
    if mode == "finetune":
        if train is None:
            raise ValueError("finetune mode needs the training split (train=...)")
        train_images, train_labels, train_ignore, train_classes = train
        train_features = compute_image_features(
            model, train_images, batch_size=batch_size, keep_guidance=True, progress=progress
        )
        encoded += len(train_images)
        train_kwargs = dict(
            train_features=train_features,
            train_keys=list(train_images),
            train_labels=train_labels,
            train_ignore_index=int(train_ignore),
            train_class_names=list(train_classes),
            finetune=finetune or FinetuneConfig(),
        )
    scorer = AttributeScorer(
        model,
        features,
        [b for b, _ in benchmarks],
        mode=mode,
        batch_size=batch_size,
        folds=folds,
        held_out=held_out,
        **train_kwargs,
    )
    scorer.images_encoded = encoded
    scorer.times.image_seconds = time.perf_counter() - start
    logger.info(
        "attribute scoring: image features of %d images in %.1f s (computed once)", encoded, scorer.times.image_seconds
    )
    return scorer


# --------------------------------------------------------------------------- building blocks for nodes


def build_scoring_model(
    clip_config: Mapping[str, object],
    clip_weights: Mapping[str, torch.Tensor] | str | None,
    *,
    seed: int = 0,
    **catseg_kwargs,
) -> CATSeg:
    """The aggregation-free CAT-Seg (thesis 5.2.3's lightweight baseline) on a frozen CLIP.

    ``clip_weights`` is a state dict (the ``tiny_clip_checkpoint`` catalog entry), a checkpoint
    path, or ``None`` (random init, for tests).
    """
    from seg_pipelines.engine.training import load_model_weights
    from seg_pipelines.models.factory import create_model

    torch.manual_seed(seed)
    weights_path = clip_weights if isinstance(clip_weights, str) else None
    model = create_model(
        "catseg",
        clip_model=str(clip_config["model_name"]),
        clip_pretrained=weights_path,
        image_size=int(clip_config["image_size"]) if clip_config.get("image_size") else None,
        clip_finetune="frozen",
        use_aggregation=False,
        **catseg_kwargs,
    )
    if isinstance(clip_weights, Mapping):
        load_model_weights(model.clip.clip, dict(clip_weights), "tiny_clip_checkpoint")
    return model.eval()


def load_benchmark(
    reader,
    name: str,
    split: str,
    *,
    background_class: str | None = None,
    limit: int | None = None,
    eval_size: int | None = None,
) -> tuple[ScoringBenchmark, OrderedDict[str, np.ndarray]]:
    """Read ``split`` of a benchmark reader into a :class:`ScoringBenchmark` and its images.

    ``eval_size``: score at this label size (labels nearest-resized, logits upsampled to it)
    instead of the label files' own size; ``None`` keeps the protocol's full resolution.

    ``background_class``: when the vocabulary has this class (VOC-21b's ``background``), every
    prediction with an id ≥ its id becomes background (DESIGN.md §6).
    """
    images: OrderedDict[str, np.ndarray] = OrderedDict()
    labels = []
    samples = reader.list_samples(split)[:limit]
    if not samples:
        raise ValueError(f"benchmark {name!r}: split {split!r} has no samples")
    for sample in samples:
        image, label = reader.load_pair(sample)
        key = str(sample.image_path)
        images[key] = image
        labels.append(torch.from_numpy(np.asarray(label, dtype=np.int64)))
    shapes = {tuple(label.shape) for label in labels}
    if len(shapes) != 1:
        raise ValueError(f"benchmark {name!r}: labels of different sizes {sorted(shapes)}; resize them first")
    stacked = torch.stack(labels)
    if eval_size is not None and tuple(stacked.shape[-2:]) != (eval_size, eval_size):
        stacked = F.interpolate(stacked[:, None].float(), size=(eval_size, eval_size), mode="nearest")[:, 0].long()
    class_names = list(reader.class_names)
    mapping = None
    if background_class is not None and background_class in class_names:
        background_id = class_names.index(background_class)
        mapping = (background_id, background_id)
    benchmark = ScoringBenchmark(name, class_names, list(images), stacked, int(reader.ignore_index), mapping)
    return benchmark, images

"""The chapter 5 OVSS runs of the ``lsmseg`` pipeline, over ``engine.ovss_training`` / ``engine.ovss_evaluation``.

validate inputs (cheap, before any training) → train CAT-Seg baseline and LSMSeg with the same budget
on the training vocabulary → evaluate both on every benchmark vocabulary → Table 5.1 / 5.2 layouts,
cost-map figure (Figure 5.9 style) and qualitative predictions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from seg_pipelines.datasets.base import DatasetError
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import build_index, data_digest
from seg_pipelines.datasets.loaders import AugmentationConfig, SegmentationDataset, build_transform
from seg_pipelines.datasets.synthetic.concepts import world_prompt_set
from seg_pipelines.engine import ovss_evaluation as evaluation
from seg_pipelines.engine import ovss_training as training
from seg_pipelines.engine.evaluation import chance_iou
from seg_pipelines.engine.runtime import set_torch_threads
from seg_pipelines.engine.training import CheckpointError, load_model_weights
from seg_pipelines.experiments.figures import CostMapRow, data_source, plot_cost_map_grid
from seg_pipelines.experiments.figures import plot_qualitative as plot_labelled_predictions
from seg_pipelines.models.checkpoints import read_checkpoint
from seg_pipelines.models.factory import create_model
from seg_pipelines.models.ovss.clip import ensemble_text_embeddings, load_clip
from seg_pipelines.models.ovss.sam import TINY_SAM_VARIANTS
from seg_pipelines.prompts.packaged_models import file_sha256
from seg_pipelines.statistics import paired_comparison

logger = logging.getLogger(__name__)

MODEL_KEYS = ("baseline", "lsmseg")
MODEL_LABELS = {"baseline": "CAT-Seg (baseline)", "lsmseg": "LSMSeg"}
COST_MAP_TITLES = {"baseline": "CAT-Seg", "lsmseg": "LSMSeg"}  # column titles of the cost-map figure


# --------------------------------------------------------------------------- helpers


#: ``lsmseg.train_vocabulary: dataset``: train on the prepared dataset's own classes (a real dataset, e.g.
#: COCO-Stuff's 171, thesis §5.3.2); any other name is a vocabulary of the synthetic world (``seen``).
DATASET_VOCABULARY = "dataset"


def _vocabulary_kwargs(manifest: dict[str, Any], vocabulary: str) -> dict[str, Any]:
    kwargs = dict(manifest.get("reader_kwargs", {}))
    if vocabulary != DATASET_VOCABULARY:
        kwargs["vocabulary"] = vocabulary
    return kwargs


def _reader(manifest: dict[str, Any], vocabulary: str | None = None):
    kwargs = _vocabulary_kwargs(manifest, vocabulary or DATASET_VOCABULARY)
    return create_reader(manifest["family"], manifest["root"], **kwargs)


def benchmark_entries(benchmarks: Sequence[str | Mapping[str, Any]]) -> list[tuple[str, dict[str, Any] | None]]:
    """``lsmseg.benchmarks`` as (name, dataset or None). A name is a vocabulary of the prepared dataset (the
    synthetic world's ``syn847`` … ``synvoc21b``); a mapping ``{name, family, root, split, reader_kwargs,
    vocabulary}`` is a dataset of its own, read by its reader (the thesis's A-847, PC-459, A-150, PC-59,
    VOC, VOCb: README "Real datasets")."""
    entries: list[tuple[str, dict[str, Any] | None]] = []
    for position, entry in enumerate(benchmarks):
        if isinstance(entry, str):
            entries.append((entry, None))
            continue
        missing = [key for key in ("name", "family", "root") if not entry.get(key)]
        if missing:
            raise ValueError(f"lsmseg.benchmarks[{position}]: a benchmark dataset needs {missing} (got {dict(entry)})")
        dataset = {
            "family": str(entry["family"]),
            "root": str(entry["root"]),
            "split": str(entry.get("split", "val")),
            "reader_kwargs": dict(entry.get("reader_kwargs") or {}),
        }
        if entry.get("vocabulary"):
            dataset["reader_kwargs"]["vocabulary"] = str(entry["vocabulary"])
        entries.append((str(entry["name"]), dataset))
    names = [name for name, _ in entries]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"lsmseg.benchmarks: names {duplicated} appear more than once")
    return entries


def benchmark_names(params: Mapping[str, Any]) -> list[str]:
    """The names of ``params["benchmarks"]`` in order (vocabulary names or the datasets' ``name``)."""
    return [name for name, _ in benchmark_entries(params["benchmarks"])]


def _benchmark_reader(dataset: Mapping[str, Any]):
    try:
        return create_reader(dataset["family"], dataset["root"], **dataset["reader_kwargs"])
    except (DatasetError, OSError) as error:
        raise DatasetError(f"lsmseg.benchmarks ({dataset['family']} at {dataset['root']}): {error}") from error


_BENCHMARK_INDEX: dict[tuple[str, str, str, str], pd.DataFrame] = {}


def _benchmark_index(dataset: Mapping[str, Any]) -> pd.DataFrame:
    """The index of a benchmark dataset's split (built once per process: every label is decoded)."""
    key = (dataset["family"], dataset["root"], dataset["split"], repr(sorted(dataset["reader_kwargs"].items())))
    if key not in _BENCHMARK_INDEX:
        _BENCHMARK_INDEX[key], _ = build_index(_benchmark_reader(dataset), [dataset["split"]], show_progress=False)
    return _BENCHMARK_INDEX[key]


#: What ``sam_pretraining`` hands LSMSeg through the catalog: per embedded-default SAM variant (``tiny``:
#: ``tiny_sam_config`` / ``tiny_sam_checkpoint``; ``tiny_l``: ``tiny_sam_l_config`` / ``tiny_sam_l_checkpoint``)
#: its (config, checkpoint path); a variant left out, or a ``None`` checkpoint, means none was given.
TinySams = Mapping[str, tuple[Mapping[str, Any] | None, str | None]]


def tiny_sam_inputs(
    tiny_sam_config: Mapping[str, Any] | None = None,
    tiny_sam_checkpoint: str | None = None,
    tiny_sam_l_config: Mapping[str, Any] | None = None,
    tiny_sam_l_checkpoint: str | None = None,
) -> dict[str, tuple[Mapping[str, Any] | None, str | None]]:
    """The catalog's two sam_pretraining outputs as :data:`TinySams` (the nodes' inputs, in their order)."""
    return {"tiny": (tiny_sam_config, tiny_sam_checkpoint), "tiny_l": (tiny_sam_l_config, tiny_sam_l_checkpoint)}


def tiny_sam_variant(spec: Mapping[str, Any]) -> str | None:
    """The embedded-default SAM (``tiny`` | ``tiny_l``) a ``models.<key>`` block builds LSMSeg's SAM branch as,
    without a checkpoint of its own (then the ``sam_pretraining`` weights of that variant are loaded into
    it); ``None`` for no SAM branch, a real SAM or a checkpoint of your own."""
    variant = spec.get("sam_variant", "tiny")
    if (
        spec.get("architecture") == "lsmseg"
        and bool(spec.get("use_sam", True))
        and variant in TINY_SAM_VARIANTS
        and not spec.get("sam_checkpoint")
    ):
        return variant
    return None


def tiny_sam_weights_of(params: Mapping[str, Any], key: str, sam_pretrained: Mapping[str, str] | None) -> str | None:
    """The tiny SAM weights ``models.<key>`` loads (``None``: no tiny SAM branch, or none given)."""
    return (sam_pretrained or {}).get(tiny_sam_variant(params["models"][key]) or "")


def _model_kwargs(
    params: dict[str, Any], key: str, clip_pretrained: str | None, sam_pretrained: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """(registry name, builder kwargs) of ``baseline`` or ``lsmseg`` from the parameters; ``sam_pretrained``
    (variant → the tiny SAMs' weights, the plan's ``sam_pretrained``) becomes ``sam_checkpoint`` for the
    variant :func:`tiny_sam_variant` names, as a real SAM checkpoint enters (``sam_variant: vit_b``,
    ``sam_checkpoint: sam_vit_b_01ec64.pth``)."""
    spec = dict(params["models"][key])
    weights = tiny_sam_weights_of(params, key, sam_pretrained)
    if weights:
        spec["sam_checkpoint"] = str(weights)
    name = spec.pop("architecture")
    clip = params["clip"]
    kwargs = dict(
        clip_model=clip["model"],
        clip_pretrained=clip_pretrained,
        image_size=clip["image_size"],
        clip_finetune=clip.get("finetune", "qv"),
        **params.get("head", {}),
        **spec,
    )
    return name, kwargs


def build_ovss_model(
    params: dict[str, Any], key: str, clip_pretrained: str | None, sam_pretrained: Mapping[str, str] | None = None
) -> nn.Module:
    """The untrained ``baseline`` / ``lsmseg`` model of ``params`` (seeded by ``training.seed``; the frozen
    SAM branch with ``sam_pretrained``'s weights of its variant where it is a tiny SAM)."""
    name, kwargs = _model_kwargs(params, key, clip_pretrained, sam_pretrained)
    torch.manual_seed(int(params["training"].get("seed", 0)))
    return create_model(name, **kwargs)


#: Where the class prompts come from (``lsmseg.prompts``): the synthetic world's own descriptions
#: (``concepts.world_prompt_set``), the catalog's ``prompt_set`` (``lsmseg_attribute_selection``'s
#: output, or any file that catalog entry points to), or the templates alone.
PROMPT_SOURCES = ("world", "prompt_set", "templates")


def resolve_prompt_set(
    source: str, prompt_set: Mapping[str, Any] | None, class_names: Sequence[str]
) -> dict[str, list[str]] | None:
    """The prompt set of ``source`` (one of :data:`PROMPT_SOURCES`) for ``class_names``; ``None`` =
    templates. ``prompt_set`` is the catalog's ``prompt_set`` (``None`` while it does not exist).

    The one reader of the prompt set (``lsmseg`` and ``lsmseg_ablations``), with one rule: a prompt
    set that does not exist yet, or lacks a class of ``class_names``, is an error naming what is
    missing, never a silent fall-back to templates."""
    if source == "world":
        return world_prompt_set(list(class_names))
    if source == "templates":
        return None
    if source == "prompt_set":
        if prompt_set is None:
            raise FileNotFoundError(
                "prompts: prompt_set, but the catalog's prompt_set does not exist yet: run "
                "`kedro run --pipelines=lsmseg_attribute_selection` first (or set prompts: world | templates)"
            )
        prompts = training.parse_prompt_set(prompt_set, "prompt_set (catalog)")
        missing = [name for name in dict.fromkeys(class_names) if name not in prompts]
        if missing:
            raise ValueError(
                f"prompt_set (catalog) has no prompt for classes {missing[:10]}{' …' if len(missing) > 10 else ''}: "
                "add them to the prompt set (e.g. a description of 'background'), or use prompts: world | templates"
            )
        return prompts
    raise ValueError(f"prompts must be one of {list(PROMPT_SOURCES)}, got {source!r}")


def prompt_source_label(source: str, templates: Sequence[str]) -> str:
    """How reports name a prompt source."""
    return {"world": "synthetic-world", "prompt_set": "prompt_set (lsmseg_attribute_selection)"}.get(
        source, f"templates {list(templates)}"
    )


def _eval_dataset(
    manifest: dict[str, Any], index: pd.DataFrame, name: str, record: Mapping[str, Any], split: str
) -> SegmentationDataset:
    """The evaluation split of benchmark ``name``: a vocabulary of the prepared dataset (its ``split``), or
    the benchmark's own dataset (``record["dataset"]``, its own split and index)."""
    config = AugmentationConfig(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    transform = build_transform(config, int(record["ignore_index"]), train=False)
    dataset = record.get("dataset")
    if dataset:
        return SegmentationDataset(
            _benchmark_index(dataset),
            dataset["split"],
            dataset["family"],
            dataset["root"],
            dataset["reader_kwargs"],
            transform=transform,
        )
    kwargs = _vocabulary_kwargs(manifest, name)
    return SegmentationDataset(index, split, manifest["family"], manifest["root"], kwargs, transform=transform)


def _batches(dataset: SegmentationDataset, batch_size: int, limit: int | None):
    count = len(dataset) if not limit else min(limit, len(dataset))
    for start in range(0, count, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, count))]
        yield {
            "image": torch.stack([item["image"] for item in items]),
            "label": torch.stack([item["label"] for item in items]),
        }


@torch.no_grad()
def _text_embeddings(model: nn.Module, prompts: list[list[str]]) -> torch.Tensor:
    """(K, 1, D): the prompts of each class encoded and averaged (one prompt: itself)."""
    return ensemble_text_embeddings(model.clip.encode_prompts(prompts))


# --------------------------------------------------------------------------- nodes


def validate_lsmseg_inputs(
    manifest: dict[str, Any],
    tiny_clip_config: dict[str, Any],
    tiny_clip_checkpoint: str,
    prompt_set: dict[str, Any] | None,
    params: dict[str, Any],
    tiny_sams: TinySams | None = None,
) -> dict[str, Any]:
    """Check everything that can be wrong before training; return the run plan (vocabularies, prompts,
    the CLIP and tiny-SAM checkpoints to start from).

    ``tiny_clip_checkpoint``: path of the clip_pretraining weights (catalog), used unless
    ``clip.pretrained`` names a checkpoint of your own. ``prompt_set``: the catalog's prompt set (or
    ``None``), used when ``prompts: prompt_set``. ``tiny_sams``: the sam_pretraining outputs (catalog) per
    variant (:func:`tiny_sam_inputs`), loaded into a SAM branch of that :func:`tiny_sam_variant`; without
    them that branch stays at random init (a warning).

    Errors: a vocabulary with empty or duplicate names, a prompt set missing classes, k larger than the
    training vocabulary, a CLIP checkpoint for a different architecture than ``lsmseg.clip.model``.
    """
    reader = _reader(manifest)
    vocabularies = dict(getattr(reader, "vocabularies", {}))  # the synthetic world's benchmark vocabularies
    train_name = str(params["train_vocabulary"])
    plan: dict[str, Any] = {"train_vocabulary": train_name, "benchmarks": {}}
    entries = [(train_name, None), *benchmark_entries(params["benchmarks"])]
    for name, dataset in entries:
        if dataset is not None:
            benchmark_reader = _benchmark_reader(dataset)
            class_names, ignore_index = list(benchmark_reader.class_names), benchmark_reader.ignore_index
        elif name == DATASET_VOCABULARY:
            if getattr(reader, "world", None):
                raise ValueError(
                    f"lsmseg.train_vocabulary {DATASET_VOCABULARY!r} on the synthetic world would train on its "
                    "unseen concepts too: use 'seen'"
                )
            class_names, ignore_index = list(reader.class_names), reader.ignore_index
        elif name in vocabularies:
            class_names, ignore_index = list(vocabularies[name].class_names), vocabularies[name].ignore_index
        else:
            raise ValueError(
                f"unknown benchmark vocabulary {name!r} of the {manifest['family']} dataset; known: "
                f"{sorted(vocabularies) or 'none'} (train_vocabulary may be {DATASET_VOCABULARY!r}: the dataset's own "
                "classes; a benchmark may be a dataset {name, family, root, split})"
            )
        spec = evaluation.benchmark_spec(name, class_names, ignore_index)
        plan["benchmarks"][name] = {"class_names": list(spec.class_names), "ignore_index": spec.ignore_index}
        if dataset is not None:
            plan["benchmarks"][name]["dataset"] = dataset
    # unseen: the synthetic world's held-out concepts; on real data, the benchmark classes whose names the
    # training vocabulary does not have (the open-vocabulary convention; thesis Table 5.2's seen/unseen)
    train_names = {n.strip().lower() for n in plan["benchmarks"][train_name]["class_names"]}
    every_name = {n for record in plan["benchmarks"].values() for n in record["class_names"]}
    world = getattr(reader, "world", None)
    plan["unseen"] = (
        sorted(world["unseen"]) if world else sorted(n for n in every_name if n.strip().lower() not in train_names)
    )
    _check_report_benchmarks(params, plan)
    source = str(params.get("prompts", "world"))
    templates = list(params.get("templates", ["a photo of a {}."]))
    names = sorted({n for record in plan["benchmarks"].values() for n in record["class_names"]})
    prompts = resolve_prompt_set(source, prompt_set, names)
    for name, record in plan["benchmarks"].items():
        record["prompts"] = training.class_prompts(
            record["class_names"], templates, prompts, source=f"prompt set {source} ({name})"
        )
    plan["prompt_source"] = prompt_source_label(source, templates)
    num_train_classes = len(plan["benchmarks"][params["train_vocabulary"]]["class_names"])
    for key in MODEL_KEYS:
        if params["models"][key].get("architecture") != "catseg":  # CAT-Seg's top_k is its inference pad_len
            training.check_top_k(params["models"][key].get("top_k"), num_train_classes, key)
    clip = params["clip"]
    if clip.get("pretrained"):  # a checkpoint of your own (real path: e.g. OpenAI ViT-B/16)
        path = Path(clip["pretrained"])
        if path.is_file():
            state = read_checkpoint(path, "CLIP checkpoint")
            training.check_clip_checkpoint(state, load_clip(clip["model"], None), str(path))
        elif path.suffix in (".pt", ".pth", ".bin", ".safetensors"):
            raise FileNotFoundError(f"CLIP checkpoint not found: {path}")
        plan["clip_pretrained"] = clip["pretrained"]
    elif tiny_clip_config.get("not_trained"):
        reason = tiny_clip_config["not_trained"]
        raise ValueError(f"lsmseg.clip.pretrained is not set and no tiny CLIP exists: {reason}")
    else:  # the clip_pretraining pipeline's tiny CLIP
        if tiny_clip_config.get("model_name") and tiny_clip_config["model_name"] != clip["model"]:
            raise CheckpointError(
                f"{tiny_clip_checkpoint} was trained as {tiny_clip_config['model_name']!r}, "
                f"lsmseg.clip.model is {clip['model']!r}"
            )
        state = read_checkpoint(tiny_clip_checkpoint, "tiny CLIP checkpoint")
        training.check_clip_checkpoint(state, load_clip(clip["model"], None), str(tiny_clip_checkpoint))
        plan["clip_pretrained"] = str(tiny_clip_checkpoint)
    plan["sam_pretrained"] = _tiny_sam_weights(params, tiny_sams or {})
    return plan


def _tiny_sam_weights(params: Mapping[str, Any], tiny_sams: TinySams) -> dict[str, str]:
    """The tiny SAMs' weights for the plan (variant → path), checked, for each variant a model uses; a
    used variant without a checkpoint is left out (random init, a warning)."""
    used = sorted({variant for key in MODEL_KEYS if (variant := tiny_sam_variant(params["models"][key]))})
    weights = {}
    for variant in used:
        config, checkpoint = tiny_sams.get(variant, (None, None))
        if checkpoint is None:
            logger.warning("no tiny SAM %s checkpoint given: LSMSeg's SAM branch stays at random init", variant)
            continue
        config = dict(config or {})
        if config.get("not_trained"):
            raise ValueError(
                f"models.lsmseg uses the tiny SAM (sam_variant: {variant}, no sam_checkpoint) and none exists: "
                f"{config['not_trained']}"
            )
        if config.get("variant", variant) != variant:
            raise CheckpointError(f"{checkpoint} was trained as SAM {config['variant']!r}, not {variant!r}")
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"tiny SAM {variant} checkpoint not found: {checkpoint} (run sam_pretraining)")
        weights[variant] = str(checkpoint)
    return weights


def _check_report_benchmarks(params: Mapping[str, Any], plan: Mapping[str, Any]) -> None:
    """The tables' and figures' benchmarks are evaluated ones and the cost-map classes are in theirs (checked
    before training, not after it)."""
    names = benchmark_names(params)
    figures = dict(params.get("figures") or {})
    for key, value in (
        ("seen_unseen_benchmark", params.get("seen_unseen_benchmark")),
        ("seen_unseen_table_benchmark", params.get("seen_unseen_table_benchmark")),
        ("figures.cost_map_benchmark", figures.get("cost_map_benchmark")),
        ("figures.qualitative_benchmark", figures.get("qualitative_benchmark")),
    ):
        if value is not None and value not in names:
            raise ValueError(f"lsmseg.{key} is {value!r}, which is not one of lsmseg.benchmarks {names}")
    if figures.get("cost_map_benchmark") in names:
        known = set(plan["benchmarks"][figures["cost_map_benchmark"]]["class_names"])
        missing = [c for c in figures.get("cost_map_classes", []) if c not in known]
        if missing:
            raise ValueError(
                f"lsmseg.figures.cost_map_classes {missing} are not classes of {figures['cost_map_benchmark']!r}"
            )


def checkpoint_sha256(path: str | None) -> str | None:
    """sha256 of a checkpoint file (None for no file: a named open_clip tag or random weights)."""
    return file_sha256(Path(path)) if path and Path(path).is_file() else None


def train_ovss(
    index: pd.DataFrame, manifest: dict[str, Any], plan: dict[str, Any], params: dict[str, Any], model_key: str
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``model_key`` (baseline | lsmseg) on the training vocabulary; same budget for both."""
    set_torch_threads(params.get("num_threads"), default=2)
    model = build_ovss_model(params, model_key, plan["clip_pretrained"], plan.get("sam_pretrained"))
    train_name = plan["train_vocabulary"]
    vocabulary = plan["benchmarks"][train_name]
    reader = _reader(manifest, train_name)
    augmentation = AugmentationConfig(
        **{"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), **params.get("augmentation", {})}
    )
    dataset = SegmentationDataset(
        index,
        "train",
        manifest["family"],
        manifest["root"],
        _vocabulary_kwargs(manifest, train_name),
        transform=build_transform(augmentation, reader.ignore_index, train=True),
    )
    train_prompts = [prompts[:1] for prompts in vocabulary["prompts"]]  # one prompt per class in training
    tokens = model.clip.tokenize(train_prompts)
    config = training.OVSSTrainConfig(**params["training"])
    _, model_config = _model_kwargs(params, model_key, plan["clip_pretrained"], plan.get("sam_pretrained"))
    # What else the weights depend on: a resume (checkpoint_dir/last.pt) after a change of prompts, training
    # vocabulary, augmentation, dataset or CLIP checkpoint file starts afresh instead of reusing the old state.
    inputs = {
        "train_vocabulary": train_name,
        "prompts_sha256": hashlib.sha256(json.dumps(train_prompts).encode()).hexdigest(),
        "augmentation": dict(params.get("augmentation", {})),
        "dataset": {key: manifest.get(key) for key in ("family", "reader_kwargs")},
        "data": data_digest(index, ["train"]),
        "clip_checkpoint_sha256": checkpoint_sha256(plan["clip_pretrained"]),
        "sam_checkpoint_sha256": checkpoint_sha256(tiny_sam_weights_of(params, model_key, plan.get("sam_pretrained"))),
    }
    start = time.perf_counter()
    checkpoint_dir = Path(params["checkpoint_dir"]) / model_key if params.get("checkpoint_dir") else None
    curve = training.train_ovss_model(
        model,
        dataset,
        tokens,
        config,
        ignore_index=reader.ignore_index,
        checkpoint_dir=checkpoint_dir,
        model_config={"key": model_key, **model_config, "inputs": inputs},
        description=f"train {model_key}",
    )
    if curve:
        curve[-1]["seconds"] = time.perf_counter() - start
    return model, curve


def train_baseline(index, manifest, plan, params):
    """CAT-Seg baseline (no SAM, no category filtering on the training vocabulary)."""
    return train_ovss(index, manifest, plan, params, "baseline")


def train_lsmseg(index, manifest, plan, params):
    """LSMSeg (SAM fusion, category filtering k, refinement)."""
    return train_ovss(index, manifest, plan, params, "lsmseg")


def _rebuild(params: dict[str, Any], key: str, state: dict[str, torch.Tensor]) -> nn.Module:
    model = build_ovss_model(params, key, None)
    load_model_weights(model, state, f"{key} weights")
    return model.eval()


def evaluate_models_on_benchmarks(
    models: dict[str, nn.Module],
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float | None]]], dict[str, Any]]:
    """Every model on every benchmark of ``params["benchmarks"]`` (open-vocabulary protocol) →
    (mIoU per model and benchmark, per-class IoU, metrics: mIoU/mAcc/aAcc/seconds). Used by
    :func:`evaluate_ovss` and the ``lsmseg_ablations`` pipeline.

    A benchmark with the same class names, prompts, images and labels (ignored pixels aside) as an
    earlier one is not evaluated again: it shares that one's scores (``scores_of`` in its metrics).
    On the synthetic world, syn847 and synpc459 are such a pair (every concept, fine names)."""
    options = dict(params.get("evaluation", {}))
    options.pop("split", None)  # each benchmark is evaluated on its own split
    mode, batch_size, limit = options.pop("mode", "whole"), options.pop("batch_size", 16), options.pop("limit", None)
    if mode == "slide":  # CAT-Seg's windows are the CLIP input size (384 for ViT-B/16 at 384) unless given
        options.setdefault("window", int(params["clip"]["image_size"]))
    miou: dict[str, dict[str, float]] = {key: {} for key in models}
    per_class: dict[str, dict[str, list[float]]] = {key: {} for key in models}
    metrics: dict[str, Any] = {key: {} for key in models}
    chance: dict[str, list[float | None]] = {}  # per-class IoU of a uniform random predictor
    names = benchmark_names(params)
    vocabulary_counts = Counter(_vocabulary_key(plan["benchmarks"][name]) for name in names)
    evaluated: dict[tuple[Any, ...], str] = {}  # (vocabulary, images + labels digest) → first benchmark
    for name in names:
        record = plan["benchmarks"][name]
        spec = evaluation.benchmark_spec(name, record["class_names"], record["ignore_index"])
        dataset = _eval_dataset(manifest, index, name, record, params.get("eval_split", "val"))
        vocabulary = _vocabulary_key(record)
        if vocabulary_counts[vocabulary] > 1:  # another benchmark has the same classes and prompts
            shared_key = (vocabulary, _split_digest(dataset, batch_size, limit, spec.ignore_index))
            first = evaluated.get(shared_key)
            if first is not None:  # same images, labels, classes and prompts: the same confusion matrices
                logger.info("%s: the same images, labels and prompts as %s, whose scores it shares", name, first)
                for key in models:
                    miou[key][name], per_class[key][name] = miou[key][first], per_class[key][first]
                    metrics[key][name] = {**metrics[key][first], "seconds": 0.0, "scores_of": first}
                chance[name] = chance[first]
                continue
            evaluated[shared_key] = name
        for key, model in models.items():
            text = _text_embeddings(model, record["prompts"])
            start = time.perf_counter()
            scores, _ = evaluation.evaluate_open_vocabulary(
                lambda images, m=model, t=text: m(images, t)["logits"],
                _batches(dataset, batch_size, limit),
                spec,
                mode,
                **options,
            )
            miou[key][name] = scores.miou
            per_class[key][name] = [None if np.isnan(v) else float(v) for v in scores.iou]
            chance[name] = [None if np.isnan(v) else float(v) for v in chance_iou(scores.ground_truth_pixels)]
            metrics[key][name] = {
                "mIoU": scores.miou,
                "mAcc": scores.macc,
                "aAcc": scores.aacc,
                "seconds": time.perf_counter() - start,
            }
            logger.info("%s on %s: mIoU %.4f", key, name, scores.miou)
    per_class["chance"] = chance
    return miou, per_class, metrics


def _vocabulary_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a benchmark's predictions and scoring depend on besides its images and labels: class names,
    prompts (the background rule follows from the names)."""
    return tuple(record["class_names"]), tuple(tuple(prompts) for prompts in record["prompts"])


def _split_digest(dataset: SegmentationDataset, batch_size: int, limit: int | None, ignore_index: int) -> str:
    """Digest of the images and labels a benchmark evaluates, ignored pixels as -1 (so two vocabularies
    that differ only in their ignore value, e.g. A-847's 65535 and PC-459's 459, compare equal)."""
    digest = hashlib.blake2b(digest_size=16)
    for batch in _batches(dataset, batch_size, limit):
        digest.update(batch["image"].contiguous().numpy().tobytes())
        label = batch["label"].to(torch.int64)
        digest.update(torch.where(label == ignore_index, -1, label).numpy().tobytes())
    return digest.hexdigest()


def seen_unseen_miou(
    per_class: Sequence[float | None], class_names: Sequence[str], unseen: set[str]
) -> tuple[float, float]:
    """(seen, unseen) mIoU (fractions, nan-mean) of one model's per-class IoU on a vocabulary."""
    iou = np.array([np.nan if v is None else v for v in per_class])
    unseen_mask = np.array([name in unseen for name in class_names])
    return float(np.nanmean(iou[~unseen_mask])), float(np.nanmean(iou[unseen_mask]))


def evaluate_ovss(
    baseline_state: dict[str, torch.Tensor],
    lsmseg_state: dict[str, torch.Tensor],
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, str, pd.DataFrame, str, dict[str, Any]]:
    """Both models on every benchmark (open-vocabulary protocol) → metrics, Table 5.1 (CSV, markdown),
    Table 5.2 seen/unseen (CSV, markdown), per-class IoU."""
    set_torch_threads(params.get("num_threads"), default=2)
    models = {
        "baseline": _rebuild(params, "baseline", baseline_state),
        "lsmseg": _rebuild(params, "lsmseg", lsmseg_state),
    }
    miou, per_class, metrics = evaluate_models_on_benchmarks(models, index, manifest, plan, params)
    unseen = set(plan["unseen"])
    fine = params.get("seen_unseen_benchmark", "syn847")
    # "chance": the mIoU of a uniform random predictor under the same protocol (evaluation.chance_iou)
    for key in [*models, "chance"]:  # seen / unseen mIoU on the fine vocabulary (every concept has its own class)
        if fine in per_class[key]:
            seen, unseen_miou = seen_unseen_miou(per_class[key][fine], plan["benchmarks"][fine]["class_names"], unseen)
            metrics.setdefault(key, {})
            metrics[key][f"{fine}_seen_mIoU"] = seen
            metrics[key][f"{fine}_unseen_mIoU"] = unseen_miou
    for name, values in per_class["chance"].items():
        metrics["chance"][name] = {"mIoU": float(np.nanmean([np.nan if v is None else v for v in values]))}
    table = evaluation.six_column_table({MODEL_LABELS[k]: v for k, v in miou.items()})
    table_markdown = evaluation.table_to_markdown(
        table,
        f"Table 5.1 layout: mIoU (%) on the {'synthetic ' if manifest['family'] == 'synthetic' else ''}benchmarks, "
        f"trained on `{plan['train_vocabulary']}` "
        f"(prompts: {plan['prompt_source']})",
    )
    seen_table_name = params.get("seen_unseen_table_benchmark") or benchmark_names(params)[-1]
    names = plan["benchmarks"][seen_table_name]["class_names"]
    seen_table = evaluation.seen_unseen_table(
        {
            MODEL_LABELS[k]: np.array([np.nan if v is None else v for v in per_class[k][seen_table_name]])
            for k in models
        },
        names,
        unseen,
    )
    seen_markdown = evaluation.table_to_markdown(
        seen_table, f"Table 5.2 layout: per-class IoU (%) on {seen_table_name}"
    )
    return (
        {"ovss": metrics},
        table,
        table_markdown,
        seen_table,
        seen_markdown,
        {
            "per_class_iou": per_class,
            "class_names": {n: plan["benchmarks"][n]["class_names"] for n in benchmark_names(params)},
        },
    )


def _find_example(dataset: SegmentationDataset, class_id: int, limit: int = 400) -> dict[str, Any] | None:
    best, best_count = None, 0
    for position in range(min(limit, len(dataset))):
        item = dataset[position]
        count = int((item["label"] == class_id).sum())
        if count > best_count:
            best, best_count = item, count
    return best


def _trained_models_on(
    name: str,
    baseline_state,
    lsmseg_state,
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], SegmentationDataset, dict[str, nn.Module], dict[str, torch.Tensor]]:
    """What the figures of benchmark ``name`` share: its plan record, its evaluation split, both
    trained models and each model's text embeddings of the benchmark's prompts (encoded once)."""
    record = plan["benchmarks"][name]
    dataset = _eval_dataset(manifest, index, name, record, params.get("eval_split", "val"))
    models = {
        "baseline": _rebuild(params, "baseline", baseline_state),
        "lsmseg": _rebuild(params, "lsmseg", lsmseg_state),
    }
    with torch.no_grad():
        texts = {key: _text_embeddings(model, record["prompts"]) for key, model in models.items()}
    return record, dataset, models, texts


def plot_cost_maps(
    baseline_state: dict[str, torch.Tensor],
    lsmseg_state: dict[str, torch.Tensor],
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: dict[str, Any],
):
    """Figure 5.9 style: for one seen and two unseen classes, the image, its mask and the class's cost map
    from CLIP (before fine-tuning), the CAT-Seg baseline and LSMSeg (sigmoid of the class logit)."""
    figure_params = params["figures"]
    name = figure_params["cost_map_benchmark"]
    record, dataset, models, texts = _trained_models_on(
        name, baseline_state, lsmseg_state, index, manifest, plan, params
    )
    clip_model = build_ovss_model(
        params, "baseline", plan["clip_pretrained"]
    ).eval()  # the pretrained CLIP, not fine-tuned
    classes = figure_params["cost_map_classes"]
    with torch.no_grad():  # text side encoded once, not per class row
        clip_text = _text_embeddings(clip_model, record["prompts"])
    rows, missing = [], []
    for class_name in classes:
        class_id = record["class_names"].index(class_name)
        item = _find_example(dataset, class_id)
        if item is None:
            missing.append(f"no '{class_name}' in {name}")
            continue
        image = item["image"].unsqueeze(0)
        with torch.no_grad():
            dense, _ = clip_model.visual_features(image)
            clip_cost = (
                F.normalize(dense, dim=1)
                .mul(F.normalize(clip_text[class_id, 0], dim=-1)[None, :, None, None])
                .sum(1, keepdim=True)
            )
            clip_cost = F.interpolate(clip_cost, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
            maps = {"CLIP": clip_cost.numpy()}
            for key, model in models.items():
                maps[COST_MAP_TITLES[key]] = torch.sigmoid(model(image, texts[key])["logits"][0, class_id]).numpy()
        kind = "unseen" if class_name in plan["unseen"] else "seen"
        rows.append(
            CostMapRow(
                image=item["image"].permute(1, 2, 0).numpy(),
                mask=(item["label"] == class_id).float().numpy(),
                mask_title=f"'{class_name}' ({kind}) mask",
                maps=maps,
            )
        )
    scales = {"CLIP": "CLIP cosine similarity (before fine-tuning)"}
    scales.update({COST_MAP_TITLES[key]: "sigmoid(class logit)" for key in models})
    return plot_cost_map_grid(
        rows,
        scales,
        title=f"Cost maps ({name}, {data_source(manifest)}): CLIP vs CAT-Seg vs LSMSeg",
        missing=missing,
    )


def plot_qualitative(
    baseline_state: dict[str, torch.Tensor],
    lsmseg_state: dict[str, torch.Tensor],
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    params: dict[str, Any],
):
    """Image, ground truth, baseline and LSMSeg predictions on a few validation images."""
    name = params["figures"]["qualitative_benchmark"]
    record, dataset, models, texts = _trained_models_on(
        name, baseline_state, lsmseg_state, index, manifest, plan, params
    )
    count = min(int(params["figures"].get("qualitative_images", 4)), len(dataset))
    images, truths = [], []
    predictions: dict[str, list[np.ndarray]] = {MODEL_LABELS[key]: [] for key in models}
    for row in range(count):
        item = dataset[row]
        images.append((item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        truths.append(item["label"].numpy())
        with torch.no_grad():
            for key, model in models.items():
                logits = model(item["image"].unsqueeze(0), texts[key])["logits"]
                predictions[MODEL_LABELS[key]].append(logits.argmax(1)[0].numpy())
    figure = plot_labelled_predictions(images, truths, predictions, record["class_names"], int(record["ignore_index"]))
    figure.suptitle(f"Predictions on {name} (validation, {data_source(manifest)})", fontsize=10)
    return figure


def describe_models(
    params: dict[str, Any], plan: dict[str, Any], baseline_curve: list, lsmseg_curve: list
) -> dict[str, Any]:
    """Re-buildable description of both trained models (architecture kwargs, training, prompts, curves)."""
    described = {}
    for key, curve in (("baseline", baseline_curve), ("lsmseg", lsmseg_curve)):
        name, kwargs = _model_kwargs(params, key, plan["clip_pretrained"], plan.get("sam_pretrained"))
        described[key] = {"architecture": name, "kwargs": kwargs, "training": dict(params["training"]), "curve": curve}
    described["prompt_source"] = plan["prompt_source"]
    described["train_vocabulary"] = plan["train_vocabulary"]
    return copy.deepcopy(described)


def compare_prompt_sources(
    index: pd.DataFrame,
    manifest: dict[str, Any],
    plan: dict[str, Any],
    prompt_set: Mapping[str, Any] | None,
    params: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """With ``prompts: prompt_set``: LSMSeg trained and evaluated with the selected prompt set and with
    the templates, on the same ``prompt_comparison.seeds`` (training seeds), → seen / unseen mIoU on
    ``seen_unseen_benchmark`` per seed and source, the paired difference of the unseen mIoU with its
    interval (``prompt_comparison.rule``), and its markdown. Other prompt sources: nothing to compare
    (a record saying why)."""
    options = dict(params.get("prompt_comparison") or {})
    seeds = [int(seed) for seed in options.get("seeds", [0, 1, 2])]
    source = str(params.get("prompts", "world"))
    if source != "prompt_set" or not seeds:
        reason = f"prompts: {source}" if source != "prompt_set" else "prompt_comparison.seeds is empty"
        return {"skipped": reason}, f"Prompt set vs templates: not run ({reason}).\n"
    set_torch_threads(params.get("num_threads"), default=2)
    benchmark = str(params.get("seen_unseen_benchmark", "syn847"))
    if benchmark not in plan["benchmarks"]:
        raise ValueError(f"lsmseg.seen_unseen_benchmark {benchmark!r} is not one of lsmseg.benchmarks")
    unseen = set(plan["unseen"])
    templates = list(params.get("templates", ["a photo of a {}."]))
    names = sorted({n for record in plan["benchmarks"].values() for n in record["class_names"]})
    sources = {"prompt_set": resolve_prompt_set("prompt_set", prompt_set, names), "templates": None}
    as_templates = {name: [template.format(name) for template in templates] for name in names}
    if all(sources["prompt_set"][name] == as_templates[name] for name in names):
        reason = (
            "the prompt set is the templates (lsmseg_attribute_selection fell back to them: no combination beat "
            "the template beyond noise; fallback_to_template: false writes the selected combination instead)"
        )
        return {"skipped": reason}, f"Prompt set vs templates: not run ({reason}).\n"
    rule = str(options.get("rule", "t95"))
    scores: dict[str, dict[str, list[float]]] = {name: {"seen": [], "unseen": []} for name in sources}
    for name, prompts in sources.items():
        source_plan = copy.deepcopy(plan)
        for vocabulary, record in source_plan["benchmarks"].items():
            record["prompts"] = training.class_prompts(
                record["class_names"], templates, prompts, source=f"{name} ({vocabulary})"
            )
        for seed in seeds:
            run_params = copy.deepcopy(dict(params))
            run_params["training"] = {**dict(params["training"]), "seed": seed}
            run_params["checkpoint_dir"] = None  # each (source, seed) trains afresh, never resumes another
            run_params["benchmarks"] = [benchmark]
            model, _ = train_ovss(index, manifest, source_plan, run_params, "lsmseg")
            _, per_class, _ = evaluate_models_on_benchmarks(
                {"lsmseg": model.eval()}, index, manifest, source_plan, run_params
            )
            seen, unseen_miou = seen_unseen_miou(
                per_class["lsmseg"][benchmark], source_plan["benchmarks"][benchmark]["class_names"], unseen
            )
            scores[name]["seen"].append(100 * seen)
            scores[name]["unseen"].append(100 * unseen_miou)
            logger.info("LSMSeg with %s, seed %d: unseen mIoU %.2f on %s", name, seed, 100 * unseen_miou, benchmark)
    comparison = paired_comparison(scores["prompt_set"]["unseen"], scores["templates"]["unseen"], rule)
    verdict = comparison.direction
    record = {
        "benchmark": benchmark,
        "seeds": seeds,
        "rule": rule,
        "mIoU": scores,
        "unseen_difference": comparison.describe(),
        "verdict": verdict,
    }
    lines = [
        f"## LSMSeg with the selected prompt set vs the templates ({benchmark}, {len(seeds)} training seeds)",
        "",
        "| prompts | seen mIoU | unseen mIoU |",
        "|---|---|---|",
    ]
    for name, values in scores.items():
        cells = [
            f"{np.mean(values[p]):.1f} ± {(np.std(values[p], ddof=1) if len(seeds) > 1 else 0.0):.1f}"
            for p in ("seen", "unseen")
        ]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        f"Unseen mIoU, prompt set − templates: {comparison.describe()}, paired over seeds: "
        + {"higher": "the prompt set is better beyond noise", "lower": "the templates are better beyond noise"}.get(
            verdict, "within noise (unresolved)"
        )
        + ".",
        "",
    ]
    return record, "\n".join(lines)

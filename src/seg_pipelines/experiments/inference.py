"""Using a checkpoint: ``predict`` (images → label and overlay PNGs) and ``evaluate`` (a checkpoint on a
dataset → per-class IoU table, mIoU), the ``predict`` / ``evaluate`` pipelines' work.

    model = load_inference_model({"checkpoint": "data/06_models/caa/method.pt"})
    images = predict_images(model, {"input": "photos/", "mode": "slide", "crop_size": [512, 512], ...})
    per_class, metrics, markdown = evaluate_checkpoint(model, {"dataset": {...}, "mode": "whole"})

Checkpoints (:func:`load_inference_model`, kind detected from the file):

* **closed-set, this project's**: ``{"model", "model_config", "class_names"}`` (the ``caa`` / ``ecac``
  pipelines' ``data/06_models/<method>/{baseline,method}.pt``);
* **open-vocabulary, this project's**: the ``lsmseg`` pipeline's state dicts
  (``data/06_models/{catseg_baseline,lsmseg}.pt``) with ``model_config`` = its
  ``lsmseg_model_config.json`` and ``model_key`` = ``baseline`` | ``lsmseg``, or one file
  ``{"model", "model_config": {"architecture", "kwargs"}}``;
* **MMSegmentation**: ``{"meta", "state_dict"}`` of an ``EncoderDecoder`` (keys renamed by
  :func:`~seg_pipelines.models.checkpoints.convert_mmseg_segmentor_state`) with ``model: {head,
  backbone}``; the class count comes from ``decode_head.conv_seg``, the names from ``meta``;
* a bare state dict of one of our segmentors with ``model: {head, backbone, num_classes}``;
* **ONNX**, the ``export`` pipeline's ``.onnx`` file (:func:`load_onnx_model`): run by ONNX Runtime, its
  class names, preprocessing and kind read from the model's metadata (an open-vocabulary model with
  the vocabulary it was exported with).

A mismatch between checkpoint and model lists the missing / unexpected keys. Closed-set models take
ImageNet-normalised images, open-vocabulary ones images in [0, 1]; both get images in [0, 1] here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn
from tqdm.auto import tqdm

from seg_pipelines.datasets import readers
from seg_pipelines.datasets.base import DatasetError, Sample, read_image_rgb
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.loaders import IMAGENET_MEAN, IMAGENET_STD
from seg_pipelines.datasets.overview import label_colormap, label_colours, label_overlay
from seg_pipelines.engine.evaluation import (
    Predict,
    chance_iou,
    chance_miou,
    evaluate,
    run_inference,
    scores_from_confusion,
    upsampled_argmax,
)
from seg_pipelines.engine.onnx_export import OnnxSegmentor
from seg_pipelines.engine.ovss_evaluation import benchmark_spec, predict_catseg_slide, validate_class_names
from seg_pipelines.engine.tables import markdown_table
from seg_pipelines.models.checkpoints import (
    convert_mmseg_segmentor_state,
    is_mmseg_segmentor_state,
    load_state_dict_checked,
    mmseg_class_names,
    read_checkpoint,
    unwrap_state_dict,
)

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# predict's largest inference pass, in millions of pixels (``predict.max_megapixels``): larger photos
# are segmented at a smaller size and their labels upsampled, so memory stays bounded
DEFAULT_MAX_MEGAPIXELS = 4.0
OVSS_ARCHITECTURES = ("catseg", "lsmseg")
DEFAULT_TEMPLATES = ("a photo of a {}.",)
#: ``vocabulary`` values read as a class-list file (:func:`seg_pipelines.datasets.readers.read_class_list`).
CLASS_LIST_SUFFIXES = (".txt", ".json")

#: Vocabularies known by name without a dataset on disk (the class lists the readers use).
BUILTIN_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "ade20k_150": readers.ADE20K_150_CLASSES,
    "coco_stuff_171": readers.COCO_STUFF_171_CLASSES,
    "pascal_context_59": readers.PASCAL_CONTEXT_59_CLASSES,
    "voc20": readers.VOC_OBJECT_CLASSES,
    "voc21b": (*readers.VOC_OBJECT_CLASSES, "background"),
}


class InferenceInputError(ValueError):
    """Bad ``predict`` / ``evaluate`` input: the message names the parameter or file."""


@dataclass
class InferenceModel:
    """A model ready for inference and what it needs to be run."""

    kind: str  # "closed_set" | "open_vocabulary"
    module: nn.Module
    source: str
    class_names: list[str] | None = None  # closed-set: the classes it predicts (when known)
    config: dict[str, Any] = field(default_factory=dict)
    fixed_vocabulary: bool = False  # an open-vocabulary model exported with its class names baked in
    normalization: tuple[list[float], list[float]] | None = None  # (mean, std) on [0, 1]; None: by kind

    @property
    def predicts_fixed_classes(self) -> bool:
        """Closed-set, or open-vocabulary with a fixed vocabulary: the class list comes with the model."""
        return self.kind == "closed_set" or self.fixed_vocabulary

    @property
    def num_classes(self) -> int | None:
        return int(self.module.num_classes) if self.predicts_fixed_classes else None


# --------------------------------------------------------------------------- loading


def _closed_set_from_state(
    state: dict[str, torch.Tensor], model: Mapping[str, Any], source: str, class_names: list[str] | None
) -> tuple[nn.Module, dict[str, Any]]:
    from seg_pipelines.experiments.closed_set import build_segmentor

    spec = dict(model)
    if "head" not in spec:
        raise InferenceInputError(
            f"{source} holds a bare state dict: say which architecture it is with model: {{head: ..., backbone: ...}}"
        )
    head = spec.pop("head")
    if "decode_head.conv_seg.weight" in state:
        found = int(state["decode_head.conv_seg.weight"].shape[0])
        if spec.get("num_classes") not in (None, found):
            raise InferenceInputError(
                f"class-count mismatch: model.num_classes is {spec['num_classes']} "
                f"but {source} predicts {found} classes"
            )
        spec["num_classes"] = found
    if "num_classes" not in spec:
        raise InferenceInputError(f"{source}: set model.num_classes (no decode_head.conv_seg in the state dict)")
    config = {"name": head, **spec}
    module = build_segmentor(config)
    if is_mmseg_segmentor_state(state):
        state, renamed = convert_mmseg_segmentor_state(state, module.state_dict())
        logger.info("%s: MMSegmentation layout, %d keys renamed", source, len(renamed))
        if "auxiliary_head.conv_seg.weight" not in state and module.auxiliary_head is not None:
            module.auxiliary_head = None  # an MMSeg checkpoint saved without its auxiliary head
    load_state_dict_checked(module, state, source)
    if class_names is not None and len(class_names) != module.num_classes:
        class_names = None
    return module, config


def _ovss_from_state(
    state: dict[str, torch.Tensor], description: Mapping[str, Any], source: str
) -> tuple[nn.Module, dict[str, Any]]:
    from seg_pipelines.models.factory import create_model

    architecture = description.get("architecture")
    if architecture not in OVSS_ARCHITECTURES:
        raise InferenceInputError(
            f"{source}: model_config architecture {architecture!r} is no open-vocabulary model "
            f"{list(OVSS_ARCHITECTURES)}"
        )
    kwargs = dict(description.get("kwargs", {}))
    kwargs["clip_pretrained"] = None  # the checkpoint holds the (fine-tuned) CLIP weights
    module = create_model(architecture, **kwargs)
    load_state_dict_checked(module, state, source)
    return module, {"architecture": architecture, "kwargs": kwargs}


def _read_model_config(path: str | Path, key: str | None) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InferenceInputError(f"model_config not found: {path}")
    try:
        described = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InferenceInputError(f"model_config {path} is not JSON: {error}") from error
    if "architecture" in described:
        return described
    keys = [k for k, v in described.items() if isinstance(v, Mapping) and "architecture" in v]
    if key is None and len(keys) == 1:
        key = keys[0]
    if key not in keys:
        raise InferenceInputError(f"model_config {path}: set model_key to one of {keys} (got {key!r})")
    return dict(described[key])


def load_onnx_model(path: str | Path, num_threads: int = 0) -> InferenceModel:
    """The ``export`` pipeline's ``.onnx`` file as an :class:`InferenceModel` run by ONNX Runtime: kind,
    class names and input normalisation from its ``metadata_props``."""
    path = Path(path)
    if not path.is_file():
        raise InferenceInputError(f"checkpoint not found: {path}")
    try:
        runtime = OnnxSegmentor(path, num_threads=num_threads)
    except Exception as error:
        raise InferenceInputError(f"cannot load ONNX model {path}: {error}") from error
    metadata = runtime.metadata
    missing = [key for key in ("kind", "class_names", "mean", "std") if key not in metadata]
    if missing:
        raise InferenceInputError(
            f"ONNX model {path} lacks the metadata {missing} (export it with `kedro run --pipelines=export`)"
        )
    names = [str(name) for name in json.loads(metadata["class_names"])]
    if len(names) != runtime.num_classes:
        raise InferenceInputError(f"ONNX model {path}: {len(names)} class names for {runtime.num_classes} outputs")
    normalization = ([float(v) for v in json.loads(metadata["mean"])], [float(v) for v in json.loads(metadata["std"])])
    kind = metadata["kind"]
    return InferenceModel(
        kind,
        runtime,
        str(path),
        names,
        {"onnx_metadata": metadata},
        fixed_vocabulary=kind == "open_vocabulary",
        normalization=normalization,
    )


def load_inference_model(params: Mapping[str, Any]) -> InferenceModel:
    """The model of ``params['checkpoint']`` (see the module docstring for the kinds), in eval mode.

    Errors: a missing / unreadable checkpoint (:class:`CheckpointError`), a state dict whose keys do not
    fit the architecture (listing missing and unexpected keys), a bare state dict without
    ``model`` / ``model_config``, an unknown architecture.
    """
    path = params.get("checkpoint")
    if not path:
        raise InferenceInputError("checkpoint: no checkpoint given (set e.g. --params=predict.checkpoint=path.pt)")
    source = str(path)
    if source.lower().endswith(".onnx"):
        return load_onnx_model(path)
    raw = read_checkpoint(path, "checkpoint")
    model_spec = params.get("model") or {}
    config_path = params.get("model_config")
    stored_config = raw.get("model_config") if isinstance(raw, Mapping) else None
    if config_path:
        stored_config = _read_model_config(config_path, params.get("model_key"))
    state = unwrap_state_dict(raw, source)
    if isinstance(stored_config, Mapping) and "architecture" in stored_config:
        module, config = _ovss_from_state(state, stored_config, source)
        return InferenceModel("open_vocabulary", module.eval(), source, None, config)
    if isinstance(stored_config, Mapping) and "name" in stored_config and not model_spec:
        from seg_pipelines.experiments.closed_set import load_segmentor

        module = load_segmentor(raw)
        names = list(raw.get("class_names") or []) or None
        return InferenceModel("closed_set", module, source, names, dict(stored_config))
    if any(k.startswith(("clip.", "cost_embedding.")) for k in state):
        raise InferenceInputError(
            f"{source} is an open-vocabulary state dict: pass model_config (the lsmseg pipeline's "
            "data/06_models/lsmseg_model_config.json) and model_key (baseline | lsmseg)"
        )
    names = mmseg_class_names(raw)
    module, config = _closed_set_from_state(state, model_spec, source, names)
    return InferenceModel("closed_set", module.eval(), source, names, config)


# --------------------------------------------------------------------------- vocabularies


def resolve_vocabulary(params: Mapping[str, Any]) -> list[str] | None:
    """The class names of ``classes`` (a list) or ``vocabulary`` (a :data:`BUILTIN_VOCABULARIES` name, a
    class-list file such as a ``folder`` dataset's ``classes.txt`` (one name per line), or a
    synthetic-world vocabulary of the world at ``vocabulary_root``); ``None`` when neither is set."""
    classes, name = params.get("classes"), params.get("vocabulary")
    if classes and name:
        raise InferenceInputError("set either classes or vocabulary, not both")
    if classes:
        if isinstance(classes, str):  # from --params: "cat;dog;grass" (commas split --params items)
            classes = [name.strip() for name in classes.split(";") if name.strip()]
        names = [str(c) for c in classes]
        validate_class_names(names, "classes")
        return names
    if not name:
        return None
    if name in BUILTIN_VOCABULARIES:
        return list(BUILTIN_VOCABULARIES[name])
    if Path(name).suffix.lower() in CLASS_LIST_SUFFIXES:  # a class-list file: a folder dataset's classes.txt
        try:
            names = readers.read_class_list(name)
        except DatasetError as error:
            raise InferenceInputError(f"vocabulary {name!r}: {error}") from error
        validate_class_names(names, f"vocabulary {name}")
        return names
    root = params.get("vocabulary_root")
    known = sorted(BUILTIN_VOCABULARIES)
    if root and Path(root).is_dir():
        try:
            world = create_reader("synthetic", root)
            vocabularies = world.vocabularies
        except Exception:  # not a synthetic world: only the built-in names
            vocabularies = {}
        if name in vocabularies:
            return list(vocabularies[name].class_names)
        known += sorted(vocabularies)
    raise InferenceInputError(
        f"unknown vocabulary {name!r}; known: {known} (or a class-list file, classes.txt, or classes: [...])"
    )


def text_embeddings(model: InferenceModel, class_names: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(K, 1, D) template-ensembled class embeddings of an open-vocabulary model."""
    from seg_pipelines.models.ovss.clip import build_class_prompts, ensemble_text_embeddings

    with torch.no_grad():
        return ensemble_text_embeddings(model.module.clip.encode_prompts(build_class_prompts(class_names, templates)))


def check_vocabulary(model: InferenceModel, class_names: Sequence[str] | None, where: str) -> list[str]:
    """The class names predictions are in. Closed-set: the checkpoint's (a given list must have as many
    classes); open-vocabulary: the given list (required), or for an exported one with a fixed vocabulary
    its own list (a given list must be the same)."""
    if model.predicts_fixed_classes:
        if class_names is not None and len(class_names) != model.num_classes:
            what = "closed-set checkpoint" if model.kind == "closed_set" else "fixed-vocabulary ONNX model"
            raise InferenceInputError(
                f"vocabulary mismatch: {where} has {len(class_names)} classes but the {what} "
                f"{model.source} predicts {model.num_classes}"
            )
        if model.fixed_vocabulary and class_names is not None and list(class_names) != list(model.class_names or []):
            differing = [(a, b) for a, b in zip(class_names, model.class_names or []) if a != b][:3]
            raise InferenceInputError(
                f"vocabulary mismatch: {model.source} was exported with a fixed vocabulary; {where} names other "
                f"classes (given vs exported: {differing})"
            )
        return list(class_names or model.class_names or [f"class {i}" for i in range(model.num_classes)])
    if not class_names:
        raise InferenceInputError(
            f"{model.source} is an open-vocabulary model: name the classes to segment with vocabulary: <name> "
            "or classes: [...]"
        )
    return list(class_names)


# --------------------------------------------------------------------------- the predictor


def _pair(value: Any) -> list[int]:
    """``[h, w]`` from a pair or one side (``--params`` cannot hold a list: its items split on commas)."""
    return [int(value), int(value)] if isinstance(value, (int, float, str)) else [int(v) for v in value]


def inference_mode_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """Options of the configured inference ``mode`` (whole | slide | multi_scale)."""
    mode = params.get("mode", "whole")
    if mode == "whole":
        return {}
    if mode == "slide":
        if params.get("crop_size") is None:
            raise InferenceInputError("mode slide needs crop_size (and stride for closed-set models)")
        crop = _pair(params["crop_size"])
        stride = _pair(params.get("stride") or [max(1, 2 * c // 3) for c in crop])
        return {"crop_size": crop, "stride": stride}
    if mode == "multi_scale":
        return {
            "scales": tuple(float(s) for s in params.get("scales", (0.5, 0.75, 1.0, 1.25, 1.5, 1.75))),
            "flip": bool(params.get("flip", True)),
        }
    raise InferenceInputError(f"unknown inference mode {mode!r}; use whole, slide or multi_scale")


def build_predictor(model: InferenceModel, class_names: Sequence[str], params: Mapping[str, Any]) -> Predict:
    """Images in [0, 1] (B, 3, H, W) → class scores (B, K, H, W) under the configured mode."""
    mode = params.get("mode", "whole")
    options = inference_mode_options(params)
    if model.kind == "closed_set":
        mean_values, std_values = model.normalization or (IMAGENET_MEAN, IMAGENET_STD)
        mean = torch.tensor(mean_values).view(1, 3, 1, 1)
        std = torch.tensor(std_values).view(1, 3, 1, 1)

        def logits(images: torch.Tensor) -> torch.Tensor:
            return model.module(images)["logits"]

        return lambda images: run_inference(logits, (images - mean) / std, mode, **options)
    if model.fixed_vocabulary:  # exported: the text embeddings are in the graph
        mean_values, std_values = model.normalization or ([0.0] * 3, [1.0] * 3)
        ovss_mean = torch.tensor(mean_values).view(1, 3, 1, 1)
        ovss_std = torch.tensor(std_values).view(1, 3, 1, 1)

        def ovss_logits(images: torch.Tensor) -> torch.Tensor:
            return model.module((images - ovss_mean) / ovss_std)["logits"]

    else:
        text = text_embeddings(model, class_names, params.get("templates") or DEFAULT_TEMPLATES)

        def ovss_logits(images: torch.Tensor) -> torch.Tensor:
            return model.module(images, text)["logits"]

    if mode == "slide":  # CAT-Seg's protocol: windows of the CLIP input size + a global view
        window = int(options["crop_size"][0])
        output_size = params.get("output_size")
        return lambda images: predict_catseg_slide(
            ovss_logits, images, window=window, output_size=int(output_size) if output_size else None
        )
    return lambda images: run_inference(ovss_logits, images, mode, **options)


# --------------------------------------------------------------------------- predict


def list_input_images(path: str | Path | None) -> list[Path]:
    """An image file, or the images of a folder (sorted, not recursive)."""
    if not path:
        raise InferenceInputError("input: no image or folder given (set e.g. --params=predict.input=photos/)")
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise InferenceInputError(f"input {path} is not an image ({', '.join(IMAGE_SUFFIXES)})")
        return [path]
    if not path.is_dir():
        raise InferenceInputError(f"input not found: {path}")
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InferenceInputError(f"input folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def output_names(paths: Sequence[Path]) -> list[str]:
    """One output name per input image, unique even where images share a stem: the stem alone
    when no other input has it (``photo``), else the stem and the extension (``photo_jpg``,
    ``photo_png``), numbered when that still collides (``photo_jpg_2`` for ``photo.JPG``). Names
    are compared case-insensitively, so they stay distinct as files on any file system."""
    stems: dict[str, int] = {}
    for path in paths:
        stems[path.stem.casefold()] = stems.get(path.stem.casefold(), 0) + 1
    taken = {path.stem.casefold() for path in paths if stems[path.stem.casefold()] == 1}
    names = []
    for path in paths:
        if stems[path.stem.casefold()] == 1:
            names.append(path.stem)
            continue
        base = f"{path.stem}_{path.suffix.lstrip('.').lower()}"
        name, number = base, 1
        while name.casefold() in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name.casefold())
        names.append(name)
    return names


def label_image(label: np.ndarray, num_classes: int) -> Image.Image:
    """Class ids as a PNG: 8-bit with the VOC palette up to 256 classes, 16-bit above (A-847)."""
    if num_classes <= 256:
        image = Image.fromarray(label.astype(np.uint8), mode="P")
        image.putpalette(label_colormap(257)[1:].reshape(-1).tolist())  # class c: the overlay's colour
        return image
    return Image.fromarray(label.astype(np.uint16))


LEGEND_ROW_HEIGHT = 18  # pixels per legend entry of an overlay
LEGEND_SWATCH = 12  # side of a legend entry's colour square
LEGEND_MARGIN = 6
TOP_CLASSES_PER_IMAGE = 5


def legend_entries(label: np.ndarray, class_names: Sequence[str]) -> list[tuple[int, str, float]]:
    """``(class id, name, pixel share)`` of every class in ``label``, largest share first."""
    counts = np.bincount(label.reshape(-1), minlength=len(class_names))[: len(class_names)]
    share = counts / max(int(counts.sum()), 1)
    order = sorted(np.flatnonzero(counts), key=lambda c: (-counts[c], c))
    return [(int(c), class_names[c], float(share[c])) for c in order]


def overlay_with_legend(rgb: np.ndarray, label: np.ndarray, class_names: Sequence[str], alpha: float) -> Image.Image:
    """The ``_overlay.png`` of one prediction: the label blended over the image, the label alone in the
    palette colours (those of ``_label.png``) and a legend of the classes present (largest share first,
    swatches in the same colours), side by side."""
    height, width = label.shape
    entries = legend_entries(label, class_names)
    font = ImageFont.load_default(size=12)
    texts = [f"{name} ({100 * share:.1f}%)" for _, name, share in entries]
    text_width = max((int(font.getlength(text)) for text in texts), default=0)
    legend_width = 3 * LEGEND_MARGIN + LEGEND_SWATCH + text_width
    canvas = Image.new(
        "RGB", (2 * width + legend_width, max(height, 2 * LEGEND_MARGIN + LEGEND_ROW_HEIGHT * len(entries))), "white"
    )
    canvas.paste(Image.fromarray(label_overlay(rgb, label, ignore_index=-1, alpha=alpha)), (0, 0))
    canvas.paste(Image.fromarray(label_colours(label, ignore_index=-1)), (width, 0))
    draw = ImageDraw.Draw(canvas)
    palette = label_colormap(max(len(class_names) + 1, 256))
    left = 2 * width + LEGEND_MARGIN
    for row, ((class_id, _, _), text) in enumerate(zip(entries, texts)):
        top = LEGEND_MARGIN + row * LEGEND_ROW_HEIGHT
        draw.rectangle(
            (left, top, left + LEGEND_SWATCH - 1, top + LEGEND_SWATCH - 1),
            fill=tuple(int(v) for v in palette[class_id + 1]),
            outline=(0, 0, 0),
        )
        draw.text((left + LEGEND_SWATCH + LEGEND_MARGIN, top - 1), text, fill=(0, 0, 0), font=font)
    return canvas


def _resize_short_side(image: torch.Tensor, short_side: int | None) -> torch.Tensor:
    if not short_side:
        return image
    height, width = image.shape[-2:]
    scale = float(short_side) / min(height, width)
    size = [max(1, int(round(height * scale))), max(1, int(round(width * scale)))]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def limit_pixels(
    image: torch.Tensor, max_megapixels: float | None, largest_scale: float = 1.0
) -> tuple[torch.Tensor, float]:
    """``image`` (1, 3, H, W) shrunk so that its largest inference pass (``largest_scale``: multi-scale's
    top scale) holds at most ``max_megapixels`` million pixels; returns it and the factor applied
    (1.0: unchanged). Bounds predict's memory on photos of any size (None: no limit)."""
    if not max_megapixels:
        return image, 1.0
    height, width = image.shape[-2:]
    pixels = height * width * float(largest_scale) ** 2
    if pixels <= max_megapixels * 1e6:
        return image, 1.0
    factor = (max_megapixels * 1e6 / pixels) ** 0.5
    size = [max(1, int(height * factor)), max(1, int(width * factor))]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True), factor


@torch.no_grad()
def predict_images(model: InferenceModel, params: Mapping[str, Any]) -> tuple[dict[str, Image.Image], dict[str, Any]]:
    """Segment ``params['input']`` (an image or a folder): ``{"<name>_label": PNG, "<name>_overlay":
    PNG}`` for a partitioned dataset (``<name>``: :func:`output_names`, the stem unless images share
    it; the overlay carries its legend, :func:`overlay_with_legend`), and a summary: classes, images,
    per output its file and top classes (``per_image``), and the class pixel shares over all images."""
    paths = list_input_images(params.get("input"))
    class_names = check_vocabulary(model, resolve_vocabulary(params), "the vocabulary")
    predictor = build_predictor(model, class_names, params)
    outputs: dict[str, Image.Image] = {}
    per_image: dict[str, dict[str, Any]] = {}
    counts = np.zeros(len(class_names), dtype=np.int64)
    names = output_names(paths)
    failed: dict[str, str] = {}
    downscaled: dict[str, str] = {}
    mode = params.get("mode", "whole")
    largest_scale = max(inference_mode_options(params).get("scales", (1.0,)))  # the predictor's own scales
    max_megapixels = params.get("max_megapixels", DEFAULT_MAX_MEGAPIXELS)
    for path, name in zip(tqdm(paths, desc="predict", disable=not params.get("show_progress", True)), names):
        try:
            rgb = read_image_rgb(path)
        except Exception as error:  # one unreadable file: the others are still segmented
            failed[str(path)] = f"cannot read image: {error}"
            logger.warning("predict: skipping %s: cannot read image: %s", path, error)
            continue
        image = torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0) / 255.0
        resized = _resize_short_side(image, params.get("short_side"))
        resized, factor = limit_pixels(resized, max_megapixels, largest_scale)
        if factor < 1.0:
            scale = f" at top scale {largest_scale}" if largest_scale != 1 else ""
            note = (
                f"{rgb.shape[1]}x{rgb.shape[0]} segmented at {resized.shape[-1]}x{resized.shape[-2]} "
                f"(predict.max_megapixels={max_megapixels}{scale}); labels are upsampled to the full size"
            )
            downscaled[str(path)] = note
            logger.warning("predict: %s: %s", path, note)
        scores = predictor(resized)
        label = upsampled_argmax(scores, tuple(image.shape[-2:])).numpy()
        counts += np.bincount(label.reshape(-1), minlength=len(class_names))[: len(class_names)]
        outputs[f"{name}_label"] = label_image(label, len(class_names))
        outputs[f"{name}_overlay"] = overlay_with_legend(rgb, label, class_names, float(params.get("alpha", 0.5)))
        per_image[name] = {
            "file": str(path),
            "size": [int(label.shape[1]), int(label.shape[0])],
            "top_classes": {
                class_name: round(share, 4)
                for _, class_name, share in legend_entries(label, class_names)[:TOP_CLASSES_PER_IMAGE]
            },
        }
    share = counts / max(int(counts.sum()), 1)
    top = np.argsort(-share)[:10]
    if len(failed) == len(paths):
        raise InferenceInputError(
            f"no image of {params.get('input')} could be read: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        )
    summary = {
        "checkpoint": model.source,
        "kind": model.kind,
        "status": "completed" if not failed else f"completed with {len(failed)} of {len(paths)} images failed",
        "images": len(paths),
        "images_segmented": len(paths) - len(failed),
        "failed": failed,
        "downscaled": downscaled,
        "outputs": {name: str(path) for name, path in zip(names, paths) if str(path) not in failed},
        "num_classes": len(class_names),
        "mode": mode,
        "per_image": per_image,  # each output's file and its top classes (pixel share of that image)
        "top_classes_all_images": {class_names[i]: round(float(share[i]), 4) for i in top if share[i] > 0},
    }
    if failed:
        logger.warning("predict: %s; the failed files are listed in summary.json beside the outputs", summary["status"])
    return outputs, summary


# --------------------------------------------------------------------------- evaluate


def _dataset_batches(reader, samples: list[Sample], limit: int | None) -> Iterator[dict[str, torch.Tensor]]:
    for sample in samples[:limit] if limit else samples:
        image, label = reader.load_pair(sample)
        yield {
            "image": torch.from_numpy(image).permute(2, 0, 1).float().unsqueeze(0) / 255.0,
            "label": torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64)).unsqueeze(0),
        }


def evaluation_reader(dataset: Mapping[str, Any]):
    """The reader of the ``evaluate.dataset`` block (``family``, ``root``, ``reader_kwargs``, and for the
    synthetic world ``vocabulary``: one of its benchmark vocabularies)."""
    for key in ("family", "root"):
        if not dataset.get(key):
            raise InferenceInputError(f"evaluate.dataset.{key} is not set")
    kwargs = dict(dataset.get("reader_kwargs") or {})
    if dataset.get("vocabulary"):
        kwargs["vocabulary"] = dataset["vocabulary"]
    try:
        return create_reader(dataset["family"], dataset["root"], **kwargs)
    except (FileNotFoundError, NotADirectoryError) as error:
        raise InferenceInputError(f"evaluate.dataset: {error}") from error


def evaluate_checkpoint(model: InferenceModel, params: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """``model`` on ``params['dataset']`` (split, vocabulary) with ``protocol`` (default: closed_set for
    closed-set checkpoints, open_vocabulary for open-vocabulary ones) and inference ``mode`` →
    per-class table (IoU, accuracy, pixels; percent), metrics ``{"evaluate": {mIoU, mAcc, aAcc, …}}``
    and a markdown table."""
    dataset = dict(params.get("dataset") or {})
    reader = evaluation_reader(dataset)
    split = dataset.get("split", "val")
    samples = reader.list_samples(split)
    dataset_names = list(reader.class_names)
    given = resolve_vocabulary(params)
    if given is not None and len(given) != len(dataset_names):
        raise InferenceInputError(
            f"vocabulary mismatch: {len(given)} classes given for a dataset with {len(dataset_names)} classes"
        )
    class_names = check_vocabulary(model, given or dataset_names, f"dataset {dataset['family']}")
    protocol = params.get("protocol") or ("closed_set" if model.kind == "closed_set" else "open_vocabulary")
    spec = benchmark_spec(str(dataset.get("vocabulary") or dataset["family"]), class_names, reader.ignore_index)
    predictor = build_predictor(model, class_names, params)
    limit = params.get("limit")
    batches = tqdm(
        _dataset_batches(reader, samples, limit),
        total=min(len(samples), limit or len(samples)),
        desc="evaluate",
        disable=not params.get("show_progress", True),
    )
    background = spec.background_mapping if model.kind == "open_vocabulary" else None
    _, confusion = evaluate(
        predictor, batches, len(class_names), reader.ignore_index, protocol, "whole", background_mapping=background
    )
    scores = scores_from_confusion(confusion, protocol)
    matrix = confusion.numpy()
    per_class = pd.DataFrame(
        {
            "class_id": np.arange(len(class_names)),
            "name": class_names,
            "iou": 100 * scores.iou,
            "accuracy": 100 * scores.accuracy,
            "ground_truth_pixels": matrix.sum(axis=1),
            "predicted_pixels": matrix.sum(axis=0),
            # a uniform random predictor's expected IoU (engine.evaluation.chance_iou); NaN: no ground truth
            "chance_iou": 100 * chance_iou(scores.ground_truth_pixels),
        }
    )
    metrics = {
        "mIoU": 100 * scores.miou,
        "mAcc": 100 * scores.macc,
        "aAcc": 100 * scores.aacc,
        "chance_mIoU": 100 * chance_miou(scores.ground_truth_pixels, protocol),
        "images": float(min(len(samples), limit or len(samples))),
        "classes_counted": float(np.isfinite(scores.iou).sum()),
    }
    title = (
        f"{Path(model.source).name} on {dataset['family']}"
        + (f" ({dataset['vocabulary']})" if dataset.get("vocabulary") else "")
        + f" {split} ({len(class_names)} classes, "
        f"{protocol}, {params.get('mode', 'whole')}): mIoU {metrics['mIoU']:.2f}"
    )
    summary = pd.DataFrame(
        {
            "model": [Path(model.source).name, "chance (uniform random)"],
            "mIoU": [metrics["mIoU"], metrics["chance_mIoU"]],
        }
    )
    markdown = (
        markdown_table(summary, decimals=2, title=f"### {title}")
        + "\n\nchance: the expected mIoU of a uniform random predictor over the same classes and protocol, "
        "from the ground-truth pixel counts (a rare class's chance IoU is about its pixel share).\n\n"
        + markdown_table(per_class[["class_id", "name", "iou", "accuracy", "chance_iou"]], decimals=2)
        + "\n"
    )
    logger.info(title)
    return per_class, {"evaluate": metrics}, markdown


# --------------------------------------------------------------------------- nodes


def run_predict(params: Mapping[str, Any]) -> tuple[dict[str, Image.Image], dict[str, Any]]:
    """The ``predict`` pipeline's node: load ``params['checkpoint']``, segment ``params['input']``."""
    return predict_images(load_inference_model(params), params)


def run_evaluate(params: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """The ``evaluate`` pipeline's node: load ``params['checkpoint']``, evaluate it on ``params['dataset']``."""
    return evaluate_checkpoint(load_inference_model(params), params)

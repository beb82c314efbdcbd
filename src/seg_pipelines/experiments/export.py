"""``export``: a checkpoint to ONNX, checked against PyTorch in the same run (the ``export`` pipeline's work).

    report, metrics, markdown = run_export({"checkpoint": "data/06_models/caa/method.pt", "dataset": {...}})

* **What is exported**: the network of a closed-set checkpoint (``caa`` / ``ecac`` / ``closed_set``), or of
  an open-vocabulary one (``lsmseg``: CAT-Seg or LSMSeg) with a fixed vocabulary (its text embeddings
  computed once and baked into the graph as a constant), for whole-image inference: ``images``
  (1, 3, H, W) → ``logits`` (1, K, H, W), H and W dynamic. CAA's chunked affinity (a Python loop over
  row blocks, whose count depends on H·W) is exported in its materialised form, the same maths
  (:func:`prepare_for_export`).
* **What the file says about itself** (``metadata_props``, :func:`export_metadata`): the class names,
  the preprocessing (pixel scale, mean, std, channel order, layout), the input and output, the kind and
  evaluation protocol, the source checkpoint.
* **What is checked** before the run succeeds: ONNX Runtime's logits against PyTorch's on the first
  ``compare_images`` validation images at their own size and on the first one resized to each of
  ``compare_sizes`` (max abs difference ≤ ``tolerance``), and the mIoU of both on the validation split
  through the same evaluation code (:func:`~seg_pipelines.experiments.inference.evaluate_checkpoint`),
  equal within ``miou_tolerance``. A failed check raises :class:`ExportCheckError` with the numbers.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seg_pipelines.datasets.loaders import IMAGENET_MEAN, IMAGENET_STD
from seg_pipelines.engine.onnx_export import DEFAULT_OPSET, export_onnx
from seg_pipelines.engine.tables import markdown_table
from seg_pipelines.experiments.inference import (
    DEFAULT_TEMPLATES,
    InferenceInputError,
    InferenceModel,
    build_predictor,
    check_vocabulary,
    evaluate_checkpoint,
    evaluation_reader,
    load_inference_model,
    load_onnx_model,
    resolve_vocabulary,
    text_embeddings,
)

logger = logging.getLogger(__name__)

PRODUCER = "seg_pipelines"


class ExportCheckError(RuntimeError):
    """The exported model does not give PyTorch's logits or mIoU; the message has the numbers."""


# --------------------------------------------------------------------------- the exported network


class ClosedSetNetwork(nn.Module):
    """A closed-set segmentor as exported: ImageNet-normalised images → logits at input size."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.segmentor(images)["logits"]


class FixedVocabularyNetwork(nn.Module):
    """An open-vocabulary segmentor with its class text embeddings (K, P, D) baked in: images in [0, 1]
    → logits at input size over those K classes."""

    def __init__(self, segmentor: nn.Module, class_embeddings: torch.Tensor) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.register_buffer("class_embeddings", class_embeddings.detach().clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.segmentor(images, self.class_embeddings)["logits"]


def prepare_for_export(network: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of ``network`` whose modules take their exportable path, and what was switched: CAA's
    chunked affinity (:class:`~seg_pipelines.losses.affinity.ChunkedSigmoidAffinity`, a loop whose length
    follows H·W: ``torch.export`` unrolls it for the sample size) becomes the materialised σ(QKᵀ)V of
    eq. 3.2–3.3, the same numbers with O((hw)²) memory at feature resolution."""
    from seg_pipelines.models.caa import ClassAwareAffinity

    prepared = copy.deepcopy(network).eval()
    switched = []
    for name, module in prepared.named_modules():
        if isinstance(module, ClassAwareAffinity) and module.use_semantic_affinity and module.memory_efficient:
            module.memory_efficient = False
            switched.append(f"{name}: CAA affinity materialised (memory_efficient=False)")
    return prepared, switched


def exported_network(model: InferenceModel, class_names: Sequence[str], templates: Sequence[str]) -> nn.Module:
    """The network of ``model`` as it is exported (see the module docstring)."""
    if model.kind == "closed_set":
        return ClosedSetNetwork(model.module)
    return FixedVocabularyNetwork(model.module, text_embeddings(model, class_names, templates))


def input_normalization(model: InferenceModel) -> tuple[list[float], list[float]]:
    """(mean, std) applied to images in [0, 1] before the exported network: ImageNet's for closed-set
    models; none for open-vocabulary ones (CLIP's and SAM's normalisation is inside the graph)."""
    if model.kind == "closed_set":
        return [float(v) for v in IMAGENET_MEAN], [float(v) for v in IMAGENET_STD]
    return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]


def export_metadata(
    model: InferenceModel,
    class_names: Sequence[str],
    templates: Sequence[str],
    opset: int,
    prepared: Sequence[str],
) -> dict[str, str]:
    """The ``metadata_props`` of an exported model (README "Export to ONNX" lists the keys)."""
    mean, std = input_normalization(model)
    if model.kind == "closed_set":
        architecture = model.config.get("name", "segmentor")
        if model.config.get("addon"):
            architecture += f"+{model.config['addon']}"
        resize = "none: any height and width (whole-image inference)"
    else:
        architecture = str(model.config.get("architecture"))
        size = int(model.module.image_size)
        resize = f"none outside the graph: any height and width (resized to {size}x{size} inside, CLIP input size)"
    metadata = {
        "producer": PRODUCER,
        "kind": model.kind,
        "fixed_vocabulary": "true" if model.kind == "open_vocabulary" else "false",
        "protocol": "closed_set" if model.kind == "closed_set" else "open_vocabulary",
        "architecture": architecture,
        "source_checkpoint": str(model.source),
        "class_names": json.dumps(list(class_names)),
        "num_classes": str(len(class_names)),
        "input": "images: float32 [1, 3, height, width], RGB, channels first; height and width dynamic",
        "output": "logits: float32 [1, num_classes, height, width] at input size; label = argmax over classes",
        "color_order": "RGB",
        "layout": "NCHW",
        "pixel_scale": repr(1.0 / 255.0),
        "mean": json.dumps(mean),
        "std": json.dumps(std),
        "preprocessing": "x = (pixel * pixel_scale - mean) / std per channel",
        "input_resize": resize,
        "inference_mode": "whole",
        "opset": str(opset),
    }
    if model.kind == "open_vocabulary":
        metadata["templates"] = json.dumps(list(templates))
    if prepared:
        metadata["export_notes"] = "; ".join(prepared)
    return metadata


def default_output_path(checkpoint: str | Path) -> Path:
    """``data/06_models/caa/method.pt`` → ``data/06_models/caa/method.onnx``."""
    return Path(checkpoint).with_suffix(".onnx")


# --------------------------------------------------------------------------- checks


def _parse_size(value: Any, key: str) -> tuple[int, int]:
    if isinstance(value, str):  # --params: "67x93"
        value = value.lower().split("x")
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError) as error:
        raise InferenceInputError(f"{key}: expected [height, width] or 'HxW', got {value!r}") from error
    if height < 1 or width < 1:
        raise InferenceInputError(f"{key}: sizes must be positive, got {value!r}")
    return height, width


def comparison_images(
    dataset: Mapping[str, Any], count: int, sizes: Sequence[tuple[int, int]]
) -> list[tuple[str, torch.Tensor]]:
    """The first ``count`` images of the validation split (in [0, 1], their own size) and the first one
    resized to each of ``sizes``: ``[(label, image (1, 3, H, W))]``."""
    reader = evaluation_reader(dataset)
    samples = reader.list_samples(dataset.get("split", "val"))[:count]
    if not samples:
        raise InferenceInputError(f"export.dataset: split {dataset.get('split', 'val')!r} holds no images")
    images = []
    for sample in samples:
        image, _ = reader.load_pair(sample)
        images.append((str(sample.sample_id), torch.from_numpy(image).permute(2, 0, 1).float().unsqueeze(0) / 255.0))
    first_id, first = images[0]
    for height, width in sizes:
        resized = F.interpolate(first, size=(height, width), mode="bilinear", align_corners=False)
        images.append((f"{first_id} resized to {height}x{width}", resized))
    return images


@torch.no_grad()
def compare_logits(
    reference: InferenceModel,
    exported: InferenceModel,
    class_names: Sequence[str],
    images: Sequence[tuple[str, torch.Tensor]],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
) -> list[dict[str, Any]]:
    """Per image: its size, the max abs logit difference of ``exported`` against ``reference`` and the share
    of pixels whose labels agree (both through :func:`~seg_pipelines.experiments.inference.build_predictor`,
    whole-image mode)."""
    params = {"mode": "whole", "templates": list(templates)}
    ours, theirs = build_predictor(reference, class_names, params), build_predictor(exported, class_names, params)
    rows = []
    for label, image in images:
        expected, got = ours(image), theirs(image)
        rows.append(
            {
                "image": label,
                "height": int(image.shape[-2]),
                "width": int(image.shape[-1]),
                "max_abs_difference": float((expected - got).abs().max()),
                "max_abs_logit": float(expected.abs().max()),
                "labels_equal": float((expected.argmax(1) == got.argmax(1)).float().mean()),
            }
        )
    return rows


# --------------------------------------------------------------------------- the run


def run_export(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Export ``params['checkpoint']`` to ONNX and check it (module docstring). Returns the report (JSON:
    file, metadata, per-image differences, mIoU of both), the metrics ``{"export": {...}}`` and markdown."""
    checkpoint = params.get("checkpoint")
    if checkpoint and str(checkpoint).endswith(".onnx"):
        raise InferenceInputError(
            f"export.checkpoint {checkpoint} is already an ONNX file: give the PyTorch checkpoint"
        )
    reference = load_inference_model(params)
    dataset = dict(params.get("dataset") or {})
    for key in ("family", "root"):
        if not dataset.get(key):
            raise InferenceInputError(
                f"export.dataset.{key} is not set (the validation split the export is checked on)"
            )
    templates = list(params.get("templates") or DEFAULT_TEMPLATES)
    given = resolve_vocabulary(params)
    if given is None:
        given = list(evaluation_reader(dataset).class_names) if reference.kind == "open_vocabulary" else None
    class_names = check_vocabulary(reference, given, "the vocabulary")
    opset = int(params.get("opset") or DEFAULT_OPSET)
    output = Path(params.get("output") or default_output_path(checkpoint))

    network, prepared = prepare_for_export(exported_network(reference, class_names, templates))
    sample_height, sample_width = _parse_size(params.get("sample_size") or (67, 93), "export.sample_size")
    sample = torch.rand(1, 3, sample_height, sample_width, generator=torch.Generator().manual_seed(0))
    mean, std = input_normalization(reference)
    sample = (sample - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    metadata = export_metadata(reference, class_names, templates, opset, prepared)
    started = time.perf_counter()
    export_onnx(network, sample, output, metadata=metadata, opset=opset, name=f"{reference.source}")
    export_seconds = time.perf_counter() - started
    logger.info("exported %s to %s in %.1f s", reference.source, output, export_seconds)

    exported = load_onnx_model(output)
    sizes = params.get("compare_sizes") or []
    if isinstance(sizes, str):  # --params: "67x93;101x55"
        sizes = [size for size in sizes.split(";") if size.strip()]
    sizes = [_parse_size(size, "export.compare_sizes") for size in sizes]
    images = comparison_images(dataset, int(params.get("compare_images", 3)), sizes)
    rows = compare_logits(reference, exported, class_names, images, templates)
    max_difference = max(row["max_abs_difference"] for row in rows)

    evaluation = {
        "dataset": dataset,
        "mode": "whole",
        "templates": templates,
        "limit": params.get("limit"),
        "show_progress": params.get("show_progress", True),
    }
    if reference.kind == "open_vocabulary":
        evaluation["classes"] = list(class_names)
    torch_table, torch_metrics, _ = evaluate_checkpoint(reference, evaluation)
    onnx_table, onnx_metrics, _ = evaluate_checkpoint(exported, evaluation)
    miou_torch, miou_onnx = torch_metrics["evaluate"]["mIoU"], onnx_metrics["evaluate"]["mIoU"]
    miou_difference = abs(miou_torch - miou_onnx) if np.isfinite(miou_torch) or np.isfinite(miou_onnx) else 0.0

    tolerance = float(params.get("tolerance", 1e-4))
    miou_tolerance = float(params.get("miou_tolerance", 0.01))
    passed = max_difference <= tolerance and miou_difference <= miou_tolerance
    size_mb = sum(p.stat().st_size for p in output.parent.glob(output.name + "*")) / 2**20
    report = {
        "onnx": str(output),
        "checkpoint": str(reference.source),
        "kind": reference.kind,
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}, opset {opset}",
        "export_seconds": round(export_seconds, 2),
        "onnx_megabytes": round(size_mb, 3),
        "sample_size": [sample_height, sample_width],
        "metadata": metadata,
        "logit_comparison": rows,
        "max_abs_difference": max_difference,
        "tolerance": tolerance,
        "split": dataset.get("split", "val"),
        "images_evaluated": torch_metrics["evaluate"]["images"],
        "mIoU_pytorch": miou_torch,
        "mIoU_onnx": miou_onnx,
        "mIoU_equal": bool(miou_torch == miou_onnx or (np.isnan(miou_torch) and np.isnan(miou_onnx))),
        "per_class_iou_max_difference": float(np.nanmax(np.abs(torch_table["iou"] - onnx_table["iou"]), initial=0.0)),
        # pixels whose predicted class moved (at least): half the L1 distance of the per-class prediction counts
        "predicted_pixels_moved": int(
            np.abs(torch_table["predicted_pixels"] - onnx_table["predicted_pixels"]).sum() // 2
        ),
        "pixels_evaluated": int(torch_table["ground_truth_pixels"].sum()),
        "passed": bool(passed),
    }
    metrics = {
        "export": {
            "max_abs_difference": max_difference,
            "mIoU_pytorch": miou_torch,
            "mIoU_onnx": miou_onnx,
            "mIoU_difference": miou_difference,
            "export_seconds": export_seconds,
            "onnx_megabytes": size_mb,
        }
    }
    markdown = export_markdown(report)
    if not passed:
        raise ExportCheckError(
            f"{output} does not match {reference.source}: max abs logit difference {max_difference:.3g} "
            f"(tolerance {tolerance:g}), mIoU {miou_onnx:.4f} (ONNX) vs {miou_torch:.4f} (PyTorch), "
            f"difference {miou_difference:.4g} (tolerance {miou_tolerance:g}); per image: "
            + ", ".join(f"{r['image']} {r['max_abs_difference']:.3g}" for r in rows)
        )
    logger.info(
        "%s: max abs logit difference %.3g, mIoU %.4f (PyTorch) = %.4f (ONNX)",
        output,
        max_difference,
        miou_torch,
        miou_onnx,
    )
    return report, metrics, markdown


def _cell(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def export_markdown(report: Mapping[str, Any]) -> str:
    """The export report as markdown: the file, the logit comparison per image, the mIoU of both, the metadata."""
    rows = [
        [r["image"], r["height"], r["width"], r["max_abs_difference"], r["max_abs_logit"], 100 * r["labels_equal"]]
        for r in report["logit_comparison"]
    ]
    comparison = markdown_table(
        rows,
        ["image", "height", "width", "max abs difference", "max abs logit", "labels equal (%)"],
        cell=_cell,
        title="## ONNX Runtime vs PyTorch logits",
    )
    metadata = markdown_table(
        [[key, value if len(value) <= 200 else value[:200] + " …"] for key, value in report["metadata"].items()],
        ["key", "value"],
        title="## Metadata (metadata_props)",
    )
    lines = [
        f"# ONNX export of {report['checkpoint']}",
        "",
        f"- file: `{report['onnx']}` ({report['onnx_megabytes']:.2f} MiB), {report['exporter']}, "
        f"{report['export_seconds']:.1f} s",
        f"- max abs logit difference: {report['max_abs_difference']:.3g} (tolerance {report['tolerance']:g})",
        f"- mIoU on {report['split']} ({int(report['images_evaluated'])} images): "
        f"PyTorch {report['mIoU_pytorch']:.4f}, "
        f"ONNX Runtime {report['mIoU_onnx']:.4f} ({'equal' if report['mIoU_equal'] else 'differ'}; "
        f"{report['predicted_pixels_moved']} of {report['pixels_evaluated']} pixels changed class)",
        f"- check: {'passed' if report['passed'] else 'FAILED'}",
        "",
        comparison,
        "",
        metadata,
    ]
    return "\n".join(lines) + "\n"

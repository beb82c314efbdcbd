"""Open-vocabulary evaluation (thesis 5.3; CAT-Seg / detectron2 protocol) on top of ``engine.evaluation``.

* Protocol ``open_vocabulary``: per-class IoU over the split, mIoU = mean over classes with
  ground-truth pixels; every benchmark keeps its own ignore value (A-847 65535, PC-459 459, …).
* VOC-21b ("VOCb"): every predicted id ``>= 20`` becomes the background id 20
  (:func:`~seg_pipelines.engine.evaluation.map_predictions_to_background`).
* CAT-Seg sliding-window inference: the image is resized to ``output_size``, cut into windows of
  ``window`` px with 1/3 overlap, plus one global view of the whole image resized to ``window``;
  per-window sigmoid scores are averaged where windows overlap, then averaged with the global view.
* Reports: the six-column layout of thesis Table 5.1 and the seen/unseen per-class layout of Table 5.2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from seg_pipelines.engine.evaluation import SegmentationScores, evaluate
from seg_pipelines.engine.tables import markdown_table

Predict = Callable[[torch.Tensor], torch.Tensor]

#: Table 5.1 column order (thesis) and the synthetic benchmark that mirrors each column.
TABLE_5_1_COLUMNS: tuple[tuple[str, str], ...] = (
    ("A-847", "syn847"),
    ("PC-459", "synpc459"),
    ("A-150", "syn150"),
    ("PC-59", "synpc59"),
    ("VOC", "synvoc20"),
    ("VOCb", "synvoc21b"),
)
BACKGROUND_NAME = "background"


@dataclass(frozen=True)
class BenchmarkSpec:
    """What the protocol needs about one benchmark vocabulary."""

    name: str
    class_names: tuple[str, ...]
    ignore_index: int
    background_mapping: tuple[int, int] | None = None  # (first id mapped, background id): VOC-21b

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def benchmark_spec(name: str, class_names: Sequence[str], ignore_index: int) -> BenchmarkSpec:
    """Spec of a vocabulary; a vocabulary ending in ``background`` (VOC-21b) gets the background rule:
    predictions ``>= id(background)`` → ``id(background)`` (CAT-Seg's ``pascal_voc_b``: ``>= 20`` → 20)."""
    validate_class_names(class_names, name)
    mapping = None
    if class_names[-1] == BACKGROUND_NAME:
        background = len(class_names) - 1
        mapping = (background, background)
    return BenchmarkSpec(name, tuple(class_names), int(ignore_index), mapping)


def validate_class_names(class_names: Sequence[str], where: str = "vocabulary") -> None:
    """Raise ValueError on an empty vocabulary, empty names or duplicate names (prompts would collide)."""
    if not class_names:
        raise ValueError(f"{where}: the vocabulary is empty")
    empty = [index for index, name in enumerate(class_names) if not isinstance(name, str) or not name.strip()]
    if empty:
        raise ValueError(f"{where}: class names at positions {empty[:10]} are empty")
    seen: dict[str, int] = {}
    duplicates = []
    for index, name in enumerate(class_names):
        key = name.strip().lower()
        if key in seen:
            duplicates.append(f"{name!r} (ids {seen[key]} and {index})")
        seen.setdefault(key, index)
    if duplicates:
        raise ValueError(f"{where}: duplicate class names {', '.join(duplicates[:10])}")


# --------------------------------------------------------------------------- inference


def sliding_window_positions(length: int, window: int, stride: int) -> list[int]:
    """Window starts covering ``0..length`` (the last one aligned to the border)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


@torch.no_grad()
def predict_catseg_slide(
    predict: Predict,
    images: torch.Tensor,
    *,
    window: int,
    overlap: float = 1 / 3,
    output_size: int | None = None,
    global_view: bool = True,
    scores: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid,
) -> torch.Tensor:
    """CAT-Seg's ``inference_sliding_window``: per-class scores (B, K, H, W) at the input size.

    Args:
        predict: images (B, 3, window, window) → logits (B, K, h, w).
        window: window side (CAT-Seg: 384, the CLIP input size).
        overlap: fraction shared by neighbouring windows (CAT-Seg: 0.333).
        output_size: side the image is resized to before cutting (CAT-Seg: 640 for 384 windows);
            default ``round(window * 5 / 3)``.
        global_view: also predict on the whole image resized to ``window`` and average (CAT-Seg).
        scores: logits → scores (CAT-Seg: sigmoid).
    """
    size = output_size or int(round(window * 5 / 3))
    stride = max(1, int(window * (1 - overlap)))
    height, width = images.shape[-2:]
    resized = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    summed: torch.Tensor | None = None
    count = images.new_zeros(1, 1, size, size)
    for y0 in sliding_window_positions(size, window, stride):
        for x0 in sliding_window_positions(size, window, stride):
            crop = resized[:, :, y0 : y0 + window, x0 : x0 + window]
            out = scores(F.interpolate(predict(crop), size=crop.shape[-2:], mode="bilinear", align_corners=False))
            if summed is None:
                summed = images.new_zeros(images.shape[0], out.shape[1], size, size)
            summed[:, :, y0 : y0 + window, x0 : x0 + window] += out
            count[:, :, y0 : y0 + window, x0 : x0 + window] += 1
    assert summed is not None
    result = summed / count
    if global_view:
        whole = F.interpolate(images, size=(window, window), mode="bilinear", align_corners=False)
        global_scores = scores(
            F.interpolate(predict(whole), size=(window, window), mode="bilinear", align_corners=False)
        )
        result = 0.5 * (result + F.interpolate(global_scores, size=(size, size), mode="bilinear", align_corners=False))
    return F.interpolate(result, size=(height, width), mode="bilinear", align_corners=False)


@torch.no_grad()
def predict_ovss(predict: Predict, images: torch.Tensor, mode: str = "whole", **options) -> torch.Tensor:
    """``whole`` (logits at input size) or ``slide`` (:func:`predict_catseg_slide`) class scores."""
    if mode == "whole":
        logits = predict(images)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    if mode == "slide":
        return predict_catseg_slide(predict, images, **options)
    raise ValueError(f"unknown OVSS inference mode {mode!r}; use 'whole' or 'slide'")


@torch.no_grad()
def evaluate_open_vocabulary(
    predict: Predict,
    batches: Iterable[dict[str, torch.Tensor]],
    spec: BenchmarkSpec,
    mode: str = "whole",
    **mode_options,
) -> tuple[SegmentationScores, torch.Tensor]:
    """Scores (open-vocabulary protocol, the benchmark's ignore value and background rule) and the
    confusion matrix of ``predict`` over ``batches`` (dicts with ``image`` in [0, 1] and ``label``)."""
    return evaluate(
        lambda images: predict_ovss(predict, images, mode, **mode_options),
        batches,
        spec.num_classes,
        spec.ignore_index,
        protocol="open_vocabulary",
        background_mapping=spec.background_mapping,
    )


# --------------------------------------------------------------------------- reports


def six_column_table(miou: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Thesis Table 5.1 layout: one row per method, columns A-847 … VOCb (mIoU in %).

    ``miou[method][benchmark]`` is a fraction; a benchmark missing for a method gives NaN. A column is
    filled by the synthetic vocabulary of :data:`TABLE_5_1_COLUMNS` (``syn847``, header ``A-847 (syn847)``)
    or by a benchmark named as the column (a real dataset named ``A-847``), in the thesis's order; any
    other benchmark gets a column of its own after those. Only benchmarks some method has are columns.
    """
    names = list(dict.fromkeys(name for per_benchmark in miou.values() for name in per_benchmark))
    columns: list[tuple[str, str]] = []
    for column, synthetic in TABLE_5_1_COLUMNS:
        real = next((n for n in names if n.replace(" ", "").lower() == column.lower()), None)
        if real or synthetic in names:
            columns.append((column if real else f"{column} ({synthetic})", real or synthetic))
    used = {benchmark for _, benchmark in columns}
    columns += [(name, name) for name in names if name not in used]
    rows = []
    for method, per_benchmark in miou.items():
        row = {"Method": method}
        for header, benchmark in columns:
            value = per_benchmark.get(benchmark, float("nan"))
            row[header] = round(100 * value, 2) if value == value else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def seen_unseen_table(
    per_class_iou: dict[str, np.ndarray], class_names: Sequence[str], unseen_names: Iterable[str]
) -> pd.DataFrame:
    """Thesis Table 5.2 layout: per-class IoU (%) of seen classes, their mIoU, unseen classes, their mIoU.

    Classes without ground truth (NaN) stay NaN and are left out of the means. ``background``
    counts as unseen, as in the thesis's VOCb table.
    """
    unseen = set(unseen_names) | {BACKGROUND_NAME}
    seen_names = [name for name in class_names if name not in unseen]
    unseen_order = [name for name in class_names if name in unseen]
    rows = []
    for method, iou in per_class_iou.items():
        iou = np.asarray(iou, dtype=float)
        if len(iou) != len(class_names):
            raise ValueError(f"{method}: {len(iou)} IoU values for {len(class_names)} classes")
        by_name = dict(zip(class_names, iou))
        row: dict[str, float | str] = {"Method": method}
        for name in seen_names:
            row[f"seen: {name}"] = round(100 * by_name[name], 2)
        row["seen mIoU"] = (
            round(100 * float(np.nanmean([by_name[n] for n in seen_names])), 2) if seen_names else float("nan")
        )
        for name in unseen_order:
            row[f"unseen: {name}"] = round(100 * by_name[name], 2)
        values = [by_name[n] for n in unseen_order if not np.isnan(by_name[n])]
        row["unseen mIoU"] = round(100 * float(np.mean(values)), 2) if values else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def table_to_markdown(table: pd.DataFrame, caption: str = "") -> str:
    """Markdown rendering of a report table: floats with 2 decimals, missing values as "–"
    (:func:`seg_pipelines.engine.tables.markdown_table`)."""
    return markdown_table(table, decimals=2, title=caption) + "\n"

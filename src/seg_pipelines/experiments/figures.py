"""Figures of training and evaluation runs: training curves, qualitative prediction grids (with a
legend of the classes shown, in the colours drawn) and cost-map grids (with their colour scales)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from seg_pipelines.datasets.synthetic.figures import concept_palette

IGNORE_COLOUR = np.array([0.0, 0.0, 0.0])


def data_source(manifest: Mapping[str, object]) -> str:
    """What a figure's numbers come from, for its title: the synthetic world or the dataset family."""
    family = str(manifest.get("family", "unknown dataset"))
    return "synthetic world (embedded default)" if family == "synthetic" else family


def plot_training_curves(curves: Mapping[str, pd.DataFrame]) -> Figure:
    """Total loss of every run (left) and each run's loss terms (right), against the iteration."""
    figure, (total_axis, terms_axis) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for (name, curve), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        if curve.empty:
            continue
        total_axis.plot(curve["iteration"], curve["loss"], label=name, color=colour)
        terms = [c for c in curve.columns if c.startswith("loss_")]
        for term, style in zip(terms, ("-", "--", ":", "-.") * 4):
            terms_axis.plot(curve["iteration"], curve[term], linestyle=style, color=colour, label=f"{name}: {term}")
    total_axis.set(xlabel="iteration", ylabel="total loss", title="training loss", yscale="log")
    terms_axis.set(xlabel="iteration", ylabel="weighted loss term", title="loss terms", yscale="log")
    total_axis.legend(fontsize=8)
    terms_axis.legend(fontsize=6, ncol=2)
    return figure


def colourize(label: np.ndarray, palette: np.ndarray, ignore_index: int) -> np.ndarray:
    """RGB float image of class ids; ignored pixels black."""
    valid = (label != ignore_index) & (label >= 0) & (label < len(palette))
    return np.where(valid[..., None], palette[np.where(valid, label, 0)], IGNORE_COLOUR)


def plot_qualitative(
    images: Sequence[np.ndarray],
    ground_truths: Sequence[np.ndarray],
    predictions: Mapping[str, Sequence[np.ndarray]],
    class_names: Sequence[str],
    ignore_index: int,
) -> Figure:
    """Rows of (image, each model's prediction, ground truth), with a legend of the classes shown."""
    palette = concept_palette(len(class_names))
    columns = ["image", *predictions, "ground truth"]
    rows = len(images)
    figure, axes = plt.subplots(
        rows, len(columns), figsize=(2.3 * len(columns) + 1.8, 2.3 * rows + 0.4), squeeze=False, constrained_layout=True
    )
    shown: set[int] = set()
    for row, (image, truth) in enumerate(zip(images, ground_truths)):
        panels = [image.astype(float) / 255.0]
        for name in predictions:
            panels.append(colourize(predictions[name][row], palette, ignore_index))
        panels.append(colourize(truth, palette, ignore_index))
        for label in [*(predictions[name][row] for name in predictions), truth]:
            shown.update(int(c) for c in np.unique(label) if c != ignore_index and 0 <= c < len(class_names))
        for column, panel in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(panel, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[column], fontsize=9)
    handles = [Patch(color=palette[c], label=class_names[c]) for c in sorted(shown)]
    figure.legend(
        handles=handles,
        loc="outside right upper",
        fontsize=6,
        frameon=False,
        ncol=1 + len(handles) // 30,
        title=f"classes shown ({len(handles)})",
        title_fontsize=7,
    )
    return figure


@dataclass(frozen=True)
class CostMapRow:
    """One row of a cost-map figure: the image, the class's ground-truth mask and each model's map
    (``maps``: title → (H, W) array; ``scale`` says which colour bar it is read against)."""

    image: np.ndarray
    mask: np.ndarray
    mask_title: str
    maps: Mapping[str, np.ndarray]


def plot_cost_map_grid(
    rows: Sequence[CostMapRow],
    scales: Mapping[str, str],
    title: str = "",
    missing: Sequence[str] = (),
) -> Figure:
    """Rows of (image, mask, one cost map per model). ``scales`` maps each map title to its colour-bar
    label; maps with the same label share one colour scale (fixed to [0, 1] when every value lies in it,
    as sigmoid probabilities do, else the maps' joint range) and one colour bar on the right, so the
    panels of a column are comparable across rows. ``missing``: a line per class without an example."""
    titles = list(rows[0].maps) if rows else []
    unknown = [t for t in titles if t not in scales]
    if unknown:
        raise ValueError(f"cost maps {unknown} have no colour scale; scales: {sorted(scales)}")
    figure, axes = plt.subplots(
        max(len(rows), 1),
        2 + len(titles),
        figsize=(2.2 * (2 + len(titles)) + 1.6, 2.3 * max(len(rows), 1)),
        squeeze=False,
        constrained_layout=True,
    )
    limits: dict[str, tuple[float, float]] = {}
    for label in dict.fromkeys(scales[t] for t in titles):
        values = np.concatenate([np.ravel(row.maps[t]) for row in rows for t in titles if scales[t] == label])
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        limits[label] = (0.0, 1.0) if low >= 0.0 and high <= 1.0 else (low, high if high > low else low + 1e-6)
    images: dict[str, Any] = {}
    for row_index, row in enumerate(rows):
        axes[row_index, 0].imshow(row.image, interpolation="nearest")
        axes[row_index, 0].set_title("image", fontsize=9)
        axes[row_index, 1].imshow(row.mask, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes[row_index, 1].set_title(row.mask_title, fontsize=9)
        for column, map_title in enumerate(titles, start=2):
            low, high = limits[scales[map_title]]
            images[scales[map_title]] = axes[row_index, column].imshow(
                row.maps[map_title], cmap="jet", vmin=low, vmax=high, interpolation="bilinear"
            )
            axes[row_index, column].set_title(map_title, fontsize=9)
    for axis in axes.flat:
        axis.axis("off")
    for label, image in images.items():
        columns = [2 + i for i, t in enumerate(titles) if scales[t] == label]
        figure.colorbar(image, ax=axes[:, columns].ravel().tolist(), label=label, shrink=0.8, pad=0.02)
    if missing:
        figure.text(0.01, 0.0, "; ".join(missing), fontsize=8, va="bottom")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure

"""Figures of training and evaluation runs: training curves and qualitative prediction grids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    figure.legend(handles=handles, loc="outside right upper", fontsize=6, frameon=False, ncol=1 + len(handles) // 30)
    return figure

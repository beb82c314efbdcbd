"""Overview figure of a written synthetic world: labelled examples and the long-tailed frequencies."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from seg_pipelines.datasets.overview import add_class_legend  # noqa: E402

GROUP_COLOURS = {"head": "#1f77b4", "mid": "#ff7f0e", "tail": "#2ca02c"}


def concept_palette(num_concepts: int) -> np.ndarray:
    """Distinct overlay colours (``float num_concepts×3`` in [0, 1]) spread by the golden ratio in hue."""
    hues = (np.arange(num_concepts) * 0.618033988749895) % 1.0
    saturation = np.where(np.arange(num_concepts) % 2 == 0, 0.85, 0.6)
    value = np.where(np.arange(num_concepts) % 3 == 0, 0.95, 0.75)
    return matplotlib.colors.hsv_to_rgb(np.stack([hues, saturation, value], axis=1))


def plot_world_overview(root: str | Path, n_images: int = 12, split: str = "val") -> Figure:
    """Grid of ``n_images`` images of ``split``, each beside its label in the palette colours, with a
    legend of every class those labels contain (in the same colours), above the per-concept
    pixel-ratio histogram (log scale, bars coloured head / mid / tail, unseen hatched)."""
    from seg_pipelines.datasets.synthetic.reader import SyntheticReader

    reader = SyntheticReader(root)
    names = reader.concept_names
    palette = concept_palette(len(names))
    samples = reader.list_samples(split)[: max(1, n_images)]
    columns = min(6, len(samples))
    image_rows = int(np.ceil(len(samples) / columns))
    figure = plt.figure(figsize=(2.2 * columns + 3.2, 2.2 * image_rows + 3.6), layout="constrained")
    grid = figure.add_gridspec(image_rows + 1, columns, height_ratios=[1.0] * image_rows + [1.5])
    shown: set[int] = set()
    for position, sample in enumerate(samples):
        image, label = reader.load_pair(sample)
        labelled = label != reader.ignore_index
        coloured = np.where(labelled[..., None], palette[np.where(labelled, label, 0)], 0.0)  # unlabelled: black
        axis = figure.add_subplot(grid[position // columns, position % columns])
        axis.imshow(np.concatenate([image / 255.0, coloured], axis=1), interpolation="nearest")
        axis.set_title(f"{sample.sample_id}: image | label", fontsize=7)
        axis.axis("off")
        shown.update(int(i) for i in np.unique(label[labelled]))
    add_class_legend(figure, names, shown, palette, unlabelled="unlabelled", per_column=24)

    concepts = reader.concepts
    ratio = np.asarray([c["pixel_ratio"] for c in concepts])
    order = np.argsort(-ratio, kind="stable")
    histogram = figure.add_subplot(grid[image_rows, :])
    bars = histogram.bar(
        np.arange(len(order)),
        np.maximum(ratio[order], 1e-7),
        color=[GROUP_COLOURS[concepts[i]["group"]] for i in order],
    )
    for bar, index in zip(bars, order):
        if concepts[index]["unseen"]:
            bar.set_hatch("///")
            bar.set_edgecolor("black")
    histogram.set_yscale("log")
    histogram.set_xticks(np.arange(len(order)))
    histogram.set_xticklabels([names[i] for i in order], rotation=90, fontsize=6)
    histogram.set_ylabel("train pixel ratio")
    histogram.set_title(f"class frequencies ({reader.world['n_train']} training images; hatched = unseen)", fontsize=9)
    histogram.legend(
        handles=[Patch(color=colour, label=group) for group, colour in GROUP_COLOURS.items()]
        + [Patch(facecolor="white", edgecolor="black", hatch="///", label="unseen")],
        fontsize=7,
    )
    figure.suptitle(f"Synthetic world (embedded default): {split} images with their labels, class frequencies")
    return figure

"""Dataset overview figure: sample images with label overlays and the class-frequency histogram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from seg_pipelines.datasets.base import Sample, SegmentationReader  # noqa: E402

GROUP_COLOURS = {"head": "tab:blue", "mid": "tab:orange", "tail": "tab:red"}


def label_colormap(count: int = 256) -> np.ndarray:
    """``(count, 3)`` uint8 colours of the PASCAL VOC palette (bit-interleaved class ids), for any
    number of classes: A-847 and PC-459 labels go past the 256 colours of imgviz's table (whose
    ``label_colormap`` lost its size argument in imgviz 2)."""
    ids = np.arange(int(count), dtype=np.int64)
    colours = np.zeros((len(ids), 3), dtype=np.int64)
    bits = ids.copy()
    for shift in range(7, -1, -1):  # three bits of the id per step, most significant colour bit first
        for channel in range(3):
            colours[:, channel] |= ((bits >> channel) & 1) << shift
        bits >>= 3
    return colours.astype(np.uint8)


def label_overlay(image: np.ndarray, label: np.ndarray, ignore_index: int, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour-coded label map over ``image``; ignored pixels stay unblended."""
    colours = label_colormap(max(int(label[label != ignore_index].max(initial=0)) + 2, 256))
    coloured = colours[np.where(label == ignore_index, 0, label + 1) % len(colours)]
    blended = (1 - alpha) * image.astype(np.float32) + alpha * coloured.astype(np.float32)
    blended[label == ignore_index] = image[label == ignore_index]
    return blended.clip(0, 255).astype(np.uint8)


def label_colours(label: np.ndarray, ignore_index: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 image of ``label`` in the colours :func:`label_overlay` and the predict label
    PNGs use (class c: palette entry c + 1); ignored pixels black."""
    colours = label_colormap(max(int(label[label != ignore_index].max(initial=0)) + 2, 256))
    coloured = colours[np.where(label == ignore_index, 0, label + 1) % len(colours)]
    coloured[label == ignore_index] = 0
    return coloured


def plot_dataset_overview(
    reader: SegmentationReader,
    index: pd.DataFrame,
    class_statistics: pd.DataFrame,
    n_images: int = 8,
    split: str = "val",
) -> plt.Figure:
    """A grid of ``n_images`` of ``split``, each beside its label in the palette colours, with a legend of
    every class those labels contain (same colours), over a log-scale bar chart of class pixel
    frequencies coloured by head/mid/tail tercile."""
    rows = index[index["split"] == split].head(n_images)
    if rows.empty:
        rows = index.head(n_images)
    columns = max(min(len(rows), 4), 1)
    grid_rows = (len(rows) + columns - 1) // columns
    figure = plt.figure(figsize=(5.2 * columns + 2.5, 3.0 * grid_rows + 4.0), layout="constrained")
    spec = figure.add_gridspec(grid_rows + 1, columns, height_ratios=[3.0] * grid_rows + [4.0])
    names = class_statistics["name"].tolist()
    shown: set[int] = set()
    for position, (_, row) in enumerate(rows.iterrows()):
        axis = figure.add_subplot(spec[position // columns, position % columns])
        image, label = reader.load_pair(Sample(row["sample_id"], row["split"], row["image_path"], row["label_path"]))
        axis.imshow(np.concatenate([image, label_colours(label, reader.ignore_index)], axis=1))
        present = np.unique(label[label != reader.ignore_index])
        shown.update(int(c) for c in present if 0 <= c < len(names))
        axis.set_title(f"{row['sample_id']}: image | label", fontsize=7)
        axis.axis("off")
    palette = label_colormap(max(len(names) + 1, 256)) / 255.0
    add_class_legend(figure, names, shown, palette[1:], unlabelled="ignored", per_column=30)
    histogram = figure.add_subplot(spec[grid_rows, :])
    ordered = class_statistics.sort_values("rank")
    histogram.bar(
        range(len(ordered)),
        ordered["frequency"].clip(lower=1e-8),
        color=[GROUP_COLOURS[g] for g in ordered["group"]],
    )
    histogram.set_yscale("log")
    histogram.set_ylabel("pixel frequency f_c (train)")
    histogram.set_xticks(range(len(ordered)))
    histogram.set_xticklabels(ordered["name"], rotation=90, fontsize=max(4, 8 - len(ordered) // 40))
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in GROUP_COLOURS.values()]
    histogram.legend(handles, list(GROUP_COLOURS), title="group")
    histogram.set_title(f"{reader.family}: class frequencies ({len(ordered)} classes)")
    return figure


def add_class_legend(
    figure, names: list[str], shown: set[int], colours, unlabelled: str = "ignored", per_column: int = 30
) -> None:
    """A legend beside ``figure``'s panels of the classes ``shown`` (ids into ``names``), each in its
    panel colour (``colours[id]``, RGB in 0-1), saying how many of the vocabulary's classes that is."""
    figure.legend(
        handles=[plt.Rectangle((0, 0), 1, 1, color=colours[c], label=names[c]) for c in sorted(shown)],
        loc="outside right upper",
        fontsize=7,
        frameon=False,
        ncol=1 + len(shown) // per_column,
        title=f"classes in these labels\n({len(shown)} of {len(names)}; black: {unlabelled})",
        title_fontsize=7,
    )

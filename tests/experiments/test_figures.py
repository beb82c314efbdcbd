"""The report's figures carry what a reader needs to decode them (issue 30 item 6): a legend that lists
exactly the classes drawn, in the colours drawn; colour bars for cost maps; a legend that covers no
data point. Each figure is built from a small synthetic input and its matplotlib artists are checked."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402

from seg_pipelines.datasets.base import Sample  # noqa: E402
from seg_pipelines.datasets.overview import label_colormap, plot_dataset_overview  # noqa: E402
from seg_pipelines.datasets.synthetic.figures import concept_palette  # noqa: E402
from seg_pipelines.experiments.attribute_selection import plot_combination_curve  # noqa: E402
from seg_pipelines.experiments.figures import CostMapRow, plot_cost_map_grid, plot_qualitative  # noqa: E402


def _legends(figure) -> list[Legend]:
    return [*figure.legends, *(axis.get_legend() for axis in figure.axes if axis.get_legend() is not None)]


def _entries(legend: Legend) -> dict[str, tuple[float, float, float]]:
    """Legend label → its patch colour (RGB)."""
    return {
        text.get_text(): to_rgb(handle.get_facecolor())
        for text, handle in zip(legend.get_texts(), legend.legend_handles)
    }


def test_attribute_combination_legend_covers_no_point():
    # the measured shape that put the legend over two points: a high first step, then low steps at the
    # lower right, where loc="lower right" used to sit
    combinations = pd.DataFrame(
        {
            "combination": ["size", "size + action or state", "size + action or state + color", "size + … + texture"],
            "avg.": [25.0, 22.1, 22.6, 22.5],
        }
    )
    attributes = pd.DataFrame({"attribute": ["template", "size"], "avg.": [25.7, 25.0]})
    figure = plot_combination_curve(combinations, attributes)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (legend,) = _legends(figure)
    box = legend.get_window_extent(renderer)
    axis = figure.axes[0]
    points = [axis.transData.transform(xy) for line in axis.get_lines() for xy in line.get_xydata()]
    assert len(points) >= 4 + 1  # the curve's points and the selected star
    assert not any(box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1 for x, y in points)
    assert not box.overlaps(axis.get_window_extent(renderer)), "the legend sits beside the plot area"
    assert box.x1 <= figure.bbox.x1 + 1, "and inside the saved figure"
    assert [text.get_text() for text in legend.get_texts()] == [
        "greedy combination",
        "template baseline (25.7)",
        "selected",
    ]
    plt.close(figure)


def test_qualitative_legend_lists_exactly_the_classes_shown_in_their_panel_colours():
    names = [f"concept {c}" for c in range(12)]
    ignore = 255
    truth = np.array([[0, 0, 3], [3, ignore, 5]])
    predictions = {"model A": [np.array([[0, 0, 3], [3, 9, 9]])], "model B": [np.array([[1, 0, 3], [3, 5, 5]])]}
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    figure = plot_qualitative([image], [truth], predictions, names, ignore)
    (legend,) = _legends(figure)
    entries = _entries(legend)
    shown = [0, 1, 3, 5, 9]  # in any panel; 2, 4, 6-8, 10, 11 nowhere
    assert list(entries) == [names[c] for c in shown]
    palette = concept_palette(len(names))
    for class_id in shown:
        assert entries[names[class_id]] == pytest.approx(tuple(palette[class_id]))
    panel = figure.axes[2].get_images()[0].get_array()  # model B's prediction as drawn
    assert tuple(panel[0, 0]) == pytest.approx(tuple(palette[1]))
    plt.close(figure)


def test_cost_maps_have_one_colour_bar_per_scale_and_shared_limits():
    rng = np.random.default_rng(0)
    rows = [
        CostMapRow(
            image=rng.random((8, 8, 3)),
            mask=(rng.random((8, 8)) > 0.5).astype(float),
            mask_title=f"'class {i}' mask",
            maps={"CLIP": rng.uniform(-0.3, 0.6, (8, 8)), "CAT-Seg": rng.random((8, 8)), "LSMSeg": rng.random((8, 8))},
        )
        for i in range(2)
    ]
    scales = {"CLIP": "cosine similarity", "CAT-Seg": "sigmoid(class logit)", "LSMSeg": "sigmoid(class logit)"}
    figure = plot_cost_map_grid(rows, scales, title="t", missing=["no 'kite' in syn847"])
    colour_bars = [axis for axis in figure.axes if axis.get_label() == "<colorbar>"]
    assert sorted(bar.get_ylabel() for bar in colour_bars) == ["cosine similarity", "sigmoid(class logit)"]
    panels = [axis for axis in figure.axes if axis.get_label() != "<colorbar>"]
    assert len(panels) == 2 * 5
    limits = {axis.get_title(): axis.get_images()[0].get_clim() for axis in panels if axis.get_title() in scales}
    assert limits["CAT-Seg"] == limits["LSMSeg"] == (0.0, 1.0)  # probabilities on one fixed scale
    clip = np.concatenate([row.maps["CLIP"].ravel() for row in rows])
    assert limits["CLIP"] == pytest.approx((clip.min(), clip.max()))  # one range over both rows
    assert "no 'kite' in syn847" in [text.get_text() for text in figure.texts]
    with pytest.raises(ValueError, match="LSMSeg"):
        plot_cost_map_grid(rows, {"CLIP": "c", "CAT-Seg": "p"})
    plt.close(figure)


class _TwoImageReader:
    """A reader of two 4 x 4 labels over a 6-class vocabulary (class 2 and 5 appear in neither)."""

    family = "toy"
    ignore_index = 255
    labels = {
        "a": np.array([[0, 0, 1, 1]] * 3 + [[255, 255, 1, 1]]),
        "b": np.array([[3, 3, 4, 4]] * 4),
    }

    def load_pair(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        return np.full((4, 4, 3), 128, dtype=np.uint8), self.labels[sample.sample_id]


def test_dataset_overview_legend_lists_every_class_in_the_labels_in_the_panel_colours():
    reader = _TwoImageReader()
    index = pd.DataFrame(
        {"sample_id": ["a", "b"], "split": "val", "image_path": ["a.jpg", "b.jpg"], "label_path": ["a.png", "b.png"]}
    )
    statistics = pd.DataFrame(
        {
            "name": [f"c{i}" for i in range(6)],
            "rank": range(6),
            "frequency": [0.4, 0.3, 0.0, 0.2, 0.1, 0.0],
            "group": ["head", "head", "mid", "mid", "tail", "tail"],
        }
    )
    figure = plot_dataset_overview(reader, index, statistics, n_images=2)
    (legend,) = figure.legends
    entries = _entries(legend)
    assert list(entries) == ["c0", "c1", "c3", "c4"]  # all classes present (not the first few), none absent
    palette = label_colormap(256) / 255.0
    drawn = figure.axes[0].get_images()[0].get_array()  # image | label of sample a
    assert tuple(drawn[0, 4] / 255.0) == pytest.approx(entries["c0"])
    assert entries["c0"] == pytest.approx(tuple(palette[1]))
    assert tuple(drawn[0, 6] / 255.0) == pytest.approx(entries["c1"])  # unblended: the legend's colour exactly
    assert tuple(drawn[3, 4]) == (0, 0, 0)  # ignored pixels black
    plt.close(figure)


class _FixedLogits:
    """A stand-in model whose class logits are fixed: class ``k`` wins where ``label_map == k``."""

    def __init__(self, label_map: np.ndarray, num_classes: int):
        import torch

        self.logits = torch.nn.functional.one_hot(torch.from_numpy(label_map), num_classes).permute(2, 0, 1)[None] * 4.0

    def __call__(self, image, text):
        return {"logits": self.logits.float() - 2.0}

    def eval(self):
        return self

    def visual_features(self, image):
        import torch

        return torch.ones(1, 4, 2, 2), None


def _fake_lsmseg_models(monkeypatch):
    """``experiments.lsmseg``'s figures on two 6 x 6 validation images and fixed-logit models (no training)."""
    import torch

    from seg_pipelines.experiments import lsmseg

    names = ["sky", "grass", "lime", "boat", "road"]
    labels = [np.array([[0] * 6] * 3 + [[1] * 6] * 3), np.array([[0] * 6] * 3 + [[2, 2, 1, 1, 1, 255]] * 3)]
    dataset = [{"image": torch.rand(3, 6, 6), "label": torch.from_numpy(label)} for label in labels]
    predicted = np.array([[0] * 6] * 3 + [[3] * 6] * 3)  # "boat" is predicted, never in the ground truth
    models = {"baseline": _FixedLogits(predicted, 5), "lsmseg": _FixedLogits(labels[0].clip(0, 4), 5)}
    record = {"class_names": names, "ignore_index": 255, "prompts": [[n] for n in names]}
    monkeypatch.setattr(
        lsmseg, "_trained_models_on", lambda *args: (record, dataset, models, {k: None for k in models})
    )
    monkeypatch.setattr(lsmseg, "build_ovss_model", lambda *args: _FixedLogits(predicted, 5))
    monkeypatch.setattr(lsmseg, "_text_embeddings", lambda model, prompts: torch.ones(len(prompts), 1, 4))
    params = {
        "figures": {
            "qualitative_benchmark": "syn847",
            "qualitative_images": 2,
            "cost_map_benchmark": "syn847",
            "cost_map_classes": ["lime", "road"],
        }
    }
    plan = {"unseen": ["lime"], "clip_pretrained": None}
    return lsmseg, params, plan, names


def test_lsmseg_predictions_figure_has_a_legend_of_the_classes_in_its_panels(monkeypatch):
    lsmseg, params, plan, names = _fake_lsmseg_models(monkeypatch)
    figure = lsmseg.plot_qualitative({}, {}, pd.DataFrame(), {"family": "synthetic"}, plan, params)
    (legend,) = figure.legends
    entries = _entries(legend)
    assert list(entries) == ["sky", "grass", "lime", "boat"]  # in truth or a prediction; "road" nowhere
    palette = concept_palette(len(names))
    assert entries["boat"] == pytest.approx(tuple(palette[3]))
    assert [axis.get_title() for axis in figure.axes[:4]] == ["image", "CAT-Seg (baseline)", "LSMSeg", "ground truth"]
    plt.close(figure)


def test_lsmseg_cost_map_figure_has_its_colour_bars(monkeypatch):
    lsmseg, params, plan, _ = _fake_lsmseg_models(monkeypatch)
    figure = lsmseg.plot_cost_maps({}, {}, pd.DataFrame(), {"family": "synthetic"}, plan, params)
    colour_bars = sorted(axis.get_ylabel() for axis in figure.axes if axis.get_label() == "<colorbar>")
    assert colour_bars == ["CLIP cosine similarity (before fine-tuning)", "sigmoid(class logit)"]
    titles = [axis.get_title() for axis in figure.axes if axis.get_label() != "<colorbar>"]
    assert titles[:5] == ["image", "'lime' (unseen) mask", "CLIP", "CAT-Seg", "LSMSeg"]
    assert "no 'road' in syn847" in [text.get_text() for text in figure.texts]  # road is in no label
    plt.close(figure)

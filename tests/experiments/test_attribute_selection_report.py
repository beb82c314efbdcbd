"""The Table 5.3 report's note on the thesis's own ranking (issue 28 item 9)."""

from __future__ import annotations

import pytest

from seg_pipelines.experiments.attribute_selection import thesis_attribute_averages, thesis_ranking_note
from seg_pipelines.thesis_tables import TABLE_5_3


def test_thesis_table_5_3_does_not_single_out_size():
    averages = thesis_attribute_averages()
    # shape (11.2 + 18.4 + 28.2 + 54.7 + 94.9 + 77.1) / 6 = 284.5 / 6; size and texture 284.4 / 6
    assert list(averages)[:3] == ["Shape", "Size", "Texture"]
    assert (averages["Shape"], averages["Size"], averages["Texture"]) == (47.42, 47.40, 47.40)
    assert averages["Shape"] == pytest.approx(round(284.5 / 6, 2)) and averages["Size"] == pytest.approx(284.4 / 6)
    assert {TABLE_5_3.thesis[row]["avg."] for row in ("Shape", "Size", "Texture")} == {47.4}  # as printed
    note = thesis_ranking_note()
    assert "shape 47.42, size 47.40, texture 47.40 (printed avg.: 47.4, 47.4, 47.4)" in note and "L1415" in note


def test_attribute_figure_plots_the_difference_to_the_template_with_its_paired_interval():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    from matplotlib.colors import to_hex

    from seg_pipelines.experiments.attribute_selection import _markdown, annotate_noise, plot_attribute_scores

    def reps(*averages):
        return [{"A": a - 1.0, "B": a + 1.0} for a in averages]

    replicates = {
        "template": reps(20.0, 21.0, 22.0),
        "color": reps(22.0, 23.0, 24.0),  # +2 every fold: beyond noise
        "shape": reps(21.0, 20.5, 22.3),  # +1, -0.5, +0.3: within noise
        "size": reps(17.0, 17.5, 19.5),  # -3, -3.5, -2.5: below
    }
    rows = {name: {b: sum(r[b] for r in values) / 3 for b in ("A", "B")} for name, values in replicates.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["avg."] = table.mean(axis=1)
    annotated = annotate_noise(table, replicates, replicates["template"], "2se")
    assert annotated.at["color", "Δ template"] == pytest.approx(2.0) and annotated.at["color", "Δ low"] > 0
    assert "Δ low" not in _markdown(annotated.reset_index(names="attribute"), "T")  # numbers for the figure only
    figure = plot_attribute_scores(annotated.reset_index(names="attribute"))
    delta_axis = figure.axes[0]
    bars = delta_axis.patches
    assert [round(bar.get_height(), 6) for bar in bars] == [2.0, pytest.approx(0.2667, abs=1e-3), -3.0]
    assert [to_hex(bar.get_facecolor()) for bar in bars] == [
        to_hex("tab:green"),
        to_hex("tab:gray"),
        to_hex("tab:red"),
    ]
    error_bars = [c for c in delta_axis.containers if getattr(c, "has_yerr", False)]
    assert error_bars, "the differences carry their intervals"
    segments = error_bars[0].lines[2][0].get_segments()
    shape_low, shape_high = sorted(point[1] for point in segments[1])
    assert shape_low == pytest.approx(annotated.at["shape", "Δ low"]) and shape_high == pytest.approx(
        annotated.at["shape", "Δ high"]
    )


def test_tables_say_which_columns_are_the_same_and_print_the_difference_once():
    import pandas as pd

    from seg_pipelines.experiments.attribute_selection import _markdown, identical_columns

    table = pd.DataFrame(
        {
            "attribute": ["template", "color"],
            "syn847": [24.5, 23.7],
            "synpc459": [24.5, 23.7],
            "syn150": [19.0, 20.0],
            "avg.": [22.7, 22.5],
            "vs. baseline": [0.0, -0.2],
            "vs. template": ["", "-0.20 [-0.5, 0.1] (2se, n=3)"],
        }
    ).set_index("attribute")
    assert identical_columns(table) == [["syn847", "synpc459"]]
    text = _markdown(table.reset_index(), "T")
    assert "vs. baseline" not in text and "vs. template" in text

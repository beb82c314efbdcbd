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

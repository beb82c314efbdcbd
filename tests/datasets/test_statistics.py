"""Class statistics: frequencies, head/mid/tail groups (Table 4.8) and eq. 4.14 weights."""

import numpy as np
import pandas as pd
import pytest

from seg_pipelines.datasets.statistics import (
    class_weights_from_frequencies,
    compute_class_statistics,
    representative_groups,
)


def _index(counts_per_sample, split="train"):
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(len(counts_per_sample))],
            "split": split,
            "pixel_counts": [list(c) for c in counts_per_sample],
        }
    )


def test_weights_follow_equation_4_14():
    frequencies = np.array([0.5, 0.3, 0.15, 0.05])
    for rho in (0.0, 0.5, 1.0, 2.0):
        weights = class_weights_from_frequencies(frequencies, rho)
        expected = (1 / frequencies) ** rho / ((1 / frequencies) ** rho).sum()
        np.testing.assert_allclose(weights, expected, rtol=1e-12)
        assert weights.sum() == pytest.approx(1.0)
    weights = class_weights_from_frequencies(frequencies, 1.0)
    assert np.all(np.diff(weights) > 0), "rarer classes must get larger weights"
    np.testing.assert_allclose(class_weights_from_frequencies(frequencies, 0.0), 0.25)


def test_zero_frequency_gets_zero_weight_not_infinite():
    weights = class_weights_from_frequencies(np.array([0.9, 0.1, 0.0]), 1.0)
    np.testing.assert_allclose(weights, [0.1, 0.9, 0.0])
    with pytest.raises(ValueError, match="zero"):
        class_weights_from_frequencies(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        class_weights_from_frequencies(np.array([0.5, -0.1]), 1.0)


def test_representative_groups_pick_top_middle_bottom():
    frequencies = np.array([0.30, 0.01, 0.20, 0.0, 0.05, 0.10, 0.02, 0.15, 0.03, 0.04, 0.06, 0.04])
    groups = representative_groups(frequencies, group_size=3)
    # ranked (positive only, 11 classes): 0, 2, 7, 5, 10, 4, 9, 11, 8, 6, 1
    assert set(np.flatnonzero(groups == "head")) == {0, 2, 7}
    assert set(np.flatnonzero(groups == "tail")) == {8, 6, 1}
    assert set(np.flatnonzero(groups == "mid")) == {10, 4, 9}  # ranks 4..6, centred on the median rank 5 of 11
    assert groups[3] == "", "a class without pixels is in no group"
    # fewer classes than 3*group_size: groups shrink to a third each
    small = representative_groups(np.array([0.5, 0.3, 0.2]), group_size=10)
    assert list(small) == ["head", "mid", "tail"]


def test_compute_class_statistics_counts_and_groups():
    counts = [[100, 10, 0, 1], [300, 30, 5, 0], [0, 0, 0, 0]]
    index = pd.concat([_index(counts), _index([[9999, 0, 0, 0]], split="val")])
    table = compute_class_statistics(index, ["sky", "grass", "lime", "coin"], split="train", rho=1.0, group_size=1)
    np.testing.assert_array_equal(table["pixel_count"], [400, 40, 5, 1])
    np.testing.assert_allclose(table["frequency"], np.array([400, 40, 5, 1]) / 446)
    np.testing.assert_array_equal(table["image_count"], [2, 2, 1, 1])
    np.testing.assert_array_equal(table["rank"], [0, 1, 2, 3])
    assert table["group"].tolist() == ["head", "head", "mid", "tail"]
    assert table["table_4_8_group"].tolist() == ["head", "mid", "", "tail"]
    assert table["weight"].sum() == pytest.approx(1.0)
    assert table.loc[3, "weight"] / table.loc[0, "weight"] == pytest.approx(400.0)
    with pytest.raises(ValueError, match="no samples"):
        compute_class_statistics(index, ["a", "b", "c", "d"], split="test")
    with pytest.raises(ValueError, match="class_names"):
        compute_class_statistics(index, ["a", "b"], split="train")

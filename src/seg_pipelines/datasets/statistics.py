"""Class statistics of a prepared split: pixel frequencies, head/mid/tail groups, CE weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUPS = ("head", "mid", "tail")


def class_weights_from_frequencies(frequencies: np.ndarray, rho: float) -> np.ndarray:
    """Eq. 4.14: ``w_c = (1/f_c)^ρ / Σ_k (1/f_k)^ρ``.

    A class with ``f_c = 0`` (never labelled in training) gets weight 0 instead of infinity: it
    never appears as a target, so this only keeps the normalisation finite (the thesis is silent).
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if frequencies.ndim != 1 or frequencies.size == 0:
        raise ValueError("frequencies must be a non-empty 1-D array")
    if (frequencies < 0).any():
        raise ValueError("frequencies must be non-negative")
    present = frequencies > 0
    if not present.any():
        raise ValueError("every class frequency is zero: no labelled pixels")
    inverse = np.zeros_like(frequencies)
    inverse[present] = (1.0 / frequencies[present]) ** rho
    return inverse / inverse.sum()


def representative_groups(frequencies: np.ndarray, group_size: int) -> np.ndarray:
    """Thesis Table 4.8 selection: the ``group_size`` classes with the highest ratio ("head"),
    the ``group_size`` around the median rank ("mid") and the lowest ("tail"); others ``""``.

    Only classes with labelled pixels are ranked. With fewer than 3·group_size such classes, the
    group size shrinks to a third of them.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    ranked = np.flatnonzero(frequencies > 0)
    ranked = ranked[np.argsort(-frequencies[ranked], kind="stable")]
    size = min(group_size, len(ranked) // 3)
    groups = np.full(len(frequencies), "", dtype=object)
    if size == 0:
        return groups
    middle_start = (len(ranked) - size) // 2
    groups[ranked[:size]] = "head"
    groups[ranked[middle_start : middle_start + size]] = "mid"
    groups[ranked[len(ranked) - size :]] = "tail"
    return groups


def compute_class_statistics(
    index: pd.DataFrame,
    class_names: list[str],
    split: str = "train",
    rho: float = 0.5,
    group_size: int = 10,
) -> pd.DataFrame:
    """One row per class: pixel count, frequency ``f_c`` (share of labelled pixels), image count,
    rank, tercile group over all classes, Table 4.8 representative group and eq. 4.14 weight."""
    rows = index[index["split"] == split]
    if rows.empty:
        raise ValueError(f"no samples of split {split!r} in the index")
    counts = np.stack([np.asarray(c, dtype=np.int64) for c in rows["pixel_counts"]])
    if counts.shape[1] != len(class_names):
        raise ValueError(f"index has {counts.shape[1]} classes, class_names {len(class_names)}")
    pixel_count = counts.sum(axis=0)
    frequency = pixel_count / max(int(pixel_count.sum()), 1)
    order = np.argsort(-frequency, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    tercile = np.array(GROUPS)[np.minimum(rank * 3 // len(rank), 2)]
    return pd.DataFrame(
        {
            "class_id": np.arange(len(class_names)),
            "name": class_names,
            "pixel_count": pixel_count,
            "frequency": frequency,
            "image_count": (counts > 0).sum(axis=0),
            "rank": rank,
            "group": tercile,
            "table_4_8_group": representative_groups(frequency, group_size),
            "weight": class_weights_from_frequencies(frequency, rho),
        }
    )

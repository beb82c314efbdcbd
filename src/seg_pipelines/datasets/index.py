"""The prepared index: one validated row per sample (DESIGN.md §5).

Every sample is fully decoded once: image and label must exist, decode, agree in size and hold
only valid class ids, and no two files may map to one sample id. A bad sample (an image without
its label included) raises :class:`DatasetError` naming the file, or — with
``on_bad_sample="skip"`` — is counted, logged and listed in the preparation report.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from seg_pipelines.datasets.base import BadSamplesError, DatasetError, SegmentationReader

logger = logging.getLogger(__name__)

INDEX_COLUMNS = [
    "sample_id",
    "split",
    "image_path",
    "label_path",
    "height",
    "width",
    "classes_present",
    "pixel_counts",
    "ignored_pixels",
]


def index_sample(reader: SegmentationReader, sample) -> dict[str, Any]:
    """Decode and validate one sample; return its index row."""
    image, label = reader.load_pair(sample)
    valid = label != reader.ignore_index
    counts = np.bincount(label[valid].ravel(), minlength=reader.num_classes)
    return {
        "sample_id": sample.sample_id,
        "split": sample.split,
        "image_path": str(sample.image_path),
        "label_path": str(sample.label_path),
        "height": int(image.shape[0]),
        "width": int(image.shape[1]),
        "classes_present": np.flatnonzero(counts).astype(np.int32).tolist(),
        "pixel_counts": counts.astype(np.int64).tolist(),
        "ignored_pixels": int((~valid).sum()),
    }


def build_index(
    reader: SegmentationReader,
    splits: list[str] | tuple[str, ...],
    on_bad_sample: Literal["raise", "skip"] = "raise",
    show_progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Index every sample of ``splits``; return the table and a report of counts and skips."""
    if on_bad_sample not in ("raise", "skip"):
        raise ValueError(f"on_bad_sample must be 'raise' or 'skip', got {on_bad_sample!r}")
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for split in splits:
        try:
            samples = reader.list_samples(split)
        except BadSamplesError as error:  # an image without its label, two files for one sample id
            if on_bad_sample == "raise":
                raise
            samples = error.samples
            skipped += [
                {"sample_id": sample_id, "split": split, "error": message} for sample_id, message in error.problems
            ]
        for sample in tqdm(samples, desc=f"index {reader.family}/{split}", disable=not show_progress):
            try:
                rows.append(index_sample(reader, sample))
            except DatasetError as error:
                if on_bad_sample == "raise":
                    raise
                skipped.append({"sample_id": sample.sample_id, "split": split, "error": str(error)})
        kept = sum(row["split"] == split for row in rows)
        if kept == 0:
            raise DatasetError(f"split {split!r} of {reader.root} has no valid samples after validation")
    if skipped:
        logger.warning("skipped %d bad samples (on_bad_sample='skip'); first: %s", len(skipped), skipped[0]["error"])
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    report = {
        "family": reader.family,
        "root": str(reader.root),
        "num_classes": reader.num_classes,
        "ignore_index": reader.ignore_index,
        "samples_per_split": {split: int((index["split"] == split).sum()) for split in splits},
        "skipped_count": len(skipped),
        "skipped": skipped,
    }
    return index, report

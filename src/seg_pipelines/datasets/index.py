"""The prepared index: one validated row per sample (DESIGN.md §5).

Every sample is fully decoded once: image and label must exist, decode, agree in size and hold
only valid class ids, and no two files may map to one sample id. A bad sample (an image without
its label included) raises :class:`DatasetError` naming the file, or — with
``on_bad_sample="skip"`` — is counted, logged and listed in the preparation report.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
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
    "content_sha256",
]

# what a training or evaluation reads of a sample, besides its files' content: not the absolute
# paths, so a moved or copied project keeps its reuse keys
_DIGEST_COLUMNS = ["sample_id", "split", "height", "width", "pixel_counts", "ignored_pixels", "content_sha256"]


def file_content_digest(*paths: str | Path | None) -> str:
    """sha256 of the bytes of ``paths`` (an image and its label), in order; ``None`` counts as empty."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(b"\x00file\x00")
        if path is not None:
            with open(path, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:32]


def data_digest(index: pd.DataFrame, splits: Iterable[str] | None = None) -> str:
    """A digest of what training or evaluation reads from ``index`` (the rows of ``splits``, default
    all): sample ids, sizes, class pixel counts and the files' content digests. Reuse keys (a finished
    training, a cached ablation result) include it, so a changed dataset is never served a stale model.

    An index written before the ``content_sha256`` column existed is digested from the files themselves."""
    rows = index if splits is None else index[index["split"].isin(list(splits))]
    rows = rows.sort_values(["split", "sample_id"], kind="stable")
    if "content_sha256" not in rows.columns:
        rows = rows.assign(
            content_sha256=[
                file_content_digest(image, label or None)
                for image, label in zip(rows["image_path"], rows["label_path"], strict=True)
            ]
        )
    records = [
        [str(row.sample_id), str(row.split), int(row.height), int(row.width)]
        + [[int(count) for count in row.pixel_counts], int(row.ignored_pixels), str(row.content_sha256)]
        for row in rows[_DIGEST_COLUMNS].itertuples(index=False)
    ]
    return hashlib.sha256(json.dumps(records).encode()).hexdigest()[:32]


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
        "content_sha256": file_content_digest(sample.image_path, sample.label_path),
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

"""Dataset preparation (the ``data_preparation`` pipeline): raw dataset → manifest → validated index →
class statistics (f_c, head/mid/tail, eq. 4.14 weights) → overview figure."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from seg_pipelines.datasets.base import DatasetError
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import build_index
from seg_pipelines.datasets.overview import plot_dataset_overview
from seg_pipelines.datasets.statistics import compute_class_statistics

logger = logging.getLogger(__name__)


def prepare_raw_dataset(dataset: dict[str, Any], synthetic_world: dict[str, Any]) -> dict[str, Any]:
    """Make sure the raw dataset exists and describe it (family, root, classes, ignore value).

    For the ``synthetic`` family the world is rendered into ``dataset.root`` unless a world with the
    same settings is already there (prepared data is reused); a real dataset must already exist.
    """
    family, root = dataset["family"], dataset["root"]
    if family == "synthetic":
        from seg_pipelines.datasets.synthetic import ensure_synthetic_world

        ensure_synthetic_world(root, show_progress=True, **synthetic_world)
    reader = create_reader(family, root, **dataset.get("reader_kwargs", {}))
    manifest = {
        "family": family,
        "root": str(root),
        "reader_kwargs": dict(dataset.get("reader_kwargs", {})),
        "splits": list(dataset["splits"]),
        "class_names": reader.class_names,
        "num_classes": reader.num_classes,
        "ignore_index": reader.ignore_index,
    }
    logger.info("dataset %s at %s: %d classes, ignore %d", family, root, reader.num_classes, reader.ignore_index)
    return manifest


def build_prepared_index(manifest: dict[str, Any], on_bad_sample: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate every sample and index it (see ``seg_pipelines.datasets.index``)."""
    reader = create_reader(manifest["family"], manifest["root"], **manifest["reader_kwargs"])
    return build_index(reader, manifest["splits"], on_bad_sample=on_bad_sample)


def compute_statistics(
    index: pd.DataFrame, manifest: dict[str, Any], statistics: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-class frequencies, head/mid/tail groups and eq. 4.14 weights, plus summary metrics."""
    table = compute_class_statistics(
        index,
        manifest["class_names"],
        split=statistics["split"],
        rho=statistics["rho"],
        group_size=statistics["group_size"],
    )
    frequency = table["frequency"]
    metrics = {
        "dataset.num_classes": float(len(table)),
        "dataset.train_samples": float((index["split"] == statistics["split"]).sum()),
        "dataset.classes_without_pixels": float((frequency == 0).sum()),
        "dataset.head_to_tail_frequency_ratio": float(
            frequency[table["group"] == "head"].mean() / max(frequency[table["group"] == "tail"].mean(), 1e-12)
        ),
        **{
            f"dataset.frequency_share.{g}": float(frequency[table["group"] == g].sum()) for g in ("head", "mid", "tail")
        },
    }
    return table, metrics


def plot_overview(manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame, n_images: int):
    """Grid of label overlays and the class-frequency histogram (the synthetic world's own figure
    also marks unseen concepts)."""
    if manifest["family"] == "synthetic":
        from seg_pipelines.datasets.synthetic import plot_world_overview

        return plot_world_overview(manifest["root"], n_images=n_images)
    reader = create_reader(manifest["family"], manifest["root"], **manifest["reader_kwargs"])
    return plot_dataset_overview(reader, index, class_statistics, n_images=n_images)


def prepared_sample_ids(manifest: dict[str, Any], index: pd.DataFrame, split: str) -> set[str]:
    """The sample ids of ``split`` in the prepared index (after :func:`check_prepared_data`): what a
    training node trains on, so samples the preparation skipped stay out of it too."""
    check_prepared_data(manifest, index)
    ids = {str(sample_id) for sample_id in index.loc[index["split"] == split, "sample_id"]}
    if not ids:
        raise DatasetError(f"prepared_index has no samples of split {split!r} (splits: {sorted(set(index['split']))})")
    return ids


def check_prepared_data(
    manifest: dict[str, Any], index: pd.DataFrame | None = None, class_statistics: pd.DataFrame | None = None
) -> None:
    """Refuse a prepared index or class table that was not built from the dataset ``manifest`` names.

    Each ``data_preparation`` step saves its output when it finishes, so a run that fails half-way
    (or a manifest written by hand) leaves the previous dataset's index and statistics beside the
    new manifest. Training on them would mix two datasets silently; this names the mismatch.
    """
    problems: list[str] = []
    if index is not None and len(index):
        root = Path(manifest["root"]).resolve()
        outside = [p for p in index["image_path"] if not Path(p).resolve().is_relative_to(root)]
        if outside:
            problems.append(
                f"prepared_index lists {len(outside)} of {len(index)} images outside the manifest's root {root} "
                f"(e.g. {outside[0]})"
            )
        missing = sorted(set(manifest["splits"]) - set(index["split"]))
        if missing:
            problems.append(f"prepared_index has no rows of the manifest's splits {missing}")
        widths = {len(counts) for counts in index["pixel_counts"]}
        if widths != {manifest["num_classes"]}:
            problems.append(f"prepared_index counts {sorted(widths)} classes, the manifest {manifest['num_classes']}")
    if class_statistics is not None:
        names = [str(name) for name in class_statistics["name"]]
        if names != [str(name) for name in manifest["class_names"]]:
            problems.append(
                f"class_statistics has {len(names)} classes ({', '.join(names[:3])}, ...), the manifest "
                f"{manifest['num_classes']} ({', '.join(map(str, manifest['class_names'][:3]))}, ...)"
            )
    if problems:
        raise DatasetError(
            f"the prepared data does not belong to the dataset in dataset_manifest ({manifest['family']} at "
            f"{manifest['root']}): " + "; ".join(problems) + ". A data_preparation run probably stopped half-way: "
            "rerun `kedro run --pipelines=data_preparation` (with the same --env/--params) before training."
        )

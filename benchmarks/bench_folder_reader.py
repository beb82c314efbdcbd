"""Benchmark: indexing throughput (images/s through ``build_index``: list, decode, validate, count) of
the ``folder`` reader against the ADE20K-150 reader on the same files, in one run. Prints one JSON object.

An ADE20K tree (``ADEChallengeData2016/{images,annotations}/{training,validation}``, raw 0 = other,
1..150 = classes) is written to a temporary folder; the folder reader reads the very same image and
mask files (``masks: annotations``, ``reduce_zero_label: true``, the 150 names as ``classes.txt``), and
its index must equal the ADE reader's. A third row reads RGB copies of the masks with a 151-colour
palette (``mask_format: rgb``). Each reader is timed ``--repeats`` times, interleaved, best time kept.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_folder_reader.py --n 400 --size 256
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import build_index
from seg_pipelines.datasets.readers import ADE20K_150_CLASSES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import emit_report  # noqa: E402

ADE_SPLITS = {"train": "training", "val": "validation"}


def palette_colours(count: int) -> np.ndarray:
    """``count`` distinct RGB colours (raw id k → colour k)."""
    ids = np.arange(count, dtype=np.int64) * 40503 + 12345  # spread over the 24-bit cube, distinct for < 2^24
    keys = ids % (1 << 24)
    assert len(np.unique(keys)) == count
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)


def write_ade_tree(root: Path, n_images: int, size: tuple[int, int], seed: int) -> Path:
    """An ADE20K-150 tree under ``root`` (80 % training, 20 % validation), RGB mask copies in
    ``annotations_rgb`` and the folder reader's ``classes.txt`` / ``palette.txt``; returns the dataset folder."""
    data = root / "ADEChallengeData2016"
    rng = np.random.default_rng(seed)
    colours = palette_colours(len(ADE20K_150_CLASSES) + 1)
    height, width = size
    for index in range(n_images):
        folder = ADE_SPLITS["train"] if index < int(0.8 * n_images) else ADE_SPLITS["val"]
        stem = f"ADE_{folder[:5]}_{index:08d}"
        # blocky labels (16 px cells) over raw values 0..150, like a scene's regions
        cells = rng.integers(0, len(ADE20K_150_CLASSES) + 1, size=(height // 16 + 1, width // 16 + 1))
        raw = np.kron(cells, np.ones((16, 16), dtype=np.int64))[:height, :width].astype(np.uint8)
        image = (colours[raw].astype(np.int64) + rng.integers(-30, 31, size=(height, width, 3))).clip(0, 255)
        for sub in ("images", "annotations", "annotations_rgb"):
            (data / sub / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(data / "images" / folder / f"{stem}.jpg", quality=90)
        Image.fromarray(raw).save(data / "annotations" / folder / f"{stem}.png")
        Image.fromarray(colours[raw]).save(data / "annotations_rgb" / folder / f"{stem}.png")
    (data / "classes.txt").write_text("\n".join(ADE20K_150_CLASSES) + "\n")
    names = ["other", *ADE20K_150_CLASSES]  # reduce_zero_label: the first colour is raw 0, "other"
    lines = [f"#{r:02x}{g:02x}{b:02x} {name}" for (r, g, b), name in zip(colours, names)]
    (data / "palette.txt").write_text("\n".join(lines) + "\n")
    return data


def time_index(reader, splits: list[str]) -> tuple[float, float, object]:
    """(seconds to list every split, seconds to build the whole index, the index)."""
    start = time.perf_counter()
    for split in splits:
        reader.list_samples(split)
    listed = time.perf_counter() - start
    start = time.perf_counter()
    index, _ = build_index(reader, splits, show_progress=False)
    return listed, time.perf_counter() - start, index


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="images in the tree (80 %% train, 20 %% val)")
    parser.add_argument("--size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temporary:
        data = write_ade_tree(Path(temporary), args.n, tuple(args.size), args.seed)
        folder_common = {"images": "images", "classes": "classes.txt", "reduce_zero_label": True}
        readers = {
            "ade20k_150": (create_reader("ade20k_150", data), ["train", "val"]),
            "folder_ids": (
                create_reader("folder", data, masks="annotations", **folder_common),
                list(ADE_SPLITS.values()),
            ),
            "folder_rgb": (
                create_reader(
                    "folder", data, masks="annotations_rgb", mask_format="rgb", palette="palette.txt", **folder_common
                ),
                list(ADE_SPLITS.values()),
            ),
        }
        best: dict[str, dict[str, float]] = {
            name: {"list_s": float("inf"), "index_s": float("inf")} for name in readers
        }
        indexes = {}
        for _ in range(args.repeats):
            for name, (reader, splits) in readers.items():  # interleaved: contention hits every reader alike
                listed, indexed, indexes[name] = time_index(reader, splits)
                best[name]["list_s"] = min(best[name]["list_s"], listed)
                best[name]["index_s"] = min(best[name]["index_s"], indexed)

    columns = ["height", "width", "classes_present", "pixel_counts", "ignored_pixels"]
    reference = indexes["ade20k_150"][columns].reset_index(drop=True)
    identical = {
        name: bool(indexes[name][columns].reset_index(drop=True).equals(reference))
        for name in ("folder_ids", "folder_rgb")
    }
    rows = {
        name: {
            "list_s": round(times["list_s"], 4),
            "index_s": round(times["index_s"], 4),
            "images_per_s": round(args.n / times["index_s"], 1),
            "listed_images_per_s": round(args.n / times["list_s"], 1),
        }
        for name, times in best.items()
    }
    report = {
        "benchmark": "folder reader indexing throughput vs the ADE20K-150 reader on the same files",
        "images": args.n,
        "size": list(args.size),
        "repeats": args.repeats,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "readers": rows,
        "ratio_folder_ids_over_ade_images_per_s": round(
            best["ade20k_150"]["index_s"] / best["folder_ids"]["index_s"], 3
        ),
        "ratio_folder_rgb_over_ade_images_per_s": round(
            best["ade20k_150"]["index_s"] / best["folder_rgb"]["index_s"], 3
        ),
        "ratio_folder_ids_over_ade_listing": round(best["ade20k_150"]["list_s"] / best["folder_ids"]["list_s"], 3),
        "index_equal_to_ade": identical,
    }
    emit_report(report, None, args.output)
    return report


if __name__ == "__main__":
    main()

"""Thesis-size smoke run: every model at the thesis's size through the project's own code paths, on tiny
fixtures written in the real layouts, random weights; one JSON row per model (``make thesis-smoke``).

Closed-set rows (ADE20K-150 fixture, 512x640 images): ``experiments.closed_set.train_segmentor`` (the
``caa`` / ``ecac`` pipelines' training node: 2 iterations, batch 2, 512² crops, checkpoint written),
the checkpoint reloaded from disk (``weights_only=True``) by ``load_segmentor``, then
``evaluate_segmentor`` in whole and slide (512 / 341) mode. Open-vocabulary rows: CAT-Seg / LSMSeg on
open_clip ViT-B/16 at 384 (LSMSeg: SAM ViT-B, k = 32), trained 2 iterations by
``engine.ovss_training.train_ovss_model`` on a COCO-Stuff-164k fixture (171 classes), saved, reloaded and
evaluated by the ``evaluate`` pipeline's code (``experiments.inference``) on one ADE-847 image with the
CAT-Seg sliding window (384 windows in 640).

Each row runs in its own process, one at a time (peak RSS is that process's); a row whose memory
estimate exceeds what ``/proc/meminfo`` says is available is reported as not run.

    OMP_NUM_THREADS=1 python benchmarks/thesis_smoke.py --rows fcn fcn+caa catseg --output smoke.json
    python benchmarks/thesis_smoke.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEADS = ("fcn", "pspnet", "deeplabv3", "deeplabv3plus", "upernet", "ccnet", "isnet")
CLOSED_SET_ROWS = [f"{head}{addon}" for head in HEADS for addon in ("", "+caa", "+ecac")] + ["fcn@r101"]
OVSS_ROWS = ["catseg", "lsmseg", "lsmseg+sam1024"]
ROWS = CLOSED_SET_ROWS + OVSS_ROWS
#: Memory estimates (GiB) a row needs free before it starts (measured by hand, issue 17).
NEEDS_GIB = {"lsmseg+sam1024": 16.0, "catseg": 12.0, "lsmseg": 11.0}
DEFAULT_NEED_GIB = 8.0
CAA_THESIS = {"channels": 512, "affinity_channels": 256}


def available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def thesis_params(key: str) -> float | None:
    """Decode-head (+ add-on) parameters in M printed by Tables 3.5 / 4.6 (ResNet-50, 150 classes), or the
    whole model's in Table 5.8."""
    from seg_pipelines.engine.thesis_numbers import TABLE_3_5, TABLE_4_6, TABLE_5_8

    for table, column in ((TABLE_3_5, "Params(M)"), (TABLE_4_6, "Params(M)"), (TABLE_5_8, "Params (M)")):
        for row in table["rows"]:
            if row["key"] == key:
                return float(row[column])
    return None


def write_fixtures(workdir: Path) -> dict[str, Path]:
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.fixtures.layouts import write_ade20k_150, write_ade20k_847, write_coco_stuff_164k

    roots = {"ade150": workdir / "ade150", "coco": workdir / "coco", "ade847": workdir / "ade847"}
    if not roots["ade150"].exists():
        write_ade20k_150(roots["ade150"], n_train=2, n_val=1, size=(512, 640))
        write_coco_stuff_164k(roots["coco"], n_train=2, n_val=1, size=(384, 512))
        write_ade20k_847(roots["ade847"], n_train=1, n_val=1, size=(512, 640))
    return roots


def run_closed_set(row: str, workdir: Path, roots: dict[str, Path]) -> dict[str, Any]:
    import torch

    from seg_pipelines.datasets.preparation import build_prepared_index, prepare_raw_dataset
    from seg_pipelines.engine.profiling import count_parameters
    from seg_pipelines.engine.training import save_checkpoint
    from seg_pipelines.experiments.closed_set import (
        closed_set_model_config,
        evaluate_segmentor,
        load_segmentor,
        summarize_per_class,
        train_segmentor,
    )

    name, _, backbone_tag = row.partition("@")
    head, _, addon = name.partition("+")
    backbone = "resnet101c" if backbone_tag == "r101" else "resnet50c"
    manifest = prepare_raw_dataset(
        {"family": "ade20k_150", "root": str(roots["ade150"]), "splits": ["train", "val"]}, {}
    )
    index, _ = build_prepared_index(manifest, "raise")
    config = closed_set_model_config(
        {"head": head, "backbone": backbone, "channels": 512, "aux_channels": 256},
        num_classes=150,
        ignore_index=255,
        addon=addon or None,
        addon_cfg=CAA_THESIS if addon == "caa" else None,
    )
    training = {"iterations": 2, "batch_size": 2, "lr": 0.01, "log_interval": 1, "checkpoint_interval": 2}
    augmentation = {"crop_size": [512, 512], "scale_range": [0.5, 2.0]}
    start = time.perf_counter()
    checkpoint, curve = train_segmentor(
        config, manifest, index, training, augmentation, workdir / "runs", show_progress=False
    )
    train_seconds = time.perf_counter() - start
    path = workdir / f"{row.replace('+', '_').replace('@', '_')}.pt"
    save_checkpoint(path, checkpoint)
    model = load_segmentor(path, num_classes=150)  # weights_only=True
    head_params = count_parameters(model.decode_head) + (count_parameters(model.addon) if model.addon else 0)
    head_params -= sum(p.numel() for p in model.decode_head.conv_seg.parameters()) if model.addon else 0
    result: dict[str, Any] = {
        "row": row,
        "model": f"{head}{'+' + addon.upper() if addon else ''} {backbone}-D8",
        "params_M": count_parameters(model) / 1e6,
        "head_params_M": head_params / 1e6,
        "thesis_head_params_M": thesis_params(f"{head}+{addon}" if addon else head),
        "train_seconds": train_seconds,
        "s_per_iter": train_seconds / 2,
        "losses": [round(r, 4) for r in curve["loss"].tolist()],
        "checkpoint_MB": path.stat().st_size / 2**20,
    }
    for mode, options in (("whole", {}), ("slide", {"crop_size": [512, 512], "stride": [341, 341]})):
        start = time.perf_counter()
        per_class = evaluate_segmentor(
            model, manifest, index, {"split": "val", "mode": mode, "batch_size": 1, **options}, augmentation, False
        )
        result[f"eval_{mode}_seconds"] = time.perf_counter() - start
        result[f"eval_{mode}_mIoU"] = summarize_per_class(per_class)["mIoU"]
    del torch
    return result


def run_ovss(row: str, workdir: Path, roots: dict[str, Path]) -> dict[str, Any]:
    import torch

    from seg_pipelines.datasets.base import Sample  # noqa: F401  (reader API used below)
    from seg_pipelines.datasets.factory import create_reader
    from seg_pipelines.datasets.index import build_index
    from seg_pipelines.datasets.loaders import AugmentationConfig, SegmentationDataset, build_transform
    from seg_pipelines.engine.ovss_training import OVSSTrainConfig, train_ovss_model
    from seg_pipelines.engine.profiling import count_parameters
    from seg_pipelines.engine.training import save_checkpoint
    from seg_pipelines.experiments import inference
    from seg_pipelines.models.registry import create_model

    architecture = "catseg" if row == "catseg" else "lsmseg"
    # CAT-Seg keeps its pad_len of 256 classes per image at inference (without it, 847 classes through the
    # aggregation took 17 GiB and 17 min for one image here); LSMSeg filters to k = 32 (thesis 5.2.5)
    kwargs: dict[str, Any] = {"clip_model": "ViT-B-16", "image_size": 384, "top_k": 256 if row == "catseg" else 32}
    if architecture == "lsmseg":
        kwargs.update(use_sam=True, sam_variant="vit_b", sam_image_size=1024 if row.endswith("sam1024") else 384)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = create_model(architecture, clip_pretrained=None, **kwargs)
    build_seconds = time.perf_counter() - start
    reader = create_reader("coco_stuff_164k", roots["coco"])
    index, _ = build_index(reader, ["train"])
    config = AugmentationConfig(
        crop_size=(384, 384), scale_range=(0.5, 2.0), photometric={}, mean=(0, 0, 0), std=(1, 1, 1)
    )
    dataset = SegmentationDataset(
        index, "train", "coco_stuff_164k", str(roots["coco"]), transform=build_transform(config, 255, train=True)
    )
    tokens = model.clip.tokenize([[f"a photo of a {name}."] for name in reader.class_names])
    start = time.perf_counter()
    curve = train_ovss_model(
        model,
        dataset,
        tokens,
        OVSSTrainConfig(iterations=2, batch_size=2, log_interval=1, checkpoint_interval=2),
        ignore_index=255,
        checkpoint_dir=workdir / f"{row}_training",
        show_progress=False,
    )
    train_seconds = time.perf_counter() - start
    path = workdir / f"{row}.pt"
    save_checkpoint(
        path, {"model": model.state_dict(), "model_config": {"architecture": architecture, "kwargs": kwargs}}
    )
    del model
    start = time.perf_counter()
    loaded = inference.load_inference_model({"checkpoint": str(path)})  # weights_only=True
    params = {
        "dataset": {"family": "ade20k_847", "root": str(roots["ade847"]), "split": "val"},
        "mode": "slide",
        "crop_size": 384,
        "output_size": 640,
        "limit": 1,
        "show_progress": False,
    }
    _, metrics, _ = inference.evaluate_checkpoint(loaded, params)
    eval_seconds = time.perf_counter() - start
    return {
        "row": row,
        "model": f"{architecture} ViT-B/16@384"
        + (f" + SAM ViT-B@{kwargs['sam_image_size']}" if architecture == "lsmseg" else ""),
        "params_M": count_parameters(loaded.module) / 1e6,
        "thesis_params_M": thesis_params(architecture),
        "train_classes": reader.num_classes,
        "eval_classes": 847,
        "top_k": kwargs["top_k"],
        "build_seconds": build_seconds,
        "train_seconds": train_seconds,
        "s_per_iter": train_seconds / 2,
        "losses": [round(r["loss"], 4) for r in curve],
        "eval_one_image_seconds": eval_seconds,
        "eval_mIoU": metrics["evaluate"]["mIoU"],
        "eval_classes_counted": metrics["evaluate"]["classes_counted"],
        "checkpoint_MB": path.stat().st_size / 2**20,
    }


def run_row_here(row: str, workdir: Path) -> dict[str, Any]:
    roots = write_fixtures(workdir)
    start = time.perf_counter()
    try:
        result = (run_ovss if row in OVSS_ROWS else run_closed_set)(row, workdir, roots)
        result["status"] = "ok"
    except Exception as error:  # reported in the row; the next row still runs
        import traceback

        result = {"row": row, "status": "failed", "error": f"{type(error).__name__}: {error}"}
        result["trace"] = traceback.format_exc()[-3000:]
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    return result


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=ROWS, help=f"rows to run (default all): {ROWS}")
    parser.add_argument("--workdir", default=str(PROJECT_ROOT / "data/09_thesis_smoke"))
    parser.add_argument("--output", default=None)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--one-row", default=None, help=argparse.SUPPRESS)  # internal: run one row here
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(ROWS))
        return []
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.one_row:
        print("ROW " + json.dumps(run_row_here(args.one_row, workdir)), flush=True)
        return []
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {ROWS}")
    results: list[dict[str, Any]] = []
    for row in args.rows:
        need, free = NEEDS_GIB.get(row, DEFAULT_NEED_GIB), available_gib()
        if free < need:
            results.append({"row": row, "status": "not run", "reason": f"needs ~{need} GiB, {free:.1f} GiB available"})
        else:
            command = [sys.executable, __file__, "--one-row", row, "--workdir", str(workdir)]
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(PROJECT_ROOT / "src"))},
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("ROW ")]
            results.append(
                json.loads(lines[-1][4:]) if lines else {"row": row, "status": "failed", "error": done.stderr[-3000:]}
            )
        print(json.dumps(results[-1]), flush=True)
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if all(r.get("status") in ("ok", "not run") for r in rows) else 1)

"""What LSMSeg's frozen SAM branch costs: time and peak memory with the pretrained tiny SAMs vs without SAM.

LSMSeg as the ``lsmseg`` pipeline builds it (``conf/base/parameters_lsmseg.yml``: tiny CLIP at 64 px, the
head, k = 16) in three variants: ``use_sam: false`` (the baseline of the ratios), ``sam_variant: tiny``
(SAM-B stand-in) and ``sam_variant: tiny_l`` (SAM-L stand-in), the SAM weights loaded from the catalog's
``tiny_sam_checkpoint`` / ``tiny_sam_l_checkpoint`` through the pipeline's own builder
(``experiments.lsmseg.build_ovss_model``; random weights where sam_pretraining has not run: same cost).
Two phases per variant:

* ``train``: one training step as ``engine.ovss_training`` takes it (forward on a batch at the crop size
  against the training vocabulary's prompt tokens, per-pixel BCE on the kept classes, backward, AdamW);
* ``eval``: one evaluation forward (no grad) of a batch at the crop size against given text embeddings.

Peak memory: each (variant, phase) in a fresh subprocess, the growth of the process's resident set to its
peak over its first step (Linux: the high-water mark ``VmHWM`` reset to ``VmRSS`` just before the step;
CPU tensors are not seen by ``tracemalloc``; a fresh process keeps one variant's allocations from hiding
another's; glibc is told to map large blocks, so the resident set follows the live tensors).
Time: per phase one subprocess builds the three variants and times their steps interleaved, round by
round (``--repeats`` rounds after a warm-up), the median per variant, so a change of load on the
machine falls on the baseline and the SAM variants alike.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_lsmseg_sam.py [--repeats 15]

Prints one JSON object: per phase and variant, seconds and peak MiB, and each SAM variant's ratios to
``no_sam`` (``time_ratio``, ``peak_memory_ratio``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _project import add_project_arguments, emit_report, load_parameters  # noqa: E402

VARIANTS = ("no_sam", "tiny", "tiny_l")
PHASES = ("train", "eval")
CHECKPOINTS = {"tiny": "tiny_sam_checkpoint", "tiny_l": "tiny_sam_l_checkpoint"}  # catalog entries
# glibc malloc: blocks over 64 KiB are mapped on allocation and unmapped on free, so the resident set follows
# the live tensors (memory freed while building the model is not reused unseen by the step's peak)
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_ARENA_MAX": "1"}


def sam_weights(project: Path) -> dict[str, str]:
    """The catalog's tiny SAM checkpoints that exist (variant → path)."""
    catalog = yaml.safe_load((project / "conf/base/catalog_sam_pretraining.yml").read_text())
    paths = {variant: project / catalog[entry]["filepath"] for variant, entry in CHECKPOINTS.items()}
    return {variant: str(path) for variant, path in paths.items() if path.is_file()}


def variant_params(params: dict, variant: str) -> dict:
    """``params:lsmseg`` with ``models.lsmseg`` set to ``variant`` (no SAM, tiny or tiny_l)."""
    spec = {**params["models"]["lsmseg"]}
    if variant == "no_sam":
        spec["use_sam"] = False
    else:
        spec.update(use_sam=True, sam_variant=variant)
        spec.pop("sam_checkpoint", None)
    return {**params, "models": {**params["models"], "lsmseg": spec}}


def make_step(project: Path, env: str, variant: str, phase: str, classes: int) -> tuple[Callable[[], None], dict]:
    """One ``phase`` step (``train`` | ``eval``) of LSMSeg ``variant`` on fixed random data, and what it ran."""
    import torch

    from seg_pipelines.engine.ovss_training import OVSSTrainConfig, masked_per_pixel_bce, ovss_parameter_groups
    from seg_pipelines.experiments.lsmseg import build_ovss_model

    torch.set_num_threads(1)
    params = variant_params(load_parameters(project, env)["lsmseg"], variant)
    model = build_ovss_model(params, "lsmseg", None, sam_weights(project))
    side = int(params["augmentation"]["crop_size"][0])
    generator = torch.Generator().manual_seed(0)
    if phase == "train":
        config = OVSSTrainConfig(**{k: v for k, v in params["training"].items() if k != "checkpoint_seconds"})
        images = torch.rand(config.batch_size, 3, side, side, generator=generator)
        labels = torch.randint(0, classes, (config.batch_size, side, side), generator=generator)
        tokens = model.clip.tokenize([[f"a photo of a class {index}."] for index in range(classes)])
        optimizer = torch.optim.AdamW(ovss_parameter_groups(model, config), lr=config.lr, foreach=config.foreach)
        model.train()

        def step() -> None:
            outputs = model(images, text_tokens=tokens)
            loss = masked_per_pixel_bce(outputs["logits"], labels, outputs["class_indices"], 255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    else:
        images = torch.rand(int(params["evaluation"]["batch_size"]), 3, side, side, generator=generator)
        text = torch.randn(classes, 1, model.clip.embed_dim, generator=generator)
        model.eval()

        def step() -> None:
            with torch.no_grad():
                model(images, text)

    sam = getattr(model, "sam", None)
    info = {
        "sam_parameters": sum(p.numel() for p in sam.parameters()) if sam is not None else 0,
        "sam_image_size": sam.image_size if sam is not None else None,
        "sam_pretrained": sam is not None and variant in sam_weights(project),
        "batch": len(images),
        "image_size": side,
    }
    return step, info


def _status_kib(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process (Linux ``/proc/self/status``), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_memory(project: Path, env: str, variant: str, phase: str, classes: int) -> dict:
    """Peak resident-set growth over the first step of a fresh process (this one): the high-water mark is
    reset to the current resident set just before the step (``/proc/self/clear_refs``), so what building
    the model or loading its checkpoint held before is not counted and does not hide the step's peak."""
    step, info = make_step(project, env, variant, phase, classes)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before_kib = _status_kib("VmRSS")
    step()
    peak_kib = _status_kib("VmHWM")
    return {"peak_mib": (peak_kib - before_kib) / 1024, "peak_rss_mib": peak_kib / 1024, **info}


def measure_time(project: Path, env: str, phase: str, repeats: int, classes: int) -> dict[str, float]:
    """Median seconds per step of every variant, the variants' steps interleaved round by round (a load
    change on the machine falls on all of them alike)."""
    steps = {variant: make_step(project, env, variant, phase, classes)[0] for variant in VARIANTS}
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(repeats):
        for variant, step in steps.items():
            start = time.perf_counter()
            step()
            times[variant].append(time.perf_counter() - start)
    return {variant: sorted(values)[len(values) // 2] for variant, values in times.items()}


def _child(command: list[str]) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, *command], check=True, capture_output=True, text=True, env=CHILD_ENV
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_arguments(parser)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--classes", type=int, default=50, help="vocabulary size (50: the seen classes)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    project = Path(args.project)
    if args.child:
        if args.child[0] == "memory":
            print(json.dumps(measure_memory(project, args.env, args.child[1], args.child[2], args.classes)))
        else:
            print(json.dumps(measure_time(project, args.env, args.child[1], args.repeats, args.classes)))
        return

    start = time.perf_counter()
    report: dict = {"benchmark": "lsmseg_sam", "device": "cpu", "threads": 1, "classes": args.classes, "phases": {}}
    common = ["--project", str(project), "--env", args.env, "--repeats", str(args.repeats)]
    common += ["--classes", str(args.classes)]
    for phase in PHASES:
        seconds = _child(["--child", "time", phase, *common])
        rows: dict[str, dict] = {}
        for variant in VARIANTS:
            measured = {"seconds": seconds[variant], **_child(["--child", "memory", variant, phase, *common])}
            rows[variant] = {k: round(v, 4) if isinstance(v, float) else v for k, v in measured.items()}
        for variant in VARIANTS[1:]:
            rows[variant]["time_ratio"] = round(rows[variant]["seconds"] / rows["no_sam"]["seconds"], 3)
            rows[variant]["peak_memory_ratio"] = round(rows[variant]["peak_mib"] / rows["no_sam"]["peak_mib"], 3)
        report["phases"][phase] = rows
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    emit_report(report, None, args.output)


if __name__ == "__main__":
    main()

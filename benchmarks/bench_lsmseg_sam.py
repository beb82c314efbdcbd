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

Each (variant, phase) runs in a fresh subprocess: its peak memory is the growth of the process's peak
resident set (``ru_maxrss``) over the first step (CPU tensors are not seen by ``tracemalloc``; a fresh
process keeps one variant's allocations from hiding another's), its time the median of ``--repeats``
further steps.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_lsmseg_sam.py [--repeats 5]

Prints one JSON object: per phase and variant, seconds and peak MiB, and each SAM variant's ratios to
``no_sam`` (``time_ratio``, ``peak_memory_ratio``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _project import add_project_arguments, load_parameters  # noqa: E402

VARIANTS = ("no_sam", "tiny", "tiny_l")
PHASES = ("train", "eval")
CHECKPOINTS = {"tiny": "tiny_sam_checkpoint", "tiny_l": "tiny_sam_l_checkpoint"}  # catalog entries


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


def run_phase(project: Path, env: str, variant: str, phase: str, repeats: int, classes: int) -> dict[str, float]:
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

    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    sam = getattr(model, "sam", None)
    return {
        "seconds": sorted(times)[len(times) // 2],
        "peak_mib": (peak_kib - before_kib) / 1024,
        "peak_rss_mib": peak_kib / 1024,
        "sam_parameters": sum(p.numel() for p in sam.parameters()) if sam is not None else 0,
        "sam_pretrained": variant in sam_weights(project),
        "batch": len(images),
        "image_size": side,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--classes", type=int, default=50, help="vocabulary size (50: the seen classes)")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PHASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    project = Path(args.project)
    if args.child:
        measured = run_phase(project, args.env, args.child[0], args.child[1], args.repeats, args.classes)
        print(json.dumps(measured))
        return

    start = time.perf_counter()
    report: dict = {"benchmark": "lsmseg_sam", "device": "cpu", "threads": 1, "classes": args.classes, "phases": {}}
    for phase in PHASES:
        rows: dict[str, dict] = {}
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--child", variant, phase, "--project", str(project)]
            command += ["--env", args.env, "--repeats", str(args.repeats), "--classes", str(args.classes)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            measured = json.loads(output.strip().splitlines()[-1])
            rows[variant] = {k: round(v, 4) if isinstance(v, float) else v for k, v in measured.items()}
        for variant in VARIANTS[1:]:
            rows[variant]["time_ratio"] = round(rows[variant]["seconds"] / max(rows["no_sam"]["seconds"], 1e-9), 3)
            rows[variant]["peak_memory_ratio"] = round(
                rows[variant]["peak_mib"] / max(rows["no_sam"]["peak_mib"], 1e-9), 3
            )
        report["phases"][phase] = rows
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()

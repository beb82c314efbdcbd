"""GPU check: the CUDA path end to end in one command (``make gpu-check``), JSON out, under 5 minutes.

    python benchmarks/gpu_check.py                       # CUDA, thesis sizes
    python benchmarks/gpu_check.py --device cpu --size tiny --skip compile   # the CPU-testable parts

Checks, each reported as ``{"status": "ok" | "failed" | "skipped", "seconds", ...}`` (a failure is
recorded with its error and the script goes on):

* ``amp_bf16``: two training iterations of FCN+CAA through ``engine.training.train`` with
  ``amp_dtype: bfloat16``; finite losses, weights changed.
* ``channels_last``: the model in ``channels_last`` gives the contiguous model's logits (fp32, rtol
  1e-3) and its latency is reported next to contiguous.
* ``torch_compile``: ``torch.compile(model)`` gives eager's logits; compile time and steady latency.
* ``ddp_syncbn``: a one-process group (nccl on CUDA, gloo on CPU), BatchNorm → SyncBatchNorm, DDP,
  two iterations through ``engine.training.train`` (which converts to SyncBN itself on CUDA).
* ``latency``: FCN+CAA ResNet-50-D8 at 512² (thesis Table 3.6: 68.6 ms/image, Pascal-Context) and
  LSMSeg ViT-B/16 + SAM ViT-B at 640 with CAT-Seg's 384-px sliding windows, k = 32 of 459 classes
  (thesis Table 5.8: 362.8 ms, L40), bf16 autocast on CUDA; ratio ours/thesis.

``--size tiny`` swaps in the test-size models (``resnet_tiny``, tiny CLIP and SAM) so CI can run the
script on a CPU; the numbers are then only a smoke test. Random weights (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from seg_pipelines.engine.ovss_evaluation import predict_catseg_slide
from seg_pipelines.engine.profiling import count_parameters, measure_latency
from seg_pipelines.engine.training import TrainConfig, train
from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config
from seg_pipelines.thesis_tables import TABLE_3_6, TABLE_5_8, EfficiencyTable

CHECKS = ("amp_bf16", "channels_last", "torch_compile", "ddp_syncbn", "latency")
SCHEMA_VERSION = 1


def thesis_value(table: EfficiencyTable, key: str, column: str) -> float:
    return float(table.reference()[key][column])


SIZES: dict[str, dict[str, Any]] = {
    "thesis": {
        "closed_set": {"head": "fcn", "backbone": "resnet50c", "channels": 512, "aux_channels": 256},
        "caa": {"channels": 512, "affinity_channels": 256},
        "num_classes": 60,  # Pascal-Context-59 + background, the Table 3.6 setting
        "image": 512,
        "batch": 2,
        "ovss": {"clip_model": "ViT-B-16", "image_size": 384, "sam_variant": "vit_b", "top_k": 32},
        "ovss_classes": 459,  # PC-459, the Table 5.8 setting
        "ovss_image": 640,
        "ovss_window": 384,
    },
    "tiny": {
        "closed_set": {"head": "fcn", "backbone": "resnet_tiny", "channels": 16, "aux_channels": 8},
        "caa": {"channels": 8, "affinity_channels": 4},
        "num_classes": 6,
        "image": 64,
        "batch": 2,
        "ovss": {
            "clip_model": "TinyCLIP-ViT-8-96",
            "image_size": 64,
            "sam_variant": "tiny",
            "top_k": 4,
            "hidden_dim": 32,
            "appearance_guidance_dim": 16,
            "text_guidance_dim": 16,
            "decoder_channels": [16, 16],
            "decoder_guidance_dims": [8, 8],
            "num_heads": 2,
            "window_size": 4,
            "pooling_size": 2,
        },
        "ovss_classes": 12,
        "ovss_image": 96,
        "ovss_window": 64,
    },
}


class RandomSegmentation(torch.utils.data.Dataset):
    """Random images and labels, a stand-in dataset for the training checks."""

    def __init__(self, count: int, size: int, num_classes: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(count, 3, size, size, generator=generator)
        self.labels = torch.randint(0, num_classes, (count, size, size), generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index], "label": self.labels[index]}


def closed_set_model(size: dict[str, Any], device: torch.device) -> nn.Module:
    config = closed_set_model_config(size["closed_set"], num_classes=size["num_classes"], ignore_index=255, addon="caa")
    config["addon_cfg"].update(size["caa"])
    torch.manual_seed(0)
    return build_segmentor(config).to(device)


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _train_two_iterations(model: nn.Module, size: dict[str, Any], amp_dtype: str | None) -> list[dict[str, float]]:
    dataset = RandomSegmentation(2 * size["batch"], size["image"], size["num_classes"])
    config = TrainConfig(
        iterations=2, batch_size=size["batch"], log_interval=1, checkpoint_interval=2, amp_dtype=amp_dtype
    )
    return train(model, dataset, config, show_progress=False)


def check_amp_bf16(size: dict[str, Any], device: torch.device) -> dict[str, Any]:
    model = closed_set_model(size, device)
    before = [p.detach().clone() for p in model.parameters()]
    curve = _train_two_iterations(model, size, "bfloat16")
    changed = any(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))
    losses = [row["loss"] for row in curve]
    ok = all(torch.isfinite(torch.tensor(losses))) and changed
    return {"status": "ok" if ok else "failed", "losses": losses, "weights_changed": changed}


@torch.no_grad()
def check_channels_last(size: dict[str, Any], device: torch.device) -> dict[str, Any]:
    model = closed_set_model(size, device).eval()
    images = torch.randn(1, 3, size["image"], size["image"], device=device)
    reference = model(images)["logits"]
    contiguous_ms = 1000 * measure_latency(model, images, warmup=1, iterations=3, synchronize=synchronizer(device))
    model = model.to(memory_format=torch.channels_last)
    images_cl = images.contiguous(memory_format=torch.channels_last)
    logits = model(images_cl)["logits"]
    last_ms = 1000 * measure_latency(model, images_cl, warmup=1, iterations=3, synchronize=synchronizer(device))
    error = float((logits - reference).abs().max() / reference.abs().max().clamp_min(1e-12))
    return {
        "status": "ok" if error < 1e-3 else "failed",
        "max_relative_error": error,
        "contiguous_ms": contiguous_ms,
        "channels_last_ms": last_ms,
        "speedup": contiguous_ms / last_ms,
    }


@torch.no_grad()
def check_torch_compile(size: dict[str, Any], device: torch.device) -> dict[str, Any]:
    model = closed_set_model(size, device).eval()
    images = torch.randn(1, 3, size["image"], size["image"], device=device)
    reference = model(images)["logits"]
    eager_ms = 1000 * measure_latency(model, images, warmup=1, iterations=3, synchronize=synchronizer(device))
    compiled = torch.compile(model)
    start = time.perf_counter()
    logits = compiled(images)["logits"]
    synchronizer(device)()
    compile_s = time.perf_counter() - start
    compiled_ms = 1000 * measure_latency(compiled, images, warmup=1, iterations=3, synchronize=synchronizer(device))
    error = float((logits - reference).abs().max() / reference.abs().max().clamp_min(1e-12))
    return {
        "status": "ok" if error < 1e-2 else "failed",
        "max_relative_error": error,
        "compile_seconds": compile_s,
        "eager_ms": eager_ms,
        "compiled_ms": compiled_ms,
        "speedup": eager_ms / compiled_ms,
    }


def check_ddp_syncbn(size: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """World size 1: nccl on CUDA, gloo on CPU. SyncBN conversion is checked explicitly (and one
    forward/backward through the converted model); then ``engine.training.train`` runs under DDP."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    own_group = not dist.is_initialized()
    if own_group:
        with tempfile.NamedTemporaryFile(delete=False) as handle:
            store = handle.name
        os.remove(store)
        dist.init_process_group(backend, init_method=f"file://{store}", rank=0, world_size=1)
    try:
        model = closed_set_model(size, device)
        batch_norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        sync_norms = sum(isinstance(m, nn.SyncBatchNorm) for m in converted.modules())
        same_keys = set(converted.state_dict()) == set(closed_set_model(size, device).state_dict())
        grads: bool | str = "not on CPU: PyTorch's SyncBatchNorm has no CPU kernel (gloo runs keep BatchNorm)"
        if device.type == "cuda":  # the converted model, DDP-wrapped, one forward/backward
            wrapped = nn.parallel.DistributedDataParallel(converted, device_ids=[device.index or 0])
            batch = RandomSegmentation(size["batch"], size["image"], size["num_classes"])[0]
            images = batch["image"][None].repeat(size["batch"], 1, 1, 1).to(device)
            labels = batch["label"][None].repeat(size["batch"], 1, 1).to(device)
            converted.losses(wrapped(images, labels), labels)["loss"].backward()
            grads = all(p.grad is not None for p in converted.backbone.parameters() if p.requires_grad)
        curve = _train_two_iterations(closed_set_model(size, device), size, None)
        ok = (
            sync_norms == batch_norms > 0
            and same_keys
            and grads is not False
            and all(torch.isfinite(torch.tensor([r["loss"] for r in curve])))
        )
        return {
            "status": "ok" if ok else "failed",
            "backend": backend,
            "world_size": dist.get_world_size(),
            "batch_norms": batch_norms,
            "sync_batch_norms": sync_norms,
            "state_dict_keys_unchanged": same_keys,
            "syncbn_forward_backward": grads,
            "ddp_wrapped_syncbn": device.type == "cuda",
            "train_losses": [row["loss"] for row in curve],
        }
    finally:
        if own_group:
            dist.destroy_process_group()


def check_latency(size: dict[str, Any], device: torch.device) -> dict[str, Any]:
    from seg_pipelines.models.factory import create_model

    sync = synchronizer(device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    results: dict[str, Any] = {"status": "ok", "autocast": "bfloat16" if device.type == "cuda" else None}
    model = closed_set_model(size, device).eval()
    images = torch.randn(1, 3, size["image"], size["image"], device=device)
    with torch.no_grad(), amp:
        ms = 1000 * measure_latency(model, images, warmup=2, iterations=5, synchronize=sync)
    thesis = thesis_value(TABLE_3_6, "fcn+caa", "Inference(ms/p)")
    results["fcn_caa_r50"] = {
        "image": size["image"],
        "params_M": count_parameters(model) / 1e6,
        "ms": ms,
        "thesis_ms": thesis,
        "ratio_to_thesis": ms / thesis,
    }
    del model
    torch.manual_seed(0)
    ovss = create_model("lsmseg", clip_pretrained=None, **size["ovss"]).to(device).eval()
    text = torch.nn.functional.normalize(
        torch.randn(size["ovss_classes"], 1, ovss.clip.embed_dim, device=device), dim=-1
    )
    image = torch.rand(1, 3, size["ovss_image"], size["ovss_image"], device=device)

    def infer(x: torch.Tensor) -> torch.Tensor:
        return predict_catseg_slide(
            lambda crop: ovss(crop, text)["logits"], x, window=size["ovss_window"], output_size=size["ovss_image"]
        )

    class Slide(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return infer(x)

    with torch.no_grad(), amp:
        ms = 1000 * measure_latency(Slide(), image, warmup=1, iterations=3, synchronize=sync)
    thesis = thesis_value(TABLE_5_8, "lsmseg", "Latency (ms)")
    results["lsmseg_vit_b"] = {
        "image": size["ovss_image"],
        "window": size["ovss_window"],
        "classes": size["ovss_classes"],
        "top_k": size["ovss"]["top_k"],
        "params_M": count_parameters(ovss) / 1e6,
        "thesis_params_M": thesis_value(TABLE_5_8, "lsmseg", "Params (M)"),
        "ms": ms,
        "thesis_ms": thesis,
        "ratio_to_thesis": ms / thesis,
    }
    return results


CHECK_FUNCTIONS = {
    "amp_bf16": check_amp_bf16,
    "channels_last": check_channels_last,
    "torch_compile": check_torch_compile,
    "ddp_syncbn": check_ddp_syncbn,
    "latency": check_latency,
}


def run_checks(device_name: str, size_name: str, skip: list[str], budget_s: float) -> dict[str, Any]:
    """Every check of :data:`CHECKS` (those in ``skip`` or past ``budget_s`` are ``skipped``)."""
    device = torch.device(device_name)
    size = SIZES[size_name]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "device": device_name,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "bf16_supported": bool(torch.cuda.is_bf16_supported()) if device.type == "cuda" else True,
        "size": size_name,
        "threads": torch.get_num_threads(),
        "checks": {},
    }
    start = time.perf_counter()
    for name in CHECKS:
        if name in skip or time.perf_counter() - start > budget_s:
            reason = "--skip" if name in skip else f"time budget of {budget_s:.0f} s spent"
            report["checks"][name] = {"status": "skipped", "reason": reason, "seconds": 0.0}
            continue
        began = time.perf_counter()
        try:
            result = CHECK_FUNCTIONS[name](size, device)
        except Exception as error:  # recorded; the other checks still run
            result = {
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "trace": traceback.format_exc()[-2000:],
            }
        result["seconds"] = time.perf_counter() - began
        report["checks"][name] = result
        if device.type == "cuda":
            result["peak_memory_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
            torch.cuda.reset_peak_memory_stats(device)
            torch.cuda.empty_cache()
    report["seconds"] = time.perf_counter() - start
    report["ok"] = all(c["status"] in ("ok", "skipped") for c in report["checks"].values())
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=sorted(SIZES), default="thesis")
    parser.add_argument("--skip", nargs="*", default=[], choices=CHECKS)
    parser.add_argument("--budget-s", type=float, default=270.0, help="skip the remaining checks after this")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device: use --device cpu (and --size tiny) for the CPU-testable parts")
    report = run_checks(args.device, args.size, list(args.skip), args.budget_s)
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)

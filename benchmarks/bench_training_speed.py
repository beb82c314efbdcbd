"""Training speed of the default steps, before vs after the issue-15 settings, in one process.

Steps (random inputs of the default sizes, conf/base): the closed-set default (FCN, resnet_tiny,
96 px, batch 8), +CAA, +ECAC; the CAT-Seg and LSMSeg steps of ``params:lsmseg`` (AdamW, per-pixel
BCE against the training vocabulary's prompts); the CLIP pretraining step (tiny CLIP, image-caption
contrastive loss, AdamW). Each is timed under

* ``before``: the settings of the commits before issue 15 (contiguous NCHW, the optimiser's
  per-tensor loop, fp32);
* ``after``: the new defaults (``channels_last`` for the convolutional steps, ``foreach``
  optimiser updates, bf16 autocast only where the CPU has AMX: ``engine.training.resolve_amp_dtype``);

interleaved round robin (several rounds, median), so machine load hits both alike. Reported per step:
it/s, the step's FLOPs (``torch.utils.flop_counter``, forward + backward) and GFLOP/s as a fraction of
the fp32 matmul rate measured in the same process (``peak``). With ``--run-iterations N`` (needs the
prepared synthetic world, ``kedro run --pipelines=data_preparation``) it also trains the default
closed-set FCN for N iterations with the real data path twice, the old way (decode per access,
checkpoint every 50 iterations, NCHW, per-tensor SGD) and the new way (in-memory decode, wall-clock
checkpoints, channels_last, foreach), plus one evaluation each, and reports the wall time of each
and their ratio (extrapolated to the default 800 iterations as ``estimated_default_run_s``).

    OMP_NUM_THREADS=1 python benchmarks/bench_training_speed.py [--rounds 5] [--run-iterations 100]

Prints one JSON object. Times are ratios against the same process's numbers; the machine may be
shared (state the load when quoting them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

from seg_pipelines.engine.training import cpu_has_amx, resolve_amp_dtype
from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _project import matmul_peak_gflops  # noqa: E402

CONF = ROOT / "conf/base"


def _yaml(name: str) -> dict:
    return yaml.safe_load((CONF / name).read_text())


class Step:
    """One training step of a model: ``run()`` does forward, loss, backward and the optimiser step."""

    def __init__(self, name: str, build: Callable[[bool], tuple], channels_last: bool) -> None:
        self.name, self.build, self.channels_last_capable = name, build, channels_last
        self.variants = {}

    def make(self, mode: str) -> Callable[[], None]:
        after = mode == "after"
        model, optimizer, loss_fn, inputs = self.build(after)
        channels_last = after and self.channels_last_capable
        if channels_last:
            model.to(memory_format=torch.channels_last)
            inputs = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs]
        dtype = resolve_amp_dtype("auto", torch.device("cpu")) if after else None

        def run() -> None:
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model, *inputs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return run


def closed_set_step(addon: str | None, num_classes: int = 60) -> Callable[[bool], tuple]:
    shared = _yaml("parameters_closed_set.yml")["_closed_set"]
    cfg = {
        "caa": _yaml("parameters_caa.yml")["caa"]["addon"]["cfg"],
        "ecac": dict(_yaml("parameters_ecac.yml")["ecac"]["addon"]["cfg"]),
    }.get(addon)
    if addon == "ecac":
        cfg = {**cfg, "memory_loss_start_iter": 0, "class_weights": [1.0 / num_classes] * num_classes}
    crop = shared["augmentation"]["crop_size"]
    batch = shared["training"]["batch_size"]

    def build(after: bool) -> tuple:
        config = closed_set_model_config(
            shared["model"], num_classes=num_classes, ignore_index=255, addon=addon, addon_cfg=cfg
        )
        torch.manual_seed(0)
        model = build_segmentor(config).train()
        optimizer = torch.optim.SGD(
            model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, foreach=True if after else None
        )
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(batch, 3, *crop, generator=generator)
        coarse = torch.randint(0, num_classes, (batch, 1, crop[0] // 12, crop[1] // 12), generator=generator)
        labels = F.interpolate(coarse.float(), size=tuple(crop), mode="nearest")[:, 0].long()

        def loss(model, images, labels):
            return model.losses(model(images, labels), labels)["loss"]

        return model, optimizer, loss, [images, labels]

    return build


def ovss_step(key: str, num_classes: int = 50) -> Callable[[bool], tuple]:
    from seg_pipelines.engine.ovss_training import masked_per_pixel_bce
    from seg_pipelines.models.factory import create_model

    params = _yaml("parameters_lsmseg.yml")["lsmseg"]
    training = params["training"]
    crop = params["augmentation"]["crop_size"]

    def build(after: bool) -> tuple:
        spec = dict(params["models"][key])
        name = spec.pop("architecture")
        torch.manual_seed(0)
        model = create_model(
            name,
            clip_model=params["clip"]["model"],
            clip_pretrained=None,
            image_size=params["clip"]["image_size"],
            **params["head"],
            **spec,
        ).train()
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=float(training["lr"]),
            weight_decay=float(training.get("weight_decay", 1e-4)),
            foreach=True if after else None,
        )
        tokens = model.clip.tokenize([[f"a photo of a class{i}."] for i in range(num_classes)])
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(int(training["batch_size"]), 3, *crop, generator=generator)
        labels = torch.randint(0, num_classes, (images.shape[0], *crop), generator=generator)

        def loss(model, images, labels):
            outputs = model(images, text_tokens=tokens)
            return masked_per_pixel_bce(outputs["logits"], labels, outputs.get("class_indices"), 255)

        return model, optimizer, loss, [images, labels]

    return build


def clip_step() -> Callable[[bool], tuple]:
    from seg_pipelines.experiments.clip_pretraining import ClipPretrainingConfig, _tokenizer, clip_contrastive_loss
    from seg_pipelines.models.ovss.clip import encode_text_trimmed, load_clip

    block = _yaml("parameters_clip_pretraining.yml").get("clip_pretraining", {})
    config = ClipPretrainingConfig()
    image_size = int((block.get("training") or block).get("image_size", config.image_size))
    batch = int((block.get("training") or block).get("batch_size", config.batch_size))

    def build(after: bool) -> tuple:
        torch.manual_seed(0)
        model = load_clip(config.model_name, None, image_size=image_size).train()
        tokenizer = _tokenizer(model, config.model_name)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True if after else None)
        images = torch.rand(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        tokens = tokenizer([f"a red object number {i} on the left" for i in range(batch)])
        ids = torch.arange(batch)

        def loss(model, images, tokens):
            image = model.encode_image(images, normalize=True)
            text = encode_text_trimmed(model, tokens, normalize=True)
            return clip_contrastive_loss(image, text, model.logit_scale.exp(), ids)

        return model, optimizer, loss, [images, tokens]

    return build


def step_flops(run: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        run()
    return int(counter.get_total_flops())


def time_steps(steps: dict[str, Step], rounds: int, per_round: int) -> dict:
    runs = {(name, mode): step.make(mode) for name, step in steps.items() for mode in ("before", "after")}
    flops = {name: step_flops(runs[(name, "before")]) for name in steps}
    for run in runs.values():  # warm-up (oneDNN primitive caches, allocator)
        run()
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            start = time.perf_counter()
            for _ in range(per_round):
                run()
            seconds[key].append((time.perf_counter() - start) / per_round)
    return {"flops": flops, "seconds": {k: statistics.median(v) for k, v in seconds.items()}}


def default_run_wall_time(iterations: int) -> dict:
    """Train + evaluate the default closed-set FCN on the prepared world, the old way and the new way."""
    import pandas as pd

    from seg_pipelines.datasets import loaders
    from seg_pipelines.experiments.closed_set import evaluate_segmentor, load_segmentor, train_segmentor

    manifest = json.loads((ROOT / "data/01_raw/dataset_manifest.json").read_text())
    index = pd.read_parquet(ROOT / "data/03_primary/prepared_index.parquet")
    shared = _yaml("parameters_closed_set.yml")["_closed_set"]
    config = closed_set_model_config(
        shared["model"], num_classes=int(manifest["num_classes"]), ignore_index=int(manifest["ignore_index"])
    )
    old = {**shared["training"], "iterations": iterations, "checkpoint_interval": 50}
    old.pop("checkpoint_seconds", None)
    new = {**old, "checkpoint_seconds": 60.0, "channels_last": True, "foreach": True, "amp_dtype": "auto"}
    result = {}
    for name, training in (("before", old), ("after", new)):
        loaders.DECODED_CACHE_BYTES = 0 if name == "before" else 1 << 30
        loaders.clear_decoded_cache()
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            checkpoint, curve = train_segmentor(
                config, manifest, index, training, shared["augmentation"], folder, show_progress=False
            )
            trained = time.perf_counter() - start
            model = load_segmentor(checkpoint)
            start = time.perf_counter()
            per_class = evaluate_segmentor(
                model, manifest, index, shared["evaluation"], shared["augmentation"], show_progress=False
            )
            evaluated = time.perf_counter() - start
        from seg_pipelines.experiments.closed_set import summarize_per_class

        result[name] = {
            "train_s": trained,
            "evaluate_s": evaluated,
            "estimated_default_run_s": trained * shared["training"]["iterations"] / iterations + evaluated,
            "final_loss": float(curve["loss"].iloc[-1]),
            "val_mIoU": summarize_per_class(per_class)["mIoU"],
        }
    result["speedup_default_run"] = (
        result["before"]["estimated_default_run_s"] / result["after"]["estimated_default_run_s"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=2)
    parser.add_argument("--steps", nargs="+", default=["fcn", "fcn_caa", "fcn_ecac", "catseg", "lsmseg", "clip"])
    parser.add_argument("--run-iterations", type=int, default=0, help="also time N real training iterations")
    args = parser.parse_args()
    available = {
        "fcn": lambda: Step("FCN", closed_set_step(None), True),
        "fcn_caa": lambda: Step("FCN+CAA", closed_set_step("caa"), True),
        "fcn_ecac": lambda: Step("FCN+ECAC", closed_set_step("ecac"), True),
        "catseg": lambda: Step("CAT-Seg", ovss_step("baseline"), False),
        "lsmseg": lambda: Step("LSMSeg", ovss_step("lsmseg"), False),
        "clip": lambda: Step("CLIP pretraining", clip_step(), False),
    }
    steps = {available[k]().name: available[k]() for k in args.steps}
    peak = matmul_peak_gflops()
    timed = time_steps(steps, args.rounds, args.per_round)
    per_step = {}
    for name in steps:
        before, after = timed["seconds"][(name, "before")], timed["seconds"][(name, "after")]
        gflop = timed["flops"][name] / 1e9
        per_step[name] = {
            "gflop_per_step": gflop,
            "it_per_s": {"before": 1 / before, "after": 1 / after},
            "gflops": {"before": gflop / before, "after": gflop / after},
            "fraction_of_fp32_matmul_peak": {"before": gflop / before / peak, "after": gflop / after / peak},
            "speedup": before / after,
        }
    report = {
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "amx": cpu_has_amx(),
        "autocast_after": str(resolve_amp_dtype("auto", torch.device("cpu"))),
        "fp32_matmul_peak_gflops": peak,
        "load_average": os.getloadavg(),
        "steps": per_step,
    }
    if args.run_iterations:
        report["default_closed_set_run"] = default_run_wall_time(args.run_iterations)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

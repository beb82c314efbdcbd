"""Training step time of chapter 3's ablation model in a worker process with glibc's allocator at its
defaults (a ``ParallelRunner`` worker; ``DaskRunner``'s local workers) and with the environment Dask's
nannies give their workers by default (``distributed.nanny.pre-spawn-environ``: ``MALLOC_TRIM_THRESHOLD_=65536``
and one thread), in one run.

Each variant is a fresh child process (glibc reads the variable at start) that builds the
``caa_ablations`` base model (FCN + CAA, tiny ResNet, ``conf/base`` settings: crop, batch, channels,
60 classes) and times ``--steps`` SGD steps after ``--warmup`` steps, ``OMP_NUM_THREADS=1`` for all.
The variants alternate for ``--rounds`` rounds, each round starting at another variant; the report
gives each variant's median step time and its ratio to glibc's defaults.

    python benchmarks/bench_worker_allocator.py [--rounds 3] [--steps 30] [--output f.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _project import emit_report, load_parameters  # noqa: E402

NUM_CLASSES = 60  # the synthetic world's classes


def variants() -> dict[str, dict[str, str | None]]:
    """Environment changes per variant (None: unset)."""
    import dask

    from seg_pipelines.runners.dask_runner import local_worker_environ

    nanny_default = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    return {
        "glibc_defaults": {"MALLOC_TRIM_THRESHOLD_": None},
        "dask_nanny_default": {k: str(v) for k, v in nanny_default.items()},
        "dask_runner_local_worker": {
            k: None if v is None else str(v) for k, v in local_worker_environ(nanny_default).items()
        },
    }


def time_steps(warmup: int, steps: int) -> dict:
    """In the child: ms per training step of the chapter-3 base model."""
    import torch

    from seg_pipelines.models.segmentor import build_segmentor

    params = load_parameters(ROOT, "local")["caa_ablations"]
    model_cfg = {k: v for k, v in params["model"].items() if k not in ("head", "pretrained_path")}
    torch.manual_seed(0)
    model = build_segmentor(
        params["model"]["head"],
        num_classes=NUM_CLASSES,
        addon=params["addon"]["name"],
        addon_cfg=dict(params["addon"]["cfg"]),
        **model_cfg,
    ).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch = int(params["training"]["batch_size"])
    crop = [int(c) for c in params["augmentation"]["crop_size"]]
    images = torch.randn(batch, 3, *crop)
    labels = torch.randint(0, NUM_CLASSES, (batch, *crop))

    def step() -> None:
        loss = model.losses(model(images, labels, upsample=False), labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return {
        "ms_per_step": (time.perf_counter() - started) / steps * 1000,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "crop": crop,
        "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_steps(args.warmup, args.steps)))
        return

    base = {**os.environ, "OMP_NUM_THREADS": "1"}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), base.get("PYTHONPATH")]))
    measured: dict[str, list[dict]] = {}
    order = list(variants().items())
    for round_ in range(args.rounds):  # each round in another order: no variant always runs first
        for name, changes in order[round_ % len(order) :] + order[: round_ % len(order)]:
            env = {k: v for k, v in {**base, **changes}.items() if v is not None}
            child = subprocess.run(
                [sys.executable, __file__, "--child", "--steps", str(args.steps), "--warmup", str(args.warmup)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            measured.setdefault(name, []).append(json.loads(child.stdout.strip().splitlines()[-1]))
    medians = {name: statistics.median(r["ms_per_step"] for r in runs) for name, runs in measured.items()}
    report = {
        "model": "caa_ablations base model (conf/base), 60 classes",
        "rounds": args.rounds,
        "steps": args.steps,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "variants": {
            name: {
                "environment": variants()[name],
                "ms_per_step_median": round(medians[name], 1),
                "ms_per_step_runs": [round(r["ms_per_step"], 1) for r in runs],
                "threads": runs[0]["threads"],
                "crop": runs[0]["crop"],
                "batch": runs[0]["batch"],
            }
            for name, runs in measured.items()
        },
        "ratio_vs_glibc_defaults": {name: round(m / medians["glibc_defaults"], 3) for name, m in medians.items()},
    }
    emit_report(report, None, args.output)


if __name__ == "__main__":
    main()

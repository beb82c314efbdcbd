"""Training step time of chapter 3's ablation model in two worker processes that keep both cores busy
(as ``make ablations`` does on 2 cores): plain processes (as ``ParallelRunner``'s workers) against Dask
workers with Dask's defaults, with the environment ``DaskRunner`` gives its local workers, and with all
of ``DaskRunner``'s local-cluster settings (``seg_pipelines.runners.dask_runner.local_cluster_settings``).

Each job builds the ``caa_ablations`` base model (FCN + CAA, tiny ResNet, ``conf/base`` settings: crop,
batch, channels; 60 classes) and times ``--steps`` SGD steps after ``--warmup`` steps, one thread.
Variants:

* ``plain_processes``: two child processes started together, glibc's allocator at its defaults;
* ``dask_defaults``: a 2-worker ``LocalCluster`` with Dask's configuration (its nannies set
  ``MALLOC_TRIM_THRESHOLD_=65536``; profiling every 10 ms, ticks every 20 ms, ...), one job per worker;
* ``dask_runner_environ``: the same with ``DaskRunner``'s worker environment only (the allocator variable unset);
* ``dask_runner``: the same with every setting ``DaskRunner`` starts its local cluster with.

The variants alternate for ``--rounds`` rounds, each round starting at another variant. Reported: each
variant's per-job milliseconds per step, their median, and its ratio to ``plain_processes``.

    python benchmarks/bench_dask_worker.py [--rounds 4] [--steps 80] [--output f.json]
"""

from __future__ import annotations

import argparse
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
WORKERS = 2
VARIANTS = ("plain_processes", "dask_defaults", "dask_runner_environ", "dask_runner")


def time_steps(warmup: int, steps: int) -> float:
    """Milliseconds per training step of the chapter-3 base model, in this process."""
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
    crop = [int(c) for c in params["augmentation"]["crop_size"]]
    images = torch.randn(int(params["training"]["batch_size"]), 3, *crop)
    labels = torch.randint(0, NUM_CLASSES, (images.shape[0], *crop))

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
    return (time.perf_counter() - started) / steps * 1000


def _dask_settings(variant: str) -> dict:
    from seg_pipelines.runners.dask_runner import local_cluster_settings, local_worker_environ

    if variant == "dask_defaults":
        return {}
    if variant == "dask_runner_environ":
        return {"distributed.nanny.pre-spawn-environ": local_worker_environ()}
    return local_cluster_settings()


def run_variant(variant: str, warmup: int, steps: int, env: dict[str, str]) -> list[float]:
    """Per-job ms per step of ``WORKERS`` jobs run at the same time under ``variant``."""
    if variant == "plain_processes":
        command = [sys.executable, __file__, "--child", "--warmup", str(warmup), "--steps", str(steps)]
        children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(WORKERS)]
        outputs = [child.communicate()[0] for child in children]
        if any(child.returncode for child in children):
            raise SystemExit(f"{variant}: a job failed")
        return [float(out.strip().splitlines()[-1]) for out in outputs]
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(_dask_settings(variant)):
        cluster = LocalCluster(
            n_workers=WORKERS, threads_per_worker=1, processes=True, memory_limit=0, dashboard_address=":0"
        )
    with cluster, Client(cluster) as client:
        client.run(lambda: __import__("seg_pipelines.models.segmentor"))  # imports outside the timing
        jobs = [client.submit(time_steps, warmup, steps, pure=False, key=f"job-{i}") for i in range(WORKERS)]
        return client.gather(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(time_steps(args.warmup, args.steps))
        return

    # the workers (Dask's and the plain ones) inherit this environment: one thread, glibc's defaults
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    measured: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        shift = round_ % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            measured[variant] += run_variant(variant, args.warmup, args.steps, dict(os.environ))
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)  # an in-process nanny put Dask's value here
    medians = {name: statistics.median(values) for name, values in measured.items()}
    report = {
        "model": "caa_ablations base model (conf/base), 60 classes, 1 thread per worker",
        "workers_at_once": WORKERS,
        "cpu_count": os.cpu_count(),
        "rounds": args.rounds,
        "steps": args.steps,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "ms_per_step": {name: [round(v, 1) for v in values] for name, values in measured.items()},
        "ms_per_step_median": {name: round(m, 1) for name, m in medians.items()},
        "ratio_vs_plain_processes": {name: round(m / medians["plain_processes"], 3) for name, m in medians.items()},
        "dask_runner_settings": _dask_settings("dask_runner"),
    }
    emit_report(report, None, args.output)


if __name__ == "__main__":
    main()

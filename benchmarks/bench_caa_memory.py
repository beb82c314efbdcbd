"""Peak memory and time of the memory-efficient CAA vs the naive one that materialises HW×HW matrices.

One training step (forward, affinity + aux losses, backward) of the CAA add-on on CPU, for a few
feature sizes. Each (implementation, size) runs in a fresh subprocess and its peak memory is the
growth of the process's peak resident set (``ru_maxrss``) during the step — CPU tensors are not
seen by ``tracemalloc``, and a fresh process keeps one measurement from hiding another.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_caa_memory.py [--sizes 32 48 64]

Prints one JSON object: per size, peak MiB and seconds of both, and efficient/naive ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_step(implementation: str, side: int, channels: int, repeats: int) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from seg_pipelines.losses.affinity import naive_affinity_bce_loss
    from seg_pipelines.models.caa import ClassAwareAffinity, downsample_labels

    torch.manual_seed(0)
    num_classes = 19
    module = ClassAwareAffinity(
        channels,
        num_classes,
        channels=channels,
        affinity_channels=channels // 2,
        memory_efficient=implementation == "efficient",
        chunk_size=256,
    )
    features = torch.randn(1, channels, side, side, requires_grad=True)
    target = torch.randint(0, num_classes, (1, side, side))
    target[:, : side // 8] = 255

    def step() -> None:
        outputs = module(features, target)
        if implementation == "efficient":
            losses = module.losses(outputs, target)
            total = sum(losses.values())
        else:  # materialise the ground-truth affinity too
            labels = downsample_labels(target, (side, side)).flatten(1)
            total = naive_affinity_bce_loss(outputs["affinity_query"], outputs["affinity_key"], labels, num_classes)
            total = total + 0.4 * F.cross_entropy(outputs["coarse_logits"], target, ignore_index=255)
        total = total + F.cross_entropy(outputs["logits"], target, ignore_index=255)
        module.zero_grad(set_to_none=True)
        features.grad = None
        total.backward()

    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"peak_mib": peak_mib, "seconds": sorted(times)[len(times) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64], help="feature map sides (HW = side²)")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_step(args.child[0], int(args.child[1]), args.channels, args.repeats)))
        return

    results = []
    for side in args.sizes:
        row: dict[str, float | int] = {"hw": side * side}
        for implementation in ("efficient", "naive"):
            command = [
                sys.executable,
                __file__,
                "--child",
                implementation,
                str(side),
                "--channels",
                str(args.channels),
                "--repeats",
                str(args.repeats),
            ]
            measured = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            row[f"{implementation}_peak_mib"] = round(measured["peak_mib"], 1)
            row[f"{implementation}_seconds"] = round(measured["seconds"], 4)
        row["peak_memory_ratio"] = round(row["efficient_peak_mib"] / max(row["naive_peak_mib"], 1e-9), 4)
        row["time_ratio"] = round(row["efficient_seconds"] / max(row["naive_seconds"], 1e-9), 4)
        results.append(row)
    print(
        json.dumps(
            {
                "benchmark": "caa_memory",
                "device": "cpu",
                "channels": args.channels,
                "chunk_size": 256,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

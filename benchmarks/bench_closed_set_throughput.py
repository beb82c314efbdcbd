"""Training throughput of FCN vs FCN+CAA vs FCN+ECAC (thesis Table 3.6: CAA adds 23–61% training time).

Full training steps (forward, every loss term, backward, SGD step) on random images and labels of
the given size, measured in the same process and interleaved (round robin over the models, several
rounds) so that machine load affects all three alike. Reports iterations/s (median over rounds) and
the time overhead of each add-on relative to the FCN baseline.

    OMP_NUM_THREADS=2 python benchmarks/bench_closed_set_throughput.py [--backbone resnet18c --size 128]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config


def build(args: argparse.Namespace, addon: str | None) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model_block = {
        "head": args.head,
        "backbone": args.backbone,
        "channels": args.channels,
        "aux_channels": args.channels // 2,
    }
    addon_cfg = {
        "caa": {"channels": args.channels, "affinity_channels": args.channels // 2},
        "ecac": {"memory_loss_start_iter": 0, "class_weights": [1.0 / args.num_classes] * args.num_classes},
    }.get(addon)
    config = closed_set_model_config(
        model_block, num_classes=args.num_classes, ignore_index=255, addon=addon, addon_cfg=addon_cfg
    )
    torch.manual_seed(0)
    model = build_segmentor(config).train()
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor) -> None:
    losses = model.losses(model(images, labels), labels)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--head", default="fcn")
    parser.add_argument("--backbone", default="resnet_tiny")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=128, help="crop side (features at 1/8: 16×16 = 256 pixels)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-classes", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model per round")
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.size, args.size, generator=generator)
    # blocky labels so that classes form regions, as in segmentation data
    coarse = torch.randint(
        0, args.num_classes, (args.batch_size, 1, args.size // 16, args.size // 16), generator=generator
    )
    labels = torch.nn.functional.interpolate(coarse.float(), size=(args.size, args.size), mode="nearest")[:, 0].long()

    names = {"FCN": None, "FCN+CAA": "caa", "FCN+ECAC": "ecac"}
    models = {name: build(args, addon) for name, addon in names.items()}
    for model, optimizer in models.values():  # warm-up
        step(model, optimizer, images, labels)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, optimizer) in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step(model, optimizer, images, labels)
            seconds[name].append((time.perf_counter() - start) / args.steps)
    per_iteration = {name: float(np.median(values)) for name, values in seconds.items()}
    baseline = per_iteration["FCN"]
    print(
        json.dumps(
            {
                "setting": {k: v for k, v in vars(args).items()} | {"threads": torch.get_num_threads()},
                "iterations_per_second": {name: 1.0 / t for name, t in per_iteration.items()},
                "seconds_per_iteration": per_iteration,
                "training_time_overhead_vs_fcn": {
                    name: t / baseline - 1.0 for name, t in per_iteration.items() if name != "FCN"
                },
                "parameters": {name: sum(p.numel() for p in m.parameters()) for name, (m, _) in models.items()},
                "thesis_table_3_6_overhead": (
                    "+23% (FCN+CAA) to +61% (UperNet+CAA), ResNet-50, 6k iterations, Pascal-Context"
                ),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

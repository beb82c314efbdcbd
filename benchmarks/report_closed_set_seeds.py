"""FCN vs FCN+CAA vs FCN+ECAC over several seeds on the prepared dataset (default: synthetic world).

Uses the ``caa`` and ``ecac`` parameter blocks of the chosen Kedro env (same head, budget, data),
trains each model once per seed (the FCN baseline is shared: both blocks give it the same settings,
so its run folder is reused), evaluates with the closed-set protocol and prints JSON plus a markdown
table of mean ± std val mIoU and Table 4.8 group mIoU. Needs ``kedro run --pipelines=data_preparation`` first.

    OMP_NUM_THREADS=2 python benchmarks/report_closed_set_seeds.py --seeds 0 1 2
    python benchmarks/report_closed_set_seeds.py --iterations 800 --lr 0.02   # budget variations
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _project import add_project_arguments, emit_report, load_manifest, load_parameters
from seg_pipelines.datasets.statistics import class_weights_from_frequencies
from seg_pipelines.experiments import closed_set
from seg_pipelines.pipelines.closed_set.nodes import build_model_configs


def run(args: argparse.Namespace) -> dict:
    project = Path(args.project).resolve()
    params = load_parameters(project, args.env)
    manifest = load_manifest(project)
    index = pd.read_parquet(project / "data/03_primary/prepared_index.parquet")
    for column in ("image_path", "label_path"):
        index[column] = [str(p) if Path(p).is_absolute() else str(project / p) for p in index[column]]
    statistics = pd.read_csv(project / "data/04_feature/class_statistics.csv")
    if args.rho is not None:  # eq. 4.14 weights for another ρ (same training frequencies)
        statistics = statistics.copy()
        statistics["weight"] = class_weights_from_frequencies(statistics["frequency"].to_numpy(dtype=float), args.rho)
    ecac_overrides = json.loads(args.ecac_cfg) if args.ecac_cfg else {}

    results: dict[str, dict[str, list[float]]] = {}
    timings: dict[str, list[float]] = {}
    done: set[tuple[str, int, str]] = set()
    checkpoint_root = project / args.checkpoint_root
    tail_ids = statistics.loc[statistics["table_4_8_group"] == "tail", "class_id"]
    for seed in args.seeds:
        for method in ("caa", "ecac"):
            block = params[method]
            training = {**block["training"], "seed": seed}
            if args.iterations:
                training["iterations"] = args.iterations
            if args.lr:
                training["lr"] = args.lr
            augmentation = dict(block["augmentation"])
            if args.scale_range:
                augmentation["scale_range"] = list(args.scale_range)
            addon = block["addon"]
            if method == "ecac" and ecac_overrides:
                addon = {**addon, "cfg": {**(addon.get("cfg") or {}), **ecac_overrides}}
            baseline_config, method_config = build_model_configs(manifest, statistics, block["model"], addon)
            for config in (baseline_config, method_config):
                base_name = name = closed_set.method_display_name(config)
                # the FCN baseline of the ecac block is the caa block's when both blocks give it the
                # same settings (shared run); with different budgets each block's baseline is its own row
                setting = closed_set.run_fingerprint(config, training, augmentation, dict(block["evaluation"]))
                if (base_name, seed, setting) in done:
                    continue
                if any((n, s) == (base_name, seed) for n, s, _ in done):
                    name = f"{base_name} ({method} settings)"
                done.add((base_name, seed, setting))
                if args.models and base_name not in args.models:
                    continue
                start = time.perf_counter()
                checkpoint, _ = closed_set.train_segmentor(
                    config, manifest, index, training, augmentation, checkpoint_root, show_progress=args.progress
                )
                model = closed_set.load_segmentor(checkpoint, num_classes=manifest["num_classes"])
                per_class = closed_set.evaluate_segmentor(
                    model, manifest, index, block["evaluation"], augmentation, show_progress=False
                )
                timings.setdefault(name, []).append(time.perf_counter() - start)
                iou = per_class.sort_values("class_id")["iou"].to_numpy()
                if args.per_class_dir:
                    Path(args.per_class_dir).mkdir(parents=True, exist_ok=True)
                    per_class.to_csv(Path(args.per_class_dir) / f"{name.replace('+', '_')}-seed{seed}.csv", index=False)
                summary = closed_set.summarize_per_class(per_class)
                groups = closed_set.group_miou(iou, statistics.sort_values("class_id")["table_4_8_group"].fillna(""))
                terciles = closed_set.group_miou(iou, statistics.sort_values("class_id")["group"])
                # pixel counts of the Table 4.8 tail group: IoU floors at 0 when no tail pixel is right
                tail_rows = per_class[per_class["class_id"].isin(tail_ids)]
                summary["tail_predicted_pixels"] = float(tail_rows["predicted_pixels"].sum())
                summary["tail_correct_pixels"] = float(tail_rows["true_positive"].sum())
                row = results.setdefault(name, {})
                for key, value in {
                    **summary,
                    **{f"{g}_mIoU": v for g, v in groups.items()},
                    **{f"tercile_{g}_mIoU": v for g, v in terciles.items()},
                }.items():
                    row.setdefault(key, []).append(value)
                print(
                    json.dumps(
                        {
                            "seed": seed,
                            "model": name,
                            "mIoU": round(summary["mIoU"], 3),
                            "tail_mIoU": round(groups["tail"], 3),
                            "seconds": round(timings[name][-1], 1),
                        }
                    ),
                    flush=True,
                )
    summary = {
        name: {
            key: {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0, "values": v}
            for key, v in row.items()
        }
        for name, row in results.items()
    }
    any_block = params["caa"]
    return {
        "seeds": list(args.seeds),
        "iterations": args.iterations or any_block["training"]["iterations"],
        "lr": args.lr or any_block["training"]["lr"],
        "scale_range": list(args.scale_range) if args.scale_range else any_block["augmentation"]["scale_range"],
        "backbone": any_block["model"]["backbone"],
        "dataset": closed_set.benchmark_name(manifest),
        "results": summary,
        "train_and_eval_seconds": {k: float(np.mean(v)) for k, v in timings.items()},
    }


def markdown(report: dict) -> str:
    keys = (
        "mIoU",
        "mAcc",
        "aAcc",
        "head_mIoU",
        "mid_mIoU",
        "tail_mIoU",
        "tail_predicted_pixels",
        "tail_correct_pixels",
    )
    lines = [
        f"Closed-set, {report['dataset']}, {report['backbone']}, {report['iterations']} iterations, lr {report['lr']}, "
        f"scale range {report['scale_range']}, seeds {report['seeds']} (mean ± std, %; tail pixels: counts)",
        "",
        "| Method | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for name, row in report["results"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]['mean']:.2f} ± {row[k]['std']:.2f}" for k in keys) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_project_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=None, help="override training.iterations")
    parser.add_argument("--lr", type=float, default=None, help="override training.lr")
    parser.add_argument(
        "--models", nargs="+", default=None, help="train only these display names (e.g. FCN FCN+ECAC); default: all"
    )
    parser.add_argument(
        "--scale-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="override augmentation.scale_range (random rescale before the crop)",
    )
    parser.add_argument(
        "--rho",
        type=float,
        default=None,
        help="recompute the eq. 4.14 class weights with this ρ (default: class_statistics.csv)",
    )
    parser.add_argument(
        "--ecac-cfg", default=None, help="JSON overrides of ecac.addon.cfg, e.g. '{\"memory_loss_start_iter\": 100}'"
    )
    parser.add_argument("--per-class-dir", default=None, help="write each run's per-class IoU table here")
    parser.add_argument("--checkpoint-root", default="data/06_models/closed_set_seed_report")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    report = run(args)
    emit_report(report, markdown(report), args.output)


if __name__ == "__main__":
    main()

"""Eq. 4.12's class average: by how much ``kl_average: present_classes`` scales L_KL (and α of eq. 4.21)
over the text's 1/C, on the prepared dataset's training batches (default: synthetic world).

The factor of a batch is C / N_present, N_present the classes with a labelled pixel in the batch's labels
resized (nearest) to ECAC's feature map (crop / output stride 8), as ``ExtendedContextAwareClassifier.losses``
sees them. Uses the ``ecac`` block of the chosen Kedro env (batch size, augmentation) and prints JSON.
Needs ``kedro run --pipelines=data_preparation`` first.

    OMP_NUM_THREADS=1 python benchmarks/report_kl_average_factor.py --batches 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from _project import add_project_arguments, emit_report, load_manifest, load_parameters
from seg_pipelines.experiments import closed_set
from seg_pipelines.models.caa import downsample_labels

OUTPUT_STRIDE = 8  # the ResNet-V1c-D8 backbones of every closed-set head


def run(args: argparse.Namespace) -> dict:
    project = Path(args.project).resolve()
    block = load_parameters(project, args.env)["ecac"]
    manifest = load_manifest(project)
    index = pd.read_parquet(project / "data/03_primary/prepared_index.parquet")
    for column in ("image_path", "label_path"):
        index[column] = [str(p) if Path(p).is_absolute() else str(project / p) for p in index[column]]
    augmentation = dict(block["augmentation"])
    dataset = closed_set.build_split_dataset(index, manifest, "train", augmentation, train=True)
    torch.manual_seed(args.seed)
    loader = DataLoader(dataset, batch_size=int(block["training"]["batch_size"]), shuffle=True)
    crop = augmentation["crop_size"]
    size = (crop[0] // OUTPUT_STRIDE, crop[1] // OUTPUT_STRIDE)
    num_classes, ignore = int(manifest["num_classes"]), int(manifest["ignore_index"])
    factors = []
    while len(factors) < args.batches:
        for batch in loader:
            labels = downsample_labels(batch["label"], size)
            present = torch.unique(labels[labels != ignore]).numel()
            factors.append(num_classes / max(present, 1))
            if len(factors) == args.batches:
                break
    values = np.asarray(factors)
    return {
        "classes": num_classes,
        "batches": len(values),
        "batch_size": int(block["training"]["batch_size"]),
        "feature_map": list(size),
        "C_over_present": {
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
        },
    }


def markdown(report: dict) -> str:
    factor = report["C_over_present"]
    return (
        f"C / N_present over {report['batches']} batches of {report['batch_size']} ({report['classes']} classes, "
        f"{report['feature_map'][0]}x{report['feature_map'][1]} feature map): mean {factor['mean']:.2f}, median "
        f"{factor['median']:.2f}, range {factor['min']:.2f}-{factor['max']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_arguments(parser)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = run(args)
    emit_report(report, markdown(report), args.output)


if __name__ == "__main__":
    main()

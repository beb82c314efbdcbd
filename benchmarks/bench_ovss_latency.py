"""Latency and MACs of LSMSeg (category filtering, k = 32) vs the CAT-Seg baseline (no filtering).

Thesis Table 5.8 (PC-459, ViT-B/16, L40 GPU): LSMSeg 362.8 ms vs CAT-Seg 535.2 ms, 2122 vs 3460 GFLOPs.
Here both models are the embedded-default sizes (tiny CLIP, tiny SAM, the head of
conf/base/parameters_lsmseg.yml), random weights, one image, vocabularies of 150, 459 and 847 classes;
the text embeddings are given (encoded once per vocabulary, as at inference). The claim checked is the
ratio: filtering before the expensive refinement/decoder makes cost nearly independent of K.

    OMP_NUM_THREADS=2 python benchmarks/bench_ovss_latency.py [--classes 150 459 847] [--repeats 5]

Prints one JSON object: per K, latency (ms) and MACs of both, and lsmseg/baseline ratios.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from seg_pipelines.engine.profiling import count_macs, count_parameters, measure_latency
from seg_pipelines.models.factory import create_model

PARAMETERS = Path(__file__).resolve().parents[1] / "conf/base/parameters_lsmseg.yml"


def build(key: str, top_k: int, params: dict) -> torch.nn.Module:
    spec = dict(params["models"][key])
    name = spec.pop("architecture")
    spec["top_k"] = top_k
    torch.manual_seed(0)
    return create_model(
        name,
        clip_model=params["clip"]["model"],
        clip_pretrained=None,
        image_size=params["clip"]["image_size"],
        **params["head"],
        **spec,
    ).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[150, 459, 847])
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = yaml.safe_load(PARAMETERS.read_text())["lsmseg"]
    models = {"baseline": build("baseline", 0, params), "lsmseg": build("lsmseg", args.top_k, params)}
    image = torch.rand(1, 3, args.image_size, args.image_size)
    embed_dim = models["lsmseg"].clip.embed_dim
    result = {
        "image_size": args.image_size,
        "top_k": args.top_k,
        "threads": args.threads,
        "params": {key: count_parameters(model) for key, model in models.items()},
        "per_vocabulary": {},
    }
    for classes in args.classes:
        text = torch.randn(classes, 1, embed_dim, generator=torch.Generator().manual_seed(classes))
        row = {}
        for key, model in models.items():
            row[f"{key}_ms"] = 1000 * measure_latency(model, image, text, warmup=1, iterations=args.repeats)
            row[f"{key}_gmacs"] = count_macs(model, image, text) / 1e9
        row["latency_ratio_lsmseg_over_baseline"] = row["lsmseg_ms"] / row["baseline_ms"]
        row["macs_ratio_lsmseg_over_baseline"] = row["lsmseg_gmacs"] / row["baseline_gmacs"]
        result["per_vocabulary"][str(classes)] = row
    result["thesis_table_5_8"] = {
        "lsmseg_ms": 362.8,
        "baseline_ms": 535.2,
        "latency_ratio": 362.8 / 535.2,
        "macs_ratio": 2122.02 / 3459.7,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

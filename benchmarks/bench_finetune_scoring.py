"""``finetune`` attribute scoring: frozen-CLIP image features once vs recomputed per prompt set.

The thesis's scorer (5.3.4) trains CAT-Seg without aggregation for every prompt set. CLIP is
frozen, so the image side (dense features + decoder guidance of the training and evaluation
images) is the same for every prompt set: :func:`attribute_scoring.build_scorer` computes it
once. The naive way recomputes it for each prompt set. Both are measured in this run:

* ``shared_seconds``: build once + score ``--prompt-sets`` prompt sets (template, nine attributes,
  greedy combinations: 13 by default), each trained and evaluated;
* ``naive_seconds_per_prompt_set``: build from scratch + score, measured on ``--naive-sets``
  prompt sets and averaged (the naive total is that times ``--prompt-sets``);
* ``ratio``: naive total / shared total (target >= 3);
* ``head_step``: one training step (forward + backward, batch ``--batch-size``, every seen class)
  of the scorer's restructured head (:func:`attribute_scoring.aggregation_free_logits`) vs the
  model's own path (cost volume + ``CATSeg.aggregate`` with the concatenated guidance), same
  weights and batch; ``head_step.speedup`` is their ratio, ``max_abs_logit_difference`` shows it
  computes the same thing.

    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/bench_finetune_scoring.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.experiments import attribute_scoring as scoring
from seg_pipelines.models.ovss.catseg import per_pixel_bce_loss

BENCHMARKS = ["syn847", "synpc459", "syn150", "synpc59", "synvoc20", "synvoc21b"]


def load(root: Path, max_val: int, max_train: int):
    loaded = [
        scoring.load_benchmark(
            create_reader("synthetic", root, vocabulary=v), v, "val", background_class="background", limit=max_val
        )
        for v in BENCHMARKS
    ]
    seen, images = scoring.load_benchmark(
        create_reader("synthetic", root, vocabulary="seen"), "seen", "train", limit=max_train
    )
    return loaded, (images, seen.labels, seen.ignore_index, seen.class_names)


def build(loaded, train, config: scoring.FinetuneConfig, weights):
    model = scoring.build_scoring_model({"model_name": "TinyCLIP-ViT-8-96", "image_size": 64}, weights)
    return scoring.build_scorer(model, loaded, mode="finetune", train=train, finetune=config, progress=False)


def prompt_set(names, number: int) -> dict[str, str]:
    return {n: f"a photo of a {n}." if number == 0 else f"A {n} with look number {number}." for n in names}


def head_step(scorer, repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` seconds of one training step, restructured head vs the model's path."""
    model, bank = scorer.model, scorer.train_features
    text = scorer.encode(prompt_set(scorer.class_names, 0), scorer.train_class_names)
    rows = bank.rows(scorer.train_keys)[: scorer.finetune.batch_size]
    dense, guidance = bank.dense[rows], [g[rows] for g in bank.guidance]
    labels = scorer.train_labels[: len(rows)]

    def reference():
        filtered = model.category_filter(dense, text.unsqueeze(-2))
        logits = model.aggregate(filtered, dense, guidance)
        return scoring.scatter_class_logits(logits, filtered.indices, filtered.num_classes, model.filtered_logit)

    def restructured():
        return scoring.head_logits(model, dense, guidance, text)

    model.train()
    out = {}
    logits = {}
    for name, fn in (("reference_seconds", reference), ("seconds", restructured)):
        times = []
        for _ in range(repeats):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            value = fn()
            per_pixel_bce_loss(value, labels, ignore_index=scorer.train_ignore_index).backward()
            times.append(time.perf_counter() - start)
        out[name] = round(min(times), 3)
        logits[name] = value.detach()
    model.eval()
    out["speedup"] = round(out["reference_seconds"] / out["seconds"], 2)
    out["max_abs_logit_difference"] = float((logits["seconds"] - logits["reference_seconds"]).abs().max())
    out["items_per_step"] = len(rows) * len(scorer.train_class_names)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/01_raw/synthetic")
    parser.add_argument("--weights", default="data/06_models/tiny_clip.pt", help="CLIP weights (random if missing)")
    parser.add_argument("--max-val", type=int, default=64)
    parser.add_argument("--max-train", type=int, default=128)
    parser.add_argument("--prompt-sets", type=int, default=13)
    parser.add_argument("--naive-sets", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    if not (root / "ADEChallengeData2016" / "world.json").is_file():
        from seg_pipelines.datasets.synthetic import ensure_synthetic_world

        root = Path(tempfile.mkdtemp()) / "synthetic"
        ensure_synthetic_world(root, seed=0, image_size=96, n_train=args.max_train, n_val=args.max_val)
    weights = args.weights if Path(args.weights).is_file() else None
    loaded, train = load(root, args.max_val, args.max_train)
    config = scoring.FinetuneConfig(steps=args.steps, batch_size=args.batch_size)

    start = time.perf_counter()
    scorer = build(loaded, train, config, weights)
    build_seconds = time.perf_counter() - start
    for number in range(args.prompt_sets):
        scorer.evaluate(prompt_set(scorer.class_names, number))
    shared = time.perf_counter() - start

    start = time.perf_counter()
    for number in range(args.naive_sets):
        naive_scorer = build(loaded, train, config, weights)  # image side recomputed for this prompt set
        naive_scorer.evaluate(prompt_set(naive_scorer.class_names, number))
    naive_per_set = (time.perf_counter() - start) / args.naive_sets
    step = head_step(scorer)
    result = {
        "clip": "pretrained" if weights else "random-init",
        "val_images": len(loaded[0][1]),
        "train_images": len(train[0]),
        "finetune": {"steps": args.steps, "batch_size": args.batch_size},
        "threads": args.threads,
        "prompt_sets": args.prompt_sets,
        "shared_seconds": round(shared, 2),
        "shared_breakdown_seconds": {k: round(v, 2) for k, v in scorer.times.as_dict().items()},
        "naive_seconds_per_prompt_set": round(naive_per_set, 2),
        "naive_seconds": round(naive_per_set * args.prompt_sets, 2),
        "ratio": round(naive_per_set * args.prompt_sets / shared, 2),
        "target_ratio": 3.0,
        "image_side_seconds": round(build_seconds, 2),
        "per_prompt_set_seconds": round((shared - build_seconds) / args.prompt_sets, 2),
        "head_step": step,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

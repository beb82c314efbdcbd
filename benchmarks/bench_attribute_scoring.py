"""Attribute scoring reuses the image side; LLM answers are replayed from the cache on a rerun.

Prints JSON with

* ``ratio_total_to_single``: (time to score the template + every attribute + the greedy
  combinations, sharing the image side) / (time of ONE prompt set's evaluation from scratch:
  read the benchmarks, CLIP image features, text, cost map, mIoU). A naive implementation pays
  ``prompt_sets`` single evaluations; the thesis's nine attributes must cost well under nine.
* ``llm_samples``: seconds to score one prompt set with n prompts per class (an ``llm_samples``
  ensemble) against n = 1, and the LLM answers it needs (n per question);
* ``llm.<model>``: for each local LLM (Qwen2.5-Coder-1.5B and 0.5B through their chat template,
  Gemma 3 270M few-shot; those not installed are reported as errors): questions per second of a
  first run, and a rerun's cache hit rate and model calls (must be 1.0 and 0).

    python benchmarks/bench_attribute_scoring.py [--root data/01_raw/synthetic] [--llm-classes 3]
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
from seg_pipelines.prompts import THESIS_ATTRIBUTES, ResponseCache, build_prompt_set, create_llm, generate_descriptions

BENCHMARKS = ["syn847", "synpc459", "syn150", "synpc59", "synvoc20", "synvoc21b"]


def load_clip_inputs(models_dir: Path):
    config_path, weights_path = models_dir / "tiny_clip_config.json", models_dir / "tiny_clip.pt"
    if config_path.is_file() and weights_path.is_file():
        config = json.loads(config_path.read_text())
        return {"model_name": config["model_name"], "image_size": config["image_size"]}, str(weights_path), "pretrained"
    return {"model_name": "TinyCLIP-ViT-8-96", "image_size": 64}, None, "random-init"


def build(root: Path, clip_config, weights, max_images):
    model = scoring.build_scoring_model(clip_config, weights)
    loaded = [
        scoring.load_benchmark(
            create_reader("synthetic", root, vocabulary=v), v, "val", background_class="background", limit=max_images
        )
        for v in BENCHMARKS
    ]
    return scoring.build_scorer(model, loaded, progress=False)


def descriptions_for(class_names, descriptions_file: Path):
    if descriptions_file.is_file():
        stored = json.loads(descriptions_file.read_text())
        first = next(iter(stored["llms"].values()))["descriptions"]
        if all(name in first and all(a in first[name] for a in THESIS_ATTRIBUTES) for name in class_names):
            return first, "cached LLM descriptions"
    fake = {name: {a: f"A {name} has a typical {a} of a {name}." for a in THESIS_ATTRIBUTES} for name in class_names}
    return fake, "placeholder descriptions"


def bench_scoring(root: Path, models_dir: Path, descriptions_file: Path, max_images, top_k: int) -> dict:
    clip_config, weights, clip_kind = load_clip_inputs(models_dir)
    start = time.perf_counter()  # one prompt set from scratch
    single_scorer = build(root, clip_config, weights, max_images)
    descriptions, source = descriptions_for(single_scorer.class_names, descriptions_file)
    budget = single_scorer.context_length - 2
    single_scorer.evaluate(build_prompt_set(descriptions, ["color"], single_scorer.class_names, max_tokens=budget))
    single = time.perf_counter() - start

    start = time.perf_counter()  # all prompt sets, image side once
    scorer = build(root, clip_config, weights, max_images)
    names = scorer.class_names
    averages = {}
    for combination in [[]] + [[a] for a in THESIS_ATTRIBUTES]:
        scores = scorer.evaluate(build_prompt_set(descriptions, combination, names, max_tokens=budget))
        averages[" + ".join(combination) or "template"] = sum(scores.values()) / len(scores)
    ranked = sorted(THESIS_ATTRIBUTES, key=lambda a: -averages[a])[:top_k]
    for size in range(2, top_k + 1):
        scorer.evaluate(build_prompt_set(descriptions, ranked[:size], names, max_tokens=budget))
    total = time.perf_counter() - start
    prompt_sets = scorer.times.evaluations
    return {
        "clip": clip_kind,
        "descriptions": source,
        "val_images": scorer.images_encoded,
        "prompt_sets_scored": prompt_sets,
        "single_evaluation_seconds": round(single, 3),
        "total_scoring_seconds": round(total, 3),
        "ratio_total_to_single": round(total / single, 3),
        "naive_ratio": prompt_sets,
        "breakdown_seconds": {k: round(v, 3) for k, v in scorer.times.as_dict().items()},
    }


def bench_samples(root: Path, models_dir: Path, descriptions_file: Path, max_images, samples: list[int]) -> dict:
    """Seconds to score one prompt set whose classes hold n prompts each (``llm_samples.use: ensemble``,
    the mean of the L2-normalised text embeddings) against n = 1, same scorer, image side shared. The
    prompts differ per sample (the sample index is written into them), as n LLM answers would."""
    clip_config, weights, _ = load_clip_inputs(models_dir)
    scorer = build(root, clip_config, weights, max_images)
    names = scorer.class_names
    descriptions, source = descriptions_for(names, descriptions_file)
    budget = scorer.context_length - 2
    base = build_prompt_set(descriptions, ["color", "shape"], names, max_tokens=budget)
    scorer.evaluate(base)  # warm-up: the image side is cached from here on
    seconds = {}
    for n in samples:
        prompts = {name: [f"{text} ({i})" if i else text for i in range(n)] for name, text in base.items()}
        start = time.perf_counter()
        scorer.evaluate(prompts if n > 1 else base)
        seconds[n] = time.perf_counter() - start
    one = seconds.get(1) or min(seconds.values())
    return {
        "descriptions": source,
        "seconds_per_prompt_set": {str(n): round(t, 3) for n, t in seconds.items()},
        "ratio_to_n1": {str(n): round(t / one, 3) for n, t in seconds.items()},
        "llm_answers_ratio_to_n1": {str(n): n for n in seconds},  # n answers per question
    }


class Counting:
    def __init__(self, backend):
        self.backend, self.name, self.model = backend, backend.name, backend.model
        self.concurrency, self.calls, self.seconds = 1, 0, 0.0

    def complete(self, messages, **gen):
        start = time.perf_counter()
        try:
            return self.backend.complete(messages, **gen)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - start


LOCAL_LLMS = {
    "qwen2.5-coder-1.5b": {"packaged_model": "qwen2.5-coder-1.5b-instruct", "prompt_style": "chat"},
    "qwen2.5-coder-0.5b": {"packaged_model": "qwen2.5-coder-0.5b-instruct", "prompt_style": "chat"},
    "gemma3-270m": {"prompt_style": "few_shot"},
}
CHAT_OPTIONS = {"n_ctx": 1024, "repeat_penalty": 1.1, "stop": [". ", ".\n", "\n"]}


def bench_llm_cache(classes: list[str], threads: int, label: str) -> dict:
    config = {"backend": "llama_cpp", "n_threads": threads, "max_tokens": 40, **LOCAL_LLMS[label]}
    if config["prompt_style"] == "chat":
        config.update(CHAT_OPTIONS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "llm_responses.jsonl"
        first = Counting(create_llm(config))
        first.backend._load()  # model loading is not a question
        start = time.perf_counter()
        generate_descriptions(first, ResponseCache(path), classes, THESIS_ATTRIBUTES, progress=False, max_sentences=1)
        first_seconds = time.perf_counter() - start
        rerun = Counting(create_llm(config))
        cache = ResponseCache(path)  # a new process would read the same file
        start = time.perf_counter()
        generate_descriptions(rerun, cache, classes, THESIS_ATTRIBUTES, progress=False, max_sentences=1)
        rerun_seconds = time.perf_counter() - start
        stats = cache.stats()
    asked = stats["hits"] + stats["misses"]
    return {
        "model": first.model,
        "questions": asked,
        "first_run_model_calls": first.calls,
        "questions_per_second": round(first.calls / first_seconds, 3),
        "seconds_per_generation": round(first.seconds / max(first.calls, 1), 3),
        "rerun_model_calls": rerun.calls,
        "rerun_cache_hit_rate": stats["hits"] / max(asked, 1),
        "rerun_seconds": round(rerun_seconds, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/01_raw/synthetic", help="synthetic world (rendered small if missing)")
    parser.add_argument("--models", default="data/06_models", help="folder with tiny_clip.pt + tiny_clip_config.json")
    parser.add_argument("--descriptions", default="data/02_intermediate/attribute_descriptions.json")
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument(
        "--llm-classes", type=int, default=3, help="classes x 9 attributes asked to the local LLM; 0 skips"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--llms", default=",".join(LOCAL_LLMS), help="comma-separated local LLM labels")
    parser.add_argument("--skip-scoring", action="store_true", help="only the LLM numbers")
    parser.add_argument(
        "--samples", default="1,3,10", help="LLM samples per question to time as ensembles (llm_samples.n); '' skips"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    if not (root / "ADEChallengeData2016" / "world.json").is_file():
        from seg_pipelines.datasets.synthetic import ensure_synthetic_world

        root = Path(tempfile.mkdtemp()) / "synthetic"
        ensure_synthetic_world(root, seed=0, image_size=96, n_train=16, n_val=100)
    result = {}
    if not args.skip_scoring:
        result["scoring"] = bench_scoring(root, Path(args.models), Path(args.descriptions), args.max_images, args.top_k)
        if args.samples:
            samples = [int(n) for n in args.samples.split(",")]
            result["llm_samples"] = bench_samples(
                root, Path(args.models), Path(args.descriptions), args.max_images, samples
            )
    if args.llm_classes:
        classes = ["tomato", "sky", "zebra", "car", "lime", "grass", "boat", "sun"][: args.llm_classes]
        result["llm"] = {}
        for label in args.llms.split(","):
            try:
                result["llm"][label] = bench_llm_cache(classes, args.threads, label)
            except Exception as error:  # not installed: report, do not fail the other numbers
                result["llm"][label] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Tiny CLIP pretraining with a 77-token text context (every open_clip text tower's) against the old
32-token one (``TinyCLIP-ViT-8-96-ctx32``), same captions, settings and seed (issue 26).

Each context pretrains in a fresh subprocess (``conf/<env>``'s ``clip_pretraining.training``, the
prepared world's train split), so its peak memory is that process's peak resident set. Prints JSON:

* per context: pretraining wall time, peak RSS, the share of caption tokens past the context (what a
  truncating tokenizer loses) and, with ``--probe``, the dense zero-shot probe (pixel accuracy with
  name vs attribute prompts) and held-out retrieval R@1;
* ``time_ratio`` and ``peak_memory_ratio``: 77 over 32, measured in the same run.

    python benchmarks/bench_clip_context.py [--steps 160] [--probe] [--threads 2]

Needs the prepared world (``kedro run --pipelines=data_preparation``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import add_project_arguments, emit_report, load_manifest, load_parameters  # noqa: E402

CONTEXTS = {32: "TinyCLIP-ViT-8-96-ctx32", 77: "TinyCLIP-ViT-8-96"}


def run_child(project: Path, env: str, model_name: str, steps: int | None, probe: bool, threads: int) -> dict:
    import torch

    from seg_pipelines.datasets.factory import create_reader
    from seg_pipelines.experiments import clip_pretraining as engine

    torch.set_num_threads(threads)
    params = load_parameters(project, env)["clip_pretraining"]
    config = engine.ClipPretrainingConfig(**params["training"])
    config = replace(config, model_name=model_name, **({"steps": steps} if steps else {}))
    manifest = load_manifest(project)
    reader = create_reader("synthetic", manifest["root"])
    train = engine.load_captioned_split(reader, params.get("train_split", "train"))
    start = time.perf_counter()
    model, curve = engine.pretrain_clip(train, config, show_progress=False)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = engine.training_caption_tokens(train, config)
    measured = {
        "model_name": model_name,
        "context_length": engine.text_context_length(model_name),
        "steps": config.steps,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_mib, 1),
        "final_loss": round(curve[-1]["loss"], 4) if curve else None,
        "share_of_caption_tokens_past_context": round(
            tokens[f"context_{engine.text_context_length(model_name)}"]["share_of_tokens_lost"], 4
        ),
    }
    if probe:
        model.eval()
        val = engine.load_captioned_split(reader, params.get("eval_split", "val"))
        retrieval, zero_shot = engine.held_out_probes(model, config, val, reader.world)
        measured["retrieval_image_to_text_r1"] = round(retrieval["image_to_text_recall_at_1"], 4)
        for prompts in ("name_prompts", "attribute_prompts"):
            for key, value in zero_shot[prompts].items():
                if isinstance(value, float):
                    measured[f"zero_shot.{prompts}.{key}"] = round(value, 4)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_arguments(parser)
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps (default: the env's)")
    parser.add_argument("--probe", action="store_true", help="also the zero-shot probe and retrieval R@1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    project = Path(args.project)
    if args.child:
        print(json.dumps(run_child(project, args.env, args.child, args.steps, args.probe, args.threads)))
        return
    if not (project / "data/01_raw/dataset_manifest.json").is_file():
        raise SystemExit("no prepared world: run `kedro run --pipelines=data_preparation` first")
    results = {}
    for context, model_name in CONTEXTS.items():
        command = [sys.executable, __file__, "--child", model_name, "--project", str(project), "--env", args.env]
        command += ["--threads", str(args.threads)] + (["--steps", str(args.steps)] if args.steps else [])
        command += ["--probe"] if args.probe else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[f"context_{context}"] = json.loads(output.strip().splitlines()[-1])
    short, full = results["context_32"], results["context_77"]
    report = {
        "benchmark": "clip_context",
        "device": "cpu",
        "threads": args.threads,
        "results": results,
        "time_ratio_77_over_32": round(full["seconds"] / short["seconds"], 3),
        "peak_memory_ratio_77_over_32": round(full["peak_rss_mib"] / short["peak_rss_mib"], 3),
    }
    lines = ["| context | seconds | peak RSS MiB | caption tokens past context |", "|---|---|---|---|"]
    lines += [
        f"| {r['context_length']} | {r['seconds']} | {r['peak_rss_mib']} | "
        f"{r['share_of_caption_tokens_past_context']} |"
        for r in results.values()
    ]
    emit_report(report, "\n".join(lines), args.output)


if __name__ == "__main__":
    main()

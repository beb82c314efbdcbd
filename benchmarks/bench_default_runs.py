"""Wall time of one default run, the path before issue 15's second round vs now, in one benchmark run.

Runs (the prepared synthetic world is needed: ``kedro run --pipelines=data_preparation``):

* ``closed_set``: one model of ``kedro run --pipelines=caa`` on the default env (the FCN baseline:
  resnet_tiny, 96 px, batch 8, ``_closed_set.training.iterations``, the real data path, wall-clock
  checkpoints, then the val evaluation), as ``experiments.closed_set.train_segmentor`` +
  ``evaluate_segmentor`` run it;
* ``lsmseg``: one model of ``kedro run --pipelines=lsmseg`` (``lsmseg.models.lsmseg``: train on the
  seen vocabulary, then the six benchmarks), as ``experiments.lsmseg.train_ovss`` +
  ``evaluate_models_on_benchmarks`` run it. The tiny CLIP starts from random weights here (the
  clip_pretraining checkpoint changes the numbers, not the cost).

Paths: ``old`` is the code before this change: logits upsampled in the segmentor's forward, then
``F.cross_entropy`` (``model(images, target)``), and glibc's default allocator
(``SEG_PIPELINES_KEEP_FREED_MEMORY=0``); ``new`` is the default: ``engine.training.default_loss``
(head-resolution logits, the fused ``losses.cross_entropy.upsampled_cross_entropy``) and
``engine.runtime.keep_freed_cpu_memory``. Each (run, path) is one child process of this script, in
the order old, new per run, so each path starts from a fresh allocator. Neither change reaches the
lsmseg run (its OVSS loop computes a per-pixel BCE and calls neither); its ``old`` path evaluates
every benchmark on its own, ``new`` lets a benchmark with the same classes, prompts, images and
labels as an earlier one share its scores (syn847 / synpc459). ``parallel`` is ``new`` as
``kedro run --runner=ParallelRunner`` with ``OMP_NUM_THREADS=1`` runs a pipeline's two models: two
``new`` children at once, one thread each (``caa`` trains the baseline and
the method, ``lsmseg`` CAT-Seg and LSMSeg, independent nodes); its ``wall_per_model_s`` is the pair's
wall time / 2, set against ``old`` and ``new`` run one model at a time with the default threads.
The tiny models scale poorly over threads, so two 1-thread runs side by side beat one 2-thread run
after the other. Every child measures the
fp32 matmul peak itself. With ``--iterations N`` (fewer than the default), the train time is
extrapolated to the default iteration count from the measured per-iteration time
(``estimated_default_run_s`` = fixed costs + per-iteration time × default iterations); the mIoU
then is that of the shorter run.

    python benchmarks/bench_default_runs.py [--runs closed_set lsmseg] [--iterations N]
        [--closed-set-iterations N] [--lsmseg-iterations N] [--no-parallel] [--output f.json]

Threads: what the default run uses (closed-set: torch's default, i.e. ``OMP_NUM_THREADS`` when set;
lsmseg: ``lsmseg.num_threads``). Prints one JSON object; state the machine's load when quoting it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _project import emit_report, matmul_peak_gflops  # noqa: E402


def _old_loss(model, batch, iteration):
    """The loss before this change: logits upsampled in forward, then the segmentor's CE on them."""
    outputs = model(batch["image"], batch["label"])
    return model.losses(outputs, batch["label"])


def _step_gflop(model, dataset, batch_size: int) -> float:
    """Forward + backward FLOPs of one step (``torch.utils.flop_counter``, the old path's operators)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    items = [dataset[i] for i in range(batch_size)]
    batch = {"image": torch.stack([x["image"] for x in items]), "label": torch.stack([x["label"] for x in items])}
    counter = FlopCounterMode(display=False)
    with counter:
        _old_loss(model, batch, 0)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def closed_set_child(path: str, iterations: int | None, threads: int | None = None) -> dict:
    import pandas as pd
    import torch

    if threads:
        torch.set_num_threads(threads)

    from _project import load_manifest, load_parameters
    from seg_pipelines.engine.training import TrainConfig, default_loss, train
    from seg_pipelines.experiments import closed_set as cs

    params = load_parameters(ROOT, "local")["caa"]
    manifest = load_manifest(ROOT)
    index = pd.read_parquet(ROOT / "data/03_primary/prepared_index.parquet")
    training = dict(params["training"])
    default_iterations = int(training["iterations"])
    training["iterations"] = iterations or default_iterations
    config = TrainConfig(**training)
    model_config = cs.closed_set_model_config(
        params["model"], num_classes=int(manifest["num_classes"]), ignore_index=int(manifest["ignore_index"])
    )
    peak = matmul_peak_gflops()
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    model = cs.build_segmentor(model_config)
    dataset = cs.build_split_dataset(index, manifest, "train", params["augmentation"], train=True)
    built = time.perf_counter()
    with tempfile.TemporaryDirectory() as checkpoints:
        curve = train(
            model,
            dataset,
            config,
            checkpoints,
            loss_fn=default_loss if path == "new" else _old_loss,
            show_progress=False,
        )
    trained = time.perf_counter()
    per_class = cs.evaluate_segmentor(model, manifest, index, params["evaluation"], params["augmentation"], False)
    evaluated = time.perf_counter()
    flops = _step_gflop(cs.build_segmentor(model_config).train(), dataset, config.batch_size)
    return {
        "iterations": config.iterations,
        "default_iterations": default_iterations,
        "threads": torch.get_num_threads(),
        "build_s": built - start,
        "train_s": trained - built,
        "evaluate_s": evaluated - trained,
        "final_loss": curve[-1]["loss"],
        "mIoU": cs.summarize_per_class(per_class)["mIoU"],
        "step_gflop": flops,
        "matmul_peak_gflops": peak,
    }


def lsmseg_child(path: str, iterations: int | None, threads: int | None = None) -> dict:
    import pandas as pd
    import torch

    from _project import load_manifest, load_parameters
    from seg_pipelines.experiments import lsmseg
    from seg_pipelines.models.ovss.clip import load_clip

    params = load_parameters(ROOT, "local")["lsmseg"]
    if threads:
        params["num_threads"] = threads
    if path == "old":  # every benchmark evaluated on its own (no two share a vocabulary key)
        lsmseg._vocabulary_key = lambda record: (id(record),)
    manifest = load_manifest(ROOT)
    index = pd.read_parquet(ROOT / "data/03_primary/prepared_index.parquet")
    default_iterations = int(params["training"]["iterations"])
    params["training"] = {**params["training"], "iterations": iterations or default_iterations}
    peak = matmul_peak_gflops()
    with tempfile.TemporaryDirectory() as work:
        clip_path = Path(work) / "clip.pt"
        torch.manual_seed(0)
        torch.save(load_clip(params["clip"]["model"], None).state_dict(), clip_path)
        params["checkpoint_dir"] = str(Path(work) / "runs")
        plan = lsmseg.validate_lsmseg_inputs(
            manifest, {"model_name": params["clip"]["model"]}, str(clip_path), None, params
        )
        start = time.perf_counter()
        model, curve = lsmseg.train_ovss(index, manifest, plan, params, "lsmseg")
        trained = time.perf_counter()
    miou, _, _ = lsmseg.evaluate_models_on_benchmarks({"lsmseg": model}, index, manifest, plan, params)
    evaluated = time.perf_counter()
    return {
        "iterations": params["training"]["iterations"],
        "default_iterations": default_iterations,
        "threads": torch.get_num_threads(),
        "build_s": (trained - start) - curve[-1]["seconds"],  # model, dataset, prompt tokens
        "train_s": curve[-1]["seconds"],  # the training loop (train_ovss's own clock)
        "evaluate_s": evaluated - trained,
        "final_loss": curve[-1]["loss"],
        "mIoU": 100.0 * sum(miou["lsmseg"].values()) / len(miou["lsmseg"]),  # mean over the benchmarks
        "mIoU_per_benchmark": {k: 100.0 * v for k, v in miou["lsmseg"].items()},
        "matmul_peak_gflops": peak,
    }


def _summarise(old: dict, new: dict, parallel: list[dict] | None = None) -> dict:
    result = {"old": old, "new": new}
    for record in (old, new, *(parallel or [])):
        per_iteration = record["train_s"] / record["iterations"]
        record["it_per_s"] = 1.0 / per_iteration
        record["wall_s"] = record["build_s"] + record["train_s"] + record["evaluate_s"]
        record["estimated_default_run_s"] = (
            record["build_s"] + per_iteration * record["default_iterations"] + record["evaluate_s"]
        )
        if "step_gflop" in record:
            record["gflops"] = record["step_gflop"] * record["it_per_s"]
            record["fraction_of_matmul_peak"] = record["gflops"] / record["matmul_peak_gflops"]
    result["ratio_wall"] = old["wall_s"] / new["wall_s"]
    result["ratio_estimated_default_run"] = old["estimated_default_run_s"] / new["estimated_default_run_s"]
    result["ratio_it_per_s"] = new["it_per_s"] / old["it_per_s"]
    result["mIoU_difference_new_minus_old"] = new["mIoU"] - old["mIoU"]
    if parallel:
        pair_wall = max(r["process_s"] for r in parallel)  # both started together
        result["parallel"] = {
            "runs": parallel,
            "pair_process_s": pair_wall,
            "wall_per_model_s": pair_wall / len(parallel),
            # one model at a time: the child's process wall time (imports, build, train, evaluate)
            "old_process_s": old["process_s"],
            "new_process_s": new["process_s"],
            "ratio_old_vs_parallel_per_model": old["process_s"] / (pair_wall / len(parallel)),
            "ratio_new_vs_parallel_per_model": new["process_s"] / (pair_wall / len(parallel)),
            "mIoU_difference_parallel_minus_new": parallel[0]["mIoU"] - new["mIoU"],
        }
    return result


def _children(run: str, path: str, iterations: int | None, copies: int, threads: int | None) -> list[dict]:
    """``copies`` child processes of (run, path) started together; their RESULT records."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SEG_PIPELINES_KEEP_FREED_MEMORY": "1"}
    if path == "old":
        env["SEG_PIPELINES_KEEP_FREED_MEMORY"] = "0"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, __file__, "--child", run, path]
    if iterations:
        command += ["--iterations", str(iterations)]
    if threads:
        command += ["--threads", str(threads)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(copies)
    ]
    records = []
    for process in processes:
        stdout, stderr = process.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"{run}/{path} failed:\n{stderr[-4000:]}")
        records.append(
            {
                **json.loads(lines[-1][len("RESULT ") :]),
                "process_s": time.perf_counter() - started,
                "load_average_end": os.getloadavg(),
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["closed_set", "lsmseg"], choices=["closed_set", "lsmseg"])
    parser.add_argument("--iterations", type=int, default=None, help="train iterations (default: the conf's)")
    parser.add_argument("--closed-set-iterations", type=int, default=None, help="--iterations of closed_set only")
    parser.add_argument("--lsmseg-iterations", type=int, default=None, help="--iterations of lsmseg only")
    parser.add_argument("--no-parallel", action="store_true", help="skip the two-workers path")
    parser.add_argument("--output", default=None)
    parser.add_argument("--child", nargs=2, metavar=("RUN", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run, path = args.child
        record = (closed_set_child if run == "closed_set" else lsmseg_child)(path, args.iterations, args.threads)
        print("RESULT " + json.dumps(record))
        return
    report: dict = {
        "load_average_start": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "matmul_peak_gflops": matmul_peak_gflops(),
    }
    for run in args.runs:
        iterations = getattr(args, f"{run}_iterations") or args.iterations
        records = {path: _children(run, path, iterations, copies=1, threads=None)[0] for path in ("old", "new")}
        parallel = None if args.no_parallel else _children(run, "new", iterations, copies=2, threads=1)
        report[run] = _summarise(records["old"], records["new"], parallel)
    report["load_average_end"] = os.getloadavg()
    emit_report(report, None, args.output)


if __name__ == "__main__":
    main()

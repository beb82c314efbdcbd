"""Thesis-size smoke run: every model at the thesis's size through the real Kedro pipelines with ``--env thesis``
plus a small override, on tiny fixtures written in the real layouts, random weights (``make thesis-smoke``).

Closed-set rows (ADE20K-150 fixture, 512x640 images): per head one process runs ``data_preparation`` (once),
then the ``closed_set`` pipeline's nodes of that head's rows (``caa.train_baseline`` = the plain head,
``caa.train_method`` = +CAA, ``ecac.train_method`` = +ECAC): 2 iterations at batch 2 on 512² crops,
checkpoints through the catalog to disk and back (``weights_only=True``), slide evaluation (512 / 341); then
the same evaluation nodes in whole mode, and the ``evaluate`` and ``predict`` pipelines on one checkpoint per
head. Open-vocabulary rows: the ``lsmseg`` pipeline
(CAT-Seg baseline and LSMSeg on open_clip ViT-B/16 at 384, SAM ViT-L as conf/thesis, k = 32; clip_pretraining
skips itself on a real dataset) trained on a COCO-Stuff-164k fixture (171 classes), evaluated on an ADE-847
benchmark dataset with CAT-Seg's sliding window (one image), then the ``evaluate`` pipeline on the LSMSeg weights.
Random weights come from files in the real formats (open_clip ViT-B/16 state dict at 224 px, segment_anything SAM
of conf/thesis's variant).

Seconds and peak RSS are per node (a Kedro hook; the peak is reset before each node through
``/proc/self/clear_refs``): a row's ``s_per_iter`` is its training node's seconds / 2 (model build and
checkpoint included). A group whose memory estimate exceeds ``MemAvailable`` is reported as not run.

    OMP_NUM_THREADS=2 python benchmarks/thesis_smoke.py --rows fcn fcn+caa catseg --output smoke.json
    python benchmarks/thesis_smoke.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEADS = ("fcn", "pspnet", "deeplabv3", "deeplabv3plus", "upernet", "ccnet", "isnet")
CLOSED_SET_ROWS = [f"{head}{addon}" for head in HEADS for addon in ("", "+caa", "+ecac")] + ["fcn@r101"]
OVSS_ROWS = ["catseg", "lsmseg", "lsmseg+sam1024"]
ROWS = CLOSED_SET_ROWS + OVSS_ROWS
#: Memory (GiB) a group needs free before it starts (measured: FCN R50 ≈ 5; CAT-Seg training at batch 2 > 20).
NEEDS_GIB = {"ovss+sam1024": 18.0, "ovss": 14.0}
DEFAULT_NEED_GIB = 7.0
#: closed-set row → (pipeline namespace, variant): the plain head is the caa comparison's baseline
VARIANTS = {"": ("caa", "baseline"), "caa": ("caa", "method"), "ecac": ("ecac", "method")}


def available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def group_of(row: str) -> str:
    """Rows that one process runs together: a head (and backbone) of the closed set, or the OVSS pair."""
    if row in OVSS_ROWS:
        return "ovss+sam1024" if row.endswith("sam1024") else "ovss"
    name, _, backbone = row.partition("@")
    return f"{name.partition('+')[0]}@{backbone or 'r50'}"


class NodeMeter:
    """Kedro hook: wall seconds and peak RSS (GiB) of every node. The kernel's peak (VmHWM) is reset before
    each node (``echo 5 > /proc/self/clear_refs``); where that is refused the peak is the process's so far."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self._start = 0.0
        self.scope = "node"

    def before_node_run(self, node) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.scope = "process"
        self._start = time.perf_counter()

    def after_node_run(self, node) -> None:
        peak = next(
            (
                int(line.split()[1]) / 2**20
                for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:")
            ),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        )
        self.nodes[node.name] = {
            "seconds": time.perf_counter() - self._start,
            "peak_rss_GiB": peak,
            "scope": self.scope,
        }


def _hooked(meter: NodeMeter):
    from kedro.framework.hooks import hook_impl

    class _Hook:
        @hook_impl
        def before_node_run(self, node):
            meter.before_node_run(node)

        @hook_impl
        def after_node_run(self, node):
            meter.after_node_run(node)

    return _Hook()


def thesis_params(key: str) -> float | None:
    """Decode-head (+ add-on) parameters in M printed by Tables 3.5 / 4.6 (ResNet-50, 150 classes), or the
    whole model's in Table 5.8."""
    from seg_pipelines.thesis_tables import TABLE_3_5, TABLE_4_6, TABLE_5_8

    for table, column in ((TABLE_3_5, "Params(M)"), (TABLE_4_6, "Params(M)"), (TABLE_5_8, "Params (M)")):
        if key in table.reference():
            return float(table.reference()[key][column])
    return None


def write_fixtures(workdir: Path) -> dict[str, Path]:
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.fixtures.layouts import write_ade20k_150, write_ade20k_847, write_coco_stuff_164k

    roots = {"ade150": workdir / "ade150", "coco": workdir / "coco", "ade847": workdir / "ade847"}
    if not roots["ade150"].exists():
        write_ade20k_150(roots["ade150"], n_train=2, n_val=1, size=(512, 640))
        write_coco_stuff_164k(roots["coco"], n_train=2, n_val=1, size=(384, 512))
        write_ade20k_847(roots["ade847"], n_train=1, n_val=1, size=(512, 640))
    return roots


def kedro_project(workdir: Path, name: str) -> Path:
    """A throw-away copy of the Kedro project (conf/, pyproject.toml) under ``workdir``: the smoke run's
    data, checkpoints and MLflow store stay there, never in the user's data/."""
    project = workdir / name
    if not (project / "pyproject.toml").exists():
        shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
        (project / "conf" / "local").mkdir()
        (project / "src").mkdir()
        for file_name in ("pyproject.toml", ".telemetry"):
            if (PROJECT_ROOT / file_name).exists():
                shutil.copy(PROJECT_ROOT / file_name, project / file_name)
    return project


def kedro_run(project: Path, runtime_params: dict[str, Any], **run_args: Any) -> tuple[float, dict[str, Any]]:
    """``kedro run --env thesis --params ...`` in ``project`` (this process) → (seconds, per-node meter)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    os.chdir(project)
    bootstrap_project(project)
    meter = NodeMeter()
    start = time.perf_counter()
    with KedroSession.create(project_path=project, env="thesis", runtime_params=runtime_params) as session:
        session._hook_manager.register(_hooked(meter))  # Kedro has no public per-session hook registration
        session.run(**run_args)
    return time.perf_counter() - start, meter.nodes


def closed_set_runtime_params(head: str, backbone: str, root: Path) -> dict[str, Any]:
    """The small override of ``--env thesis`` for one head: the fixture, 2 iterations at batch 2, random
    weights, CPU (no bf16 autocast), slide evaluation; everything else is the thesis's."""
    block = {
        "model": {"head": head, "backbone": backbone, "pretrained_path": None},
        "training": {"iterations": 2, "batch_size": 2, "log_interval": 1, "checkpoint_interval": 2, "amp_dtype": None},
        "evaluation": {"split": "val", "mode": "slide", "batch_size": 1, "crop_size": [512, 512], "stride": [341, 341]},
    }
    return {
        "dataset": {"family": "ade20k_150", "root": str(root), "splits": ["train", "val"]},
        "caa": block,
        "ecac": block,
    }


def evaluate_params(checkpoint: Path, dataset: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"evaluate": {"checkpoint": str(checkpoint), "dataset": dataset, "show_progress": False, **options}}


def predict_once(project: Path, model: dict[str, Any], images: Path, **options: Any) -> dict[str, Any]:
    """The ``predict`` pipeline on the image folder ``images`` → seconds, peak RSS, files written."""
    output = project / "data/07_model_output/predictions"
    shutil.rmtree(output, ignore_errors=True)
    _, nodes = kedro_run(
        project,
        {"predict": {"input": str(images), "show_progress": False, **model, **options}},
        pipeline_names=["predict"],
    )
    node = next(iter(nodes.values()))
    return {
        "predict_seconds": node["seconds"],
        "predict_peak_rss_GiB": node["peak_rss_GiB"],
        "predict_files": sorted(path.name for path in output.glob("*.png")),
    }


def run_closed_set(group: str, rows: list[str], workdir: Path, roots: dict[str, Path]) -> list[dict[str, Any]]:
    """The rows of one head: see the module docstring."""
    import pandas as pd

    from seg_pipelines.engine.profiling import count_parameters
    from seg_pipelines.experiments.closed_set import load_segmentor, summarize_per_class

    head, _, tag = group.partition("@")
    backbone = "resnet101c" if tag == "r101" else "resnet50c"
    project = kedro_project(workdir, "ade150_project")
    dataset = {"family": "ade20k_150", "root": str(roots["ade150"]), "splits": ["train", "val"]}
    if not (project / "data/01_raw/dataset_manifest.json").exists():
        kedro_run(project, {"dataset": dataset}, pipeline_names=["data_preparation"])
    shutil.rmtree(project / "data/06_models/closed_set_runs", ignore_errors=True)  # train afresh, no resume
    variants = {row: VARIANTS[row.partition("@")[0].partition("+")[2]] for row in rows}
    node_names = sorted(
        {f"{ns}.build_model_configs" for ns, _ in variants.values()}
        | {f"{ns}.{step}_{variant}" for ns, variant in variants.values() for step in ("train", "evaluate")}
    )
    _, nodes = kedro_run(
        project,
        closed_set_runtime_params(head, backbone, roots["ade150"]),
        pipeline_names=["closed_set"],
        node_names=node_names,
    )
    whole_params = closed_set_runtime_params(head, backbone, roots["ade150"])
    for block in ("caa", "ecac"):
        whole_params[block]["evaluation"] = {"split": "val", "mode": "whole", "batch_size": 1}
    slide_files = {
        row: project / f"data/07_model_output/{ns}/{v}_evaluation.parquet" for row, (ns, v) in variants.items()
    }
    slides = {row: pd.read_parquet(path) for row, path in slide_files.items()}
    _, whole_nodes = kedro_run(  # the same nodes in whole mode, checkpoints read back from disk
        project,
        whole_params,
        pipeline_names=["closed_set"],
        node_names=sorted({f"{ns}.evaluate_{v}" for ns, v in variants.values()}),
    )
    results = []
    for position, (row, (namespace, variant)) in enumerate(variants.items()):
        addon = row.partition("@")[0].partition("+")[2]
        checkpoint = project / f"data/06_models/{namespace}/{variant}.pt"
        whole = pd.read_parquet(slide_files[row])
        tools: dict[str, Any] = {}
        if position == len(variants) - 1:  # the predict and evaluate tools on one checkpoint of the head
            _, tool_nodes = kedro_run(
                project,
                evaluate_params(checkpoint, {**dataset, "split": "val"}, mode="whole"),
                pipeline_names=["evaluate"],
            )
            evaluated = json.loads((project / "data/08_reporting/evaluation_metrics.json").read_text())["evaluate"]
            tools = {
                "evaluate_pipeline_seconds": next(iter(tool_nodes.values()))["seconds"],
                "evaluate_pipeline_mIoU": evaluated["mIoU"],
                **predict_once(
                    project, {"checkpoint": str(checkpoint)}, roots["ade150"] / "ADEChallengeData2016/images/validation"
                ),
            }
        model = load_segmentor(checkpoint, num_classes=150)  # weights_only=True
        head_params = count_parameters(model.decode_head) + (count_parameters(model.addon) if model.addon else 0)
        head_params -= sum(p.numel() for p in model.decode_head.conv_seg.parameters()) if model.addon else 0
        curve = pd.read_parquet(project / f"data/07_model_output/{namespace}/{variant}_training_curve.parquet")
        train, evaluate = nodes[f"{namespace}.train_{variant}"], nodes[f"{namespace}.evaluate_{variant}"]
        whole_node = whole_nodes[f"{namespace}.evaluate_{variant}"]
        results.append(
            {
                "row": row,
                "status": "ok",
                "path": f"closed_set --nodes={namespace}.train_{variant},… (--env thesis)",
                "model": f"{head}{'+' + addon.upper() if addon else ''} {backbone}-D8",
                "params_M": count_parameters(model) / 1e6,
                "head_params_M": head_params / 1e6,
                "thesis_head_params_M": thesis_params(f"{head}+{addon}" if addon else head),
                "s_per_iter": train["seconds"] / 2,
                "train_peak_rss_GiB": train["peak_rss_GiB"],
                "losses": [round(float(v), 4) for v in curve["loss"].tolist()],
                "checkpoint_MB": checkpoint.stat().st_size / 2**20,
                "eval_slide_seconds": evaluate["seconds"],
                "eval_slide_peak_rss_GiB": evaluate["peak_rss_GiB"],
                "eval_slide_mIoU": summarize_per_class(slides[row])["mIoU"],
                "eval_whole_seconds": whole_node["seconds"],
                "eval_whole_mIoU": summarize_per_class(whole)["mIoU"],
                "peak_rss_GiB": max(train["peak_rss_GiB"], evaluate["peak_rss_GiB"], whole_node["peak_rss_GiB"]),
                "rss_scope": train["scope"],
                **tools,
            }
        )
        del model
    return results


def thesis_sam_variant() -> str:
    """The SAM of ``--env thesis``'s LSMSeg (conf/thesis/parameters_lsmseg.yml: ``vit_l``, Table 5.1's headline)."""
    import yaml

    params = yaml.safe_load((PROJECT_ROOT / "conf/thesis/parameters_lsmseg.yml").read_text())
    return params["lsmseg"]["models"]["lsmseg"]["sam_variant"]


def random_checkpoints(workdir: Path, sam_variant: str) -> dict[str, Path]:
    """Random-init weights in the real files' formats, written once: an open_clip ViT-B/16 state dict (at its
    native 224 px: the pipeline resizes the position embedding to 384, as for OpenAI's file) and a full
    segment_anything SAM checkpoint of ``sam_variant`` in segment_anything's key layout (the pipeline keeps
    its image encoder)."""
    import torch

    paths = {"clip": workdir / "random_vit_b16.pt", "sam": workdir / f"random_sam_{sam_variant}.pth"}
    if not paths["clip"].exists():
        from seg_pipelines.models.ovss.clip import load_clip

        torch.manual_seed(0)
        torch.save(load_clip("ViT-B-16", None).state_dict(), paths["clip"])
    if not paths["sam"].exists():
        from segment_anything import sam_model_registry

        torch.manual_seed(0)
        torch.save(sam_model_registry[sam_variant]().state_dict(), paths["sam"])
    return paths


def ovss_runtime_params(roots: dict[str, Path], weights: dict[str, Path], sam_image_size: int | None) -> dict:
    """The small override of ``--env thesis`` for the ``lsmseg`` pipeline: the COCO-Stuff-164k fixture (171
    training classes), A-847 as the one benchmark (CAT-Seg slide, one image), local random weights,
    2 iterations at batch 1, template prompts (no attribute-selection run); the rest is the thesis's."""
    benchmark = {"name": "A-847", "family": "ade20k_847", "root": str(roots["ade847"]), "split": "val"}
    return {
        "dataset": {"family": "coco_stuff_164k", "root": str(roots["coco"]), "splits": ["train", "val"]},
        "lsmseg": {
            "benchmarks": [benchmark],
            "prompts": "templates",
            "clip": {"pretrained": str(weights["clip"])},
            "models": {"lsmseg": {"sam_checkpoint": str(weights["sam"]), "sam_image_size": sam_image_size}},
            # batch 1: CAT-Seg at batch 2 (171 classes, 384²) passed 20 GiB on this 24 GiB CPU machine
            "training": {"iterations": 2, "batch_size": 1, "log_interval": 1, "checkpoint_interval": 2},
            "evaluation": {"limit": 1},
            "seen_unseen_table_benchmark": "A-847",
            "figures": {"cost_map_classes": ["wall", "building"], "qualitative_images": 1},
        },
    }


def run_ovss(group: str, rows: list[str], workdir: Path, roots: dict[str, Path]) -> list[dict[str, Any]]:
    """The ``lsmseg`` pipeline with ``--env thesis`` (CAT-Seg baseline and LSMSeg), then the ``evaluate``
    pipeline on the LSMSeg weights (reloaded with ``weights_only=True`` through ``lsmseg_model_config.json``)."""
    from seg_pipelines.engine.profiling import count_parameters
    from seg_pipelines.experiments import inference

    sam_image_size = 1024 if group.endswith("sam1024") else None  # None: SAM at the CLIP size (384)
    project = kedro_project(workdir, "coco_project")
    shutil.rmtree(project / "data/06_models/lsmseg_training", ignore_errors=True)  # train afresh, no resume
    sam_variant = thesis_sam_variant()
    weights = random_checkpoints(workdir, sam_variant)
    _, nodes = kedro_run(project, ovss_runtime_params(roots, weights, sam_image_size), pipeline_names=["lsmseg"])
    models_dir = project / "data/06_models"
    described = json.loads((models_dir / "lsmseg_model_config.json").read_text())
    metrics = json.loads((project / "data/08_reporting/lsmseg_metrics.json").read_text())["ovss"]
    _, evaluate_nodes = kedro_run(
        project,
        evaluate_params(
            models_dir / "lsmseg.pt",
            {"family": "ade20k_847", "root": str(roots["ade847"]), "split": "val"},
            model_config=str(models_dir / "lsmseg_model_config.json"),
            model_key="lsmseg",
            mode="slide",
            crop_size=384,
            output_size=640,
            limit=1,
        ),
        pipeline_names=["evaluate"],
    )
    evaluated = json.loads((project / "data/08_reporting/evaluation_metrics.json").read_text())["evaluate"]
    evaluation = nodes["evaluate_ovss_benchmarks"]
    results = []
    for row in rows:
        key = "baseline" if row == "catseg" else "lsmseg"
        record = described[key]
        loaded = inference.load_inference_model(
            {
                "checkpoint": str(models_dir / ("catseg_baseline.pt" if key == "baseline" else "lsmseg.pt")),
                "model_config": str(models_dir / "lsmseg_model_config.json"),
                "model_key": key,
            }
        )  # weights_only=True
        train = nodes["train_catseg_baseline" if key == "baseline" else "train_lsmseg"]
        sam_params = count_parameters(loaded.module.sam) if getattr(loaded.module, "sam", None) is not None else 0
        kwargs = record["kwargs"]
        detail = (
            f" + SAM {kwargs.get('sam_variant')}@{sam_image_size or 384}, k = {kwargs.get('top_k')}"
            if key == "lsmseg"
            else f", pad_len {kwargs.get('top_k')}"
        )
        result = {
            "row": row,
            "status": "ok",
            "path": "kedro run --env thesis --pipelines=lsmseg (clip_pretraining skipped: real dataset); evaluate",
            "model": f"{record['architecture']} ViT-B/16@384{detail}",
            "params_M": count_parameters(loaded.module) / 1e6,
            "sam_params_M": sam_params / 1e6,
            # Table 5.8 prints CAT-Seg and "LSMSeg (w/o SAM)": compare it with the model less its SAM
            "params_without_sam_M": (count_parameters(loaded.module) - sam_params) / 1e6,
            "thesis_params_M": thesis_params(record["architecture"]),
            "train_classes": len(described.get("train_classes", [])) or 171,
            "eval_classes": 847,
            "s_per_iter": train["seconds"] / 2,
            "train_peak_rss_GiB": train["peak_rss_GiB"],
            "losses": [round(r["loss"], 4) for r in record["curve"]],
            "eval_A847_one_image_seconds": metrics[key]["A-847"]["seconds"],
            "eval_A847_mIoU": metrics[key]["A-847"]["mIoU"],
            "eval_node_seconds_both_models": evaluation["seconds"],
            "eval_node_peak_rss_GiB": evaluation["peak_rss_GiB"],
            "peak_rss_GiB": max(train["peak_rss_GiB"], evaluation["peak_rss_GiB"]),
            "rss_scope": train["scope"],
        }
        if key == "lsmseg":
            node = next(iter(evaluate_nodes.values()))
            result.update(
                predict_once(
                    project,
                    {
                        "checkpoint": str(models_dir / "lsmseg.pt"),
                        "model_config": str(models_dir / "lsmseg_model_config.json"),
                        "model_key": "lsmseg",
                        "classes": ["wall", "building", "sky", "person", "grass"],
                    },
                    roots["ade847"] / "ADE20K_2021_17_01/images_detectron2/validation",
                    mode="slide",
                    crop_size=384,
                )
            )
            result.update(
                evaluate_pipeline_seconds=node["seconds"],
                evaluate_pipeline_peak_rss_GiB=node["peak_rss_GiB"],
                evaluate_pipeline_mIoU=evaluated["mIoU"],
            )
        results.append(result)
        del loaded
    return results


def run_group_here(group: str, rows: list[str], workdir: Path) -> list[dict[str, Any]]:
    roots = write_fixtures(workdir)
    start = time.perf_counter()
    try:
        results = (run_ovss if group.startswith("ovss") else run_closed_set)(group, rows, workdir, roots)
    except Exception as error:  # reported in the rows; the next group still runs
        import traceback

        failure = {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "trace": traceback.format_exc()[-3000:],
        }
        results = [{"row": row, **failure} for row in rows]
    for result in results:
        result["group_seconds"] = time.perf_counter() - start
        result["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=ROWS, help=f"rows to run (default all): {ROWS}")
    parser.add_argument("--workdir", default=str(PROJECT_ROOT / "data/09_thesis_smoke"))
    parser.add_argument("--output", default=None)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--one-group", nargs="+", default=None, help=argparse.SUPPRESS)  # internal: GROUP ROW...
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(ROWS))
        return []
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.one_group:
        group, *rows = args.one_group
        print("ROWS " + json.dumps(run_group_here(group, rows, workdir)), flush=True)
        return []
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {ROWS}")
    groups: dict[str, list[str]] = {}
    for row in args.rows:
        groups.setdefault(group_of(row), []).append(row)
    if "ovss+sam1024" in groups:  # the largest last, when everything else has finished
        groups["ovss+sam1024"] = groups.pop("ovss+sam1024")
    results: list[dict[str, Any]] = []
    for group, rows in groups.items():
        need, free = NEEDS_GIB.get(group, DEFAULT_NEED_GIB), available_gib()
        if free < need:
            found = [
                {"row": row, "status": "not run", "reason": f"needs ~{need} GiB, {free:.1f} GiB available"}
                for row in rows
            ]
        else:
            command = [sys.executable, __file__, "--one-group", group, *rows, "--workdir", str(workdir)]
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(PROJECT_ROOT / "src"))},
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("ROWS ")]
            found = (
                json.loads(lines[-1][5:])
                if lines
                else [{"row": row, "status": "failed", "error": done.stderr[-3000:]} for row in rows]
            )
        results += found
        for result in found:
            print(json.dumps(result), flush=True)
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if all(r.get("status") in ("ok", "not run") for r in rows) else 1)

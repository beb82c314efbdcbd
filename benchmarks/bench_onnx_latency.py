"""ONNX Runtime (CPU) vs PyTorch eager latency per image: FCN, FCN+CAA, FCN+ECAC and LSMSeg at the embedded size.

Each model is built as the project's parameters configure it (conf/base: ``_closed_set.model``, the ``caa``
and ``ecac`` add-on settings, the ``lsmseg`` CLIP/SAM/head settings; random weights), exported the way
``kedro run --pipelines=export`` does (:mod:`seg_pipelines.experiments.export`: dynamic H/W, LSMSeg with a
fixed vocabulary of ``--vocabulary`` classes baked in) and timed on one image of the embedded size (the
synthetic world's 96x96), one thread each, calls of the two alternating (median of ``--repeats``):
PyTorch eager (``torch.set_num_threads(1)``, the model as ``predict`` runs it) against ONNX Runtime's CPU
provider (``intra_op_num_threads=1``). The ONNX logits are checked against PyTorch's on the timed image.

    OMP_NUM_THREADS=1 python benchmarks/bench_onnx_latency.py [--image-size 96] [--repeats 20] [--output f.json]

Prints one JSON object: per model, median ms per image of both, onnx/pytorch ratio, max abs difference.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from _project import add_project_arguments, emit_report, load_parameters
from seg_pipelines.engine.onnx_export import OnnxSegmentor, export_onnx
from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config
from seg_pipelines.experiments.export import ClosedSetNetwork, FixedVocabularyNetwork, prepare_for_export
from seg_pipelines.models.factory import create_model


def closed_set_models(params: dict, num_classes: int) -> dict[str, torch.nn.Module]:
    """FCN, FCN+CAA, FCN+ECAC as conf/base configures them (random weights)."""
    model = dict(params["_closed_set"]["model"])
    models = {}
    for label, block in (("FCN", None), ("FCN+CAA", "caa"), ("FCN+ECAC", "ecac")):
        addon = params[block]["addon"] if block else None
        config = closed_set_model_config(
            model,
            num_classes=num_classes,
            ignore_index=255,
            addon=addon["name"] if addon else None,
            addon_cfg=addon.get("cfg") if addon else None,
        )
        torch.manual_seed(0)
        models[label] = ClosedSetNetwork(build_segmentor(config).eval())
    return models


def lsmseg_model(params: dict, vocabulary: int) -> torch.nn.Module:
    """LSMSeg as conf/base's ``lsmseg`` block builds it, with ``vocabulary`` random unit text embeddings."""
    block = params["lsmseg"]
    spec = dict(block["models"]["lsmseg"])
    name = spec.pop("architecture")
    torch.manual_seed(0)
    model = create_model(
        name,
        clip_model=block["clip"]["model"],
        clip_pretrained=None,
        image_size=block["clip"]["image_size"],
        **block["head"],
        **spec,
    ).eval()
    text = F.normalize(torch.randn(vocabulary, 1, model.clip.embed_dim), dim=-1)
    return FixedVocabularyNetwork(model, text)


def interleaved_latency(first, second, image: torch.Tensor, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Median seconds per call of ``first(image)`` and ``second(image)``, timed alternately (one call of
    each per round), so a load change on a shared machine hits both alike."""
    for _ in range(warmup):
        first(image), second(image)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for run, spent in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            run(image)
            spent.append(time.perf_counter() - started)
    return sorted(times[0])[repeats // 2], sorted(times[1])[repeats // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_arguments(parser)
    parser.add_argument("--image-size", type=int, default=96, help="the synthetic world's image size")
    parser.add_argument("--num-classes", type=int, default=60, help="closed-set classes (the synthetic world's)")
    parser.add_argument("--vocabulary", type=int, default=150, help="LSMSeg's fixed vocabulary size (syn150)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_parameters(Path(args.project), args.env)
    models = closed_set_models(params, args.num_classes)
    models["LSMSeg"] = lsmseg_model(params, args.vocabulary)
    image = torch.rand(1, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0))
    rows = {}
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        for label, network in models.items():
            exportable, _ = prepare_for_export(network)
            started = time.perf_counter()
            path = export_onnx(exportable, torch.rand(1, 3, 67, 93), Path(folder) / f"{label}.onnx", name=label)
            export_seconds = time.perf_counter() - started
            runtime = OnnxSegmentor(path, num_threads=1)
            difference = float((runtime(image)["logits"] - network(image)).abs().max())
            pytorch_s, onnx_s = interleaved_latency(network, runtime, image, args.repeats)
            rows[label] = {
                "pytorch_ms": round(1000 * pytorch_s, 3),
                "onnxruntime_ms": round(1000 * onnx_s, 3),
                "onnx_over_pytorch": round(onnx_s / pytorch_s, 3),
                "max_abs_difference": difference,
                "export_seconds": round(export_seconds, 1),
            }
    report = {
        "benchmark": "onnx_latency",
        "image_size": args.image_size,
        "threads": 1,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "models": rows,
    }
    header = "| model | PyTorch ms | ONNX Runtime ms | ONNX / PyTorch | max abs diff |\n|---|---|---|---|---|\n"
    table = header + "\n".join(
        f"| {k} | {v['pytorch_ms']:.2f} | {v['onnxruntime_ms']:.2f} | {v['onnx_over_pytorch']:.2f} | "
        f"{v['max_abs_difference']:.2g} |"
        for k, v in rows.items()
    )
    emit_report(report, table, args.output)


if __name__ == "__main__":
    main()

"""Peak memory of ``predict`` per megapixel, with and without ``predict.max_megapixels``.

The default ``caa`` model (``_closed_set.model`` + the CAA add-on of ``parameters_caa.yml``, random
weights: memory does not depend on them) segments one synthetic photo per case, each in a fresh
subprocess; the peak is the growth of the process's peak resident set (``ru_maxrss``) during
``predict_images`` (CPU tensors are not seen by ``tracemalloc``). The baseline of each limited case is
the same photo size without a limit, in the same run, where that fits in the time budget.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_predict_memory.py [--cases small]

Prints one JSON object: per case the photo's megapixels, mode, limit, peak MiB, MiB per megapixel
and seconds, and ratios of each limited case to its unlimited twin.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import add_project_arguments, emit_report, load_parameters  # noqa: E402

NUM_CLASSES = 60  # the synthetic world's vocabulary size
CASES = {
    # name: (megapixels of the photo, mode, max_megapixels)
    "small": [
        (0.25, "whole", None),
        (1.0, "whole", None),
        (2.0, "whole", None),
        (2.0, "whole", 0.5),
        (0.5, "multi_scale", None),
        (0.5, "multi_scale", 0.5),
        (12.0, "whole", 1.0),
        (12.0, "multi_scale", 1.0),
    ],
}


def run_case(checkpoint: str, megapixels: float, mode: str, limit: float | None, photo_dir: str) -> dict:
    import numpy as np
    from PIL import Image

    from seg_pipelines.experiments import inference

    height = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = int(height * 4 / 3)
    generator = np.random.default_rng(0)
    tile = generator.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    photo = Path(photo_dir) / f"photo_{height}x{width}.png"
    Image.fromarray(np.tile(tile, (height // 64 + 1, width // 64 + 1, 1))[:height, :width]).save(photo)
    model = inference.load_inference_model({"checkpoint": checkpoint})
    params = {"input": str(photo), "show_progress": False, "mode": mode, "max_megapixels": limit}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    outputs, summary = inference.predict_images(model, params)
    seconds = time.perf_counter() - start
    peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {
        "megapixels": round(height * width / 1e6, 3),
        "mode": mode,
        "max_megapixels": limit,
        "peak_mib": round(peak_mib, 1),
        "mib_per_megapixel": round(peak_mib / (height * width / 1e6), 1),
        "seconds": round(seconds, 2),
        "downscaled": bool(summary["downscaled"]),
        "label_size": list(np.asarray(outputs[f"{photo.stem}_label"]).shape),
    }


def write_checkpoint(project: Path, env: str, path: Path) -> None:
    import torch

    from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config

    params = load_parameters(project, env)
    addon = params["caa"]["addon"]
    config = closed_set_model_config(
        dict(params["_closed_set"]["model"]),
        num_classes=NUM_CLASSES,
        ignore_index=255,
        addon=addon["name"],
        addon_cfg=dict(addon["cfg"]),
    )
    torch.manual_seed(0)
    model = build_segmentor(config)
    names = [f"class_{index}" for index in range(NUM_CLASSES)]
    torch.save({"model": model.state_dict(), "model_config": config, "class_names": names}, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_arguments(parser)
    parser.add_argument("--cases", default="small", choices=sorted(CASES))
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one case in a subprocess
    args = parser.parse_args()
    if args.case:
        checkpoint, megapixels, mode, limit, photo_dir = json.loads(args.case)
        print(json.dumps(run_case(checkpoint, megapixels, mode, limit, photo_dir)))
        return
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "caa.pt"
        write_checkpoint(Path(args.project), args.env, checkpoint)
        results = []
        for megapixels, mode, limit in CASES[args.cases]:
            case = json.dumps([str(checkpoint), megapixels, mode, limit, folder])
            done = subprocess.run(
                [sys.executable, __file__, "--project", args.project, "--env", args.env, "--case", case],
                check=True,
                capture_output=True,
                text=True,
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    unlimited = {(r["megapixels"], r["mode"]): r for r in results if r["max_megapixels"] is None}
    ratios = {}
    for result in results:
        twin = unlimited.get((result["megapixels"], result["mode"]))
        if result["max_megapixels"] is not None and twin is not None:
            key = f"{result['mode']} {result['megapixels']} MP, limit {result['max_megapixels']} vs none"
            ratios[key] = {
                "peak": round(result["peak_mib"] / max(twin["peak_mib"], 1e-9), 3),
                "seconds": round(result["seconds"] / max(twin["seconds"], 1e-9), 3),
            }
    report = {"benchmark": "predict_memory", "model": "caa default (_closed_set.model + CAA)", "cases": results}
    report["limited_vs_unlimited"] = ratios
    emit_report(report, None, args.output)


if __name__ == "__main__":
    main()

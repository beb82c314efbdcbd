"""What the scripts under ``benchmarks/`` share: the project's arguments, its Kedro parameters, the
prepared dataset's manifest, printing/saving the JSON report, and the machine's fp32 matmul peak (the
baseline that speed figures are ratios of)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kedro.config import OmegaConfigLoader

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def add_project_arguments(parser: argparse.ArgumentParser) -> None:
    """``--project`` (the Kedro project root), ``--env`` (Kedro env) and ``--output`` (JSON file)."""
    parser.add_argument("--project", default=str(PROJECT_ROOT))
    parser.add_argument("--env", default="local")
    parser.add_argument("--output", default=None, help="also write the JSON report here")


def load_parameters(project: Path, env: str) -> dict:
    """The merged ``parameters`` of ``conf/base`` and ``conf/<env>``."""
    loader = OmegaConfigLoader(conf_source=str(project / "conf"), base_env="base", default_run_env=env)
    return loader["parameters"]


def load_manifest(project: Path) -> dict:
    """``data/01_raw/dataset_manifest.json`` with its dataset root made absolute."""
    manifest = json.loads((project / "data/01_raw/dataset_manifest.json").read_text())
    if not Path(manifest["root"]).is_absolute():
        manifest["root"] = str(project / manifest["root"])
    return manifest


def emit_report(report: dict, markdown: str | None, output: str | None) -> None:
    """Print the JSON report (and its markdown table, if any); also write the JSON to ``output`` if given."""
    text = json.dumps(report, indent=1)
    print(text)
    if markdown:
        print(markdown)
    if output:
        Path(output).write_text(text)


def matmul_peak_gflops(size: int = 1024, repeats: int = 10) -> float:
    """fp32 matmul GFLOP/s of this process (best of ``repeats``), at the current thread count."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9

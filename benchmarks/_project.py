"""What the report scripts under ``benchmarks/`` share: the project's arguments, its Kedro
parameters, the prepared dataset's manifest, and printing/saving the JSON report."""

from __future__ import annotations

import argparse
import json
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


def emit_report(report: dict, markdown: str, output: str | None) -> None:
    """Print the JSON report and its markdown table; also write the JSON to ``output`` if given."""
    print(json.dumps(report, indent=1))
    print(markdown)
    if output:
        Path(output).write_text(json.dumps(report, indent=1))

"""Lineage as Kedro-Viz shows it: ``kedro viz build`` on the project draws every registered pipeline
with its layer view (no circular dependency among layers), and what one pipeline hands another goes
through the catalog (``lsmseg`` reads the CLIP weights and the prompt set as datasets)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
from tests.fixtures import PROJECT_ROOT  # noqa: E402


@pytest.fixture(scope="module")
def viz_build(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("viz") / "project"
    root.mkdir()
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    (root / "src").mkdir()
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "viz", "build"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "1",
            "COLUMNS": "400",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        },
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "build" / "api" / "pipelines", result.stdout + result.stderr


def _graph(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def test_every_pipeline_has_a_layer_view(viz_build):
    folder, output = viz_build
    assert "circular dependency" not in output
    from seg_pipelines.pipeline_registry import UPSTREAM

    for name in ["__default__", *UPSTREAM]:
        graph = _graph(folder, name)
        layered = {n["layer"] for n in graph["nodes"] if n.get("layer")}
        assert layered and layered <= set(graph["layers"]), name  # kedro-viz sends no layers on a cycle


def test_lsmseg_reads_clip_and_sam_weights_and_prompt_set_from_the_catalog(viz_build):
    folder, _ = viz_build
    for name in ("lsmseg", "lsmseg_ablations"):
        graph = _graph(folder, name)
        by_id = {n["id"]: n for n in graph["nodes"]}
        consumed = {by_id[e["source"]]["name"] for e in graph["edges"] if by_id[e["target"]]["type"] == "task"}
        assert {"tiny_clip_checkpoint", "tiny_clip_config", "prompt_set"} <= consumed, name
        produced = {by_id[e["target"]]["name"] for e in graph["edges"] if by_id[e["source"]]["type"] == "task"}
        assert "tiny_clip_checkpoint" in produced, f"{name}: clip_pretraining writes the weights it reads"
        sams = {"tiny_sam_checkpoint", "tiny_sam_config", "tiny_sam_l_checkpoint", "tiny_sam_l_config"}
        assert sams <= consumed and sams <= produced, f"{name}: sam_pretraining writes both sizes it reads"

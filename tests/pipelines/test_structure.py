"""The house rules that ruff and import-linter do not check: pipelines are Kedro glue (short node
functions, no torch, no maths), every registered pipeline has its folder, and the layers contract
in pyproject.toml names every top-level package."""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib

import seg_pipelines

PACKAGE = Path(seg_pipelines.__file__).parent
PYPROJECT = PACKAGE.parents[1] / "pyproject.toml"
MAX_NODE_LINES = 30


def _functions(path: Path) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)]


def test_node_functions_under_pipelines_are_short():
    long = [
        f"{path.relative_to(PACKAGE)}:{fn.name} ({fn.end_lineno - fn.lineno + 1} lines)"
        for path in sorted((PACKAGE / "pipelines").glob("*/nodes.py"))
        for fn in _functions(path)
        if fn.end_lineno - fn.lineno + 1 > MAX_NODE_LINES
    ]
    assert not long, f"node functions over {MAX_NODE_LINES} lines (move the work below pipelines/): {long}"


def test_pipelines_import_no_numerics():
    banned = {"torch", "torchvision", "numpy", "scipy", "matplotlib"}
    found = []
    for path in sorted((PACKAGE / "pipelines").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found += [f"{path.relative_to(PACKAGE)}: {n}" for n in names if n.split(".")[0] in banned]
    assert not found, found


def test_layers_contract_names_every_top_level_package():
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in config if c.get("type") == "layers" and "containers" not in c]
    named = {
        part.strip().removeprefix("seg_pipelines.") for layer in layers for part in layer.replace(":", "|").split("|")
    }
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages | modules <= named, f"not in the layers contract: {sorted((packages | modules) - named)}"
    order = [layer.split()[0].removeprefix("seg_pipelines.") for layer in layers]
    assert order.index("pipelines") < order.index("experiments") < order.index("engine") < order.index("models")


def test_every_registered_pipeline_has_its_folder():
    from seg_pipelines.pipeline_registry import DEFAULT_PIPELINE, UPSTREAM

    folders = {p.name for p in (PACKAGE / "pipelines").iterdir() if (p / "pipeline.py").exists()}
    assert set(UPSTREAM) | {DEFAULT_PIPELINE} | {u for ups in UPSTREAM.values() for u in ups} <= folders


def test_only_the_tracking_module_talks_to_mlflow():
    importers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if any(n.split(".")[0] == "mlflow" for n in names):
                importers.append(str(path.relative_to(PACKAGE)))
    assert sorted(set(importers)) == ["engine/tracking.py"]

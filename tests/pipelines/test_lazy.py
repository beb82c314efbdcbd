"""Lazy node functions (seg_pipelines.pipelines.lazy): registering the pipelines imports no torch,
and each lazy node has its experiment function's signature, source, docstring and result."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.framework.project import configure_project, find_pipelines

from seg_pipelines.pipelines import lazy as lazy_module
from seg_pipelines.pipelines.lazy import LazyNodeError, lazy, resolve
from tests.fixtures import PROJECT_ROOT

# (mlflow is not in the list: the project's MLflow hook, in settings.py, imports it for every command)
HEAVY = ("torch", "torchvision", "open_clip", "timm", "segment_anything", "matplotlib", "llama_cpp")


def _lazy_node_functions():
    configure_project("seg_pipelines")
    found = {}
    for name, pipeline in find_pipelines(raise_errors=True).items():
        for node in pipeline.nodes:
            target = getattr(node.func, "lazy_target", None)
            if target:
                found[f"{name}:{node.name}"] = node.func
    return found


def test_registering_the_pipelines_imports_no_heavy_library():
    code = (
        "import sys; from kedro.framework.project import configure_project; configure_project('seg_pipelines');"
        "from seg_pipelines.pipeline_registry import register_pipelines; pipelines = register_pipelines();"
        f"print('REGISTERED', len(pipelines), sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("REGISTERED"))
    count, heavy = line.removeprefix("REGISTERED ").split(" ", 1)
    assert int(count) >= 15  # every pipeline (and __default__) of the project
    assert heavy == "[]", f"registering the pipelines imported {heavy}"


def test_lazy_nodes_show_the_experiment_functions_signature_source_and_docstring():
    functions = _lazy_node_functions()
    assert len(functions) >= 15
    for label, function in functions.items():
        real = resolve(*function.lazy_target)
        ours, theirs = inspect.signature(function), inspect.signature(real)
        assert [(p.name, p.kind, p.default is p.empty) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default is p.empty) for p in theirs.parameters.values()
        ], label
        assert inspect.getsource(function) == inspect.getsource(real), label  # Kedro-Viz's code panel
        assert inspect.getfile(function) == inspect.getfile(real), label
        assert function.__doc__ == real.__doc__, label
        assert pickle.loads(pickle.dumps(function)) is function, label  # ParallelRunner pickles nodes


def test_a_lazy_node_imports_on_the_first_call_and_forwards_the_result():
    import pandas as pd

    from seg_pipelines.pipelines.data_preparation import nodes

    index = pd.DataFrame({"sample_id": ["a", "b"], "split": ["train", "train"], "pixel_counts": [[3, 1], [1, 0]]})
    manifest = {"class_names": ["sky", "tree"]}
    table, metrics = nodes.compute_statistics(index, manifest, {"split": "train", "rho": 0.5, "group_size": 1})
    assert table["frequency"].tolist() == pytest.approx([0.8, 0.2]) and metrics["dataset.num_classes"] == 2.0


def test_defaults_keyword_only_arguments_and_reexports_are_read_from_the_source(tmp_path: Path, monkeypatch):
    package = tmp_path / "seg_pipelines"
    (package / "fake").mkdir(parents=True)
    (package / "fake" / "__init__.py").write_text("")
    (package / "fake" / "impl.py").write_text(
        "import os\n\n@staticmethod\ndef run(a, /, b, c=3, *rest, d, e=os.sep, **more):\n    'Doc.'\n    return a\n"
    )
    (package / "fake" / "api.py").write_text("from seg_pipelines.fake.impl import run\n")
    monkeypatch.setattr(lazy_module, "PACKAGE_DIR", package)
    function = lazy("seg_pipelines.fake.api", "run")
    assert str(inspect.signature(function)) == "(a, /, b, c=3, *rest, d, e=os.sep, **more)"
    assert function.__doc__ == "Doc." and inspect.getsource(function).startswith("@staticmethod\ndef run(")
    with pytest.raises(LazyNodeError, match="has no top-level function 'walk'"):
        lazy("seg_pipelines.fake.api", "walk")
    with pytest.raises(LazyNodeError, match="no module 'seg_pipelines.fake.nope'"):
        lazy("seg_pipelines.fake.nope", "run")
    with pytest.raises(LazyNodeError, match="modules of seg_pipelines"):
        lazy("os.path", "join")


def test_every_node_function_has_type_hints_kedro_can_read():
    """Kedro's parameter type extractor calls typing.get_type_hints on every node at session start; a
    LazyNode without __annotations__ made it log one warning per ablation node (hundreds per run)."""
    import typing

    configure_project("seg_pipelines")
    for pipeline in find_pipelines(raise_errors=True).values():
        for node in pipeline.nodes:
            typing.get_type_hints(node.func)  # raises TypeError on an object Kedro cannot read

"""Node functions are ordinary typed functions: registering the pipelines imports no heavy library,
every node is a function of ``pipelines/`` that Kedro can read the type hints of and ParallelRunner can
pickle, and a node hands its experiment the validated parameter model."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
import typing

import pandas as pd
import pytest
from kedro.framework.project import configure_project, find_pipelines
from pydantic import ValidationError

from seg_pipelines.parameters import SCHEMAS, Block, ClassStatistics
from tests.fixtures import PROJECT_ROOT

# (mlflow is not in the list: the project's MLflow hook, in settings.py, imports it for every command)
HEAVY = ("torch", "torchvision", "open_clip", "timm", "segment_anything", "matplotlib", "llama_cpp")


def _nodes():
    configure_project("seg_pipelines")
    return [node for pipeline in find_pipelines(raise_errors=True).values() for node in pipeline.nodes]


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


def test_every_node_is_a_typed_picklable_function_of_the_pipelines_package():
    nodes = _nodes()
    assert len(nodes) > 100  # the ablation tables fan out one node per (row, seed)
    for node in nodes:
        function = node.func
        target = getattr(function, "func", function)  # a functools.partial's function
        assert target.__module__.startswith("seg_pipelines.pipelines."), (node.name, target.__module__)
        assert inspect.getdoc(target), node.name
        # Kedro reads these at session start to validate params:* inputs into the annotated models
        hints = typing.get_type_hints(target.__call__ if not inspect.isroutine(target) else target)
        assert hints, node.name
        assert pickle.loads(pickle.dumps(function)) is not None, node.name  # ParallelRunner pickles nodes


def test_every_schema_block_a_node_reads_whole_is_annotated_with_its_model():
    """``params:<block>`` read whole by a node arrives as the block's model (Kedro validates it from the
    annotation), so the experiment sees the one definition of each default."""
    checked = 0
    for node in _nodes():
        function = getattr(node.func, "func", node.func)
        call = function if inspect.isroutine(function) else function.__call__
        hints = typing.get_type_hints(call)
        names = list(inspect.signature(node.func).parameters)
        for position, dataset in enumerate(node.inputs):
            top = dataset.removeprefix("params:") if dataset.startswith("params:") else None
            if top in SCHEMAS and position < len(names):
                annotation = typing.get_args(hints.get(names[position])) or (hints.get(names[position]),)
                assert SCHEMAS[top] in annotation, (node.name, dataset, hints.get(names[position]))
                checked += 1
    assert checked >= 20


def test_a_node_validates_its_block_and_hands_the_experiment_the_model(monkeypatch):
    from seg_pipelines.experiments import data_preparation
    from seg_pipelines.pipelines.data_preparation import nodes

    index = pd.DataFrame({"sample_id": ["a", "b"], "split": ["train", "train"], "pixel_counts": [[3, 1], [1, 0]]})
    manifest = {"class_names": ["sky", "tree"]}
    table, metrics = nodes.compute_statistics(index, manifest, {"group_size": 1})
    assert table["frequency"].tolist() == pytest.approx([0.8, 0.2]) and metrics["dataset.num_classes"] == 2.0

    received = []
    monkeypatch.setattr(data_preparation, "compute_statistics", lambda i, m, statistics: received.append(statistics))
    nodes.compute_statistics(index, manifest, {"group_size": 1})
    statistics = received[0]
    assert isinstance(statistics, ClassStatistics)
    # the schema's defaults, read as attributes or as a mapping alike
    assert statistics.split == statistics["split"] == "train" and statistics.get("rho") == 0.5
    with pytest.raises(ValidationError, match="group_size"):
        nodes.compute_statistics(index, manifest, {"group_size": 0})


def test_a_block_reads_as_a_mapping_without_the_unset_optional_keys():
    from seg_pipelines.parameters import ClosedSetModel

    model = ClosedSetModel.of({"head": "fcn", "backbone": "resnet_tiny", "custom": {"a": 1}})
    assert isinstance(model, Block) and dict(model)["custom"] == {"a": 1}
    assert "channels" not in model and model.channels is None  # unset, default None: the reader's own rule
    assert model.get("channels", 64) == 64 and model["aux_loss_weight"] == 0.4
    assert ClosedSetModel.of(model) is model
    with pytest.raises(KeyError):
        model["missing"]

"""The project as users run it: a KedroSession end to end on the tiny test env, Kedro-Viz build."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.project import configure_project
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from seg_pipelines.pipeline_registry import register_pipelines


def test_pipelines_are_discovered():
    configure_project("seg_pipelines")
    pipelines = register_pipelines()
    assert "data_preparation" in pipelines
    assert set(pipelines["data_preparation"].outputs()) <= set(pipelines["__default__"].all_outputs())


def test_data_preparation_runs_end_to_end_and_is_tracked(project_copy: Path, tmp_path):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["data_preparation"])

    index = pd.read_parquet(project_copy / "data/test/03_primary/prepared_index.parquet")
    manifest = json.loads((project_copy / "data/test/01_raw/dataset_manifest.json").read_text())
    assert (index["split"] == "train").sum() == 48 and (index["split"] == "val").sum() == 16
    assert (index["height"] == 64).all() and (index["width"] == 64).all()
    total = index["pixel_counts"].map(sum) + index["ignored_pixels"]
    assert (total == 64 * 64).all(), "pixel counts + ignored pixels must cover every pixel"
    stats = pd.read_csv(project_copy / "data/test/04_feature/class_statistics.csv")
    assert len(stats) == manifest["num_classes"] >= 40
    assert abs(stats["weight"].sum() - 1) < 1e-9
    assert (project_copy / "data/test/08_reporting/dataset_overview.png").stat().st_size > 10_000

    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    assert run.info.run_name.startswith("data_preparation") and run.info.status == "FINISHED"
    assert run.data.params["dataset.family"] == "synthetic"
    assert run.data.metrics["dataset.num_classes"] == manifest["num_classes"]
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "reporting")}
    assert "reporting/dataset_overview.png" in logged


def test_kedro_viz_build_lists_pipelines_with_layers(project_copy: Path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "viz", "build"],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    main = json.loads((project_copy / "build/api/main").read_text())
    assert {"__default__", "data_preparation"} <= {p["id"] for p in main["pipelines"]}
    layers = {node["name"]: node.get("layer") for node in main["nodes"]}
    assert layers["prepared_index"] == "primary"
    assert layers["dataset_overview_figure"] == "reporting"


def test_cli_accepts_pipeline_and_pipelines_without_telemetry(project_copy: Path, monkeypatch):
    monkeypatch.delenv("KEDRO_DISABLE_TELEMETRY", raising=False)  # the project's .telemetry must suffice
    monkeypatch.setenv("COLUMNS", "250")  # rich log lines unwrapped
    kedro = str(Path(sys.executable).parent / "kedro")
    for flag in ("--pipeline=data_preparation", "--pipelines=data_preparation"):
        result = subprocess.run(
            [kedro, "run", flag, "--env=test"], cwd=project_copy, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        output = result.stdout + result.stderr
        assert "Pipeline execution completed successfully" in output
        assert "telemetry" not in output.lower(), "no consent prompt or telemetry notice"
    assert (project_copy / "data/test/03_primary/prepared_index.parquet").is_file()


def test_an_unknown_pipeline_name_gets_a_one_line_answer_with_the_closest_names():
    from kedro.framework.project import pipelines as project_pipelines

    configure_project("seg_pipelines")
    project_pipelines.set_requested(["lsmseg_ablation"])  # what `kedro run --pipelines=lsmseg_ablation` sets
    try:
        with pytest.raises(
            ValueError, match=r"No pipeline named 'lsmseg_ablation'\. Did you mean 'lsmseg_ablations'"
        ) as error:
            project_pipelines["lsmseg_ablation"]
    finally:
        project_pipelines.set_requested(None)
    assert "Pipelines: __default__, caa," in str(error.value) and "\n" not in str(error.value)


def test_kedro_run_with_an_unknown_pipeline_prints_one_line_and_no_traceback(tmp_path):
    """What a user sees: click's one ``Error:`` line (exit status 2), no traceback, and none of the
    three OmegaConf deprecation warnings Kedro's config loader triggers."""
    import os

    from tests.fixtures import PROJECT_ROOT

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    kedro = str(Path(sys.executable).parent / "kedro")
    result = subprocess.run(
        [kedro, "run", "--pipelines=caaa"], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert errors == [errors[0]] and errors[0].startswith("Error: No pipeline named 'caaa'. Did you mean 'caa'?")
    assert "Traceback" not in output and "register_new_resolver" not in output


def test_a_pipeline_folder_that_fails_to_import_is_named(monkeypatch):
    from seg_pipelines import pipeline_registry

    def broken(*args, **kwargs):
        import warnings

        message = "An error occurred while importing the 'seg_pipelines.pipelines.lsmseg' module. Traceback: boom"
        warnings.warn(message, stacklevel=2)
        return {}

    monkeypatch.setattr(pipeline_registry, "find_pipelines", broken)
    with pytest.raises(ImportError, match="seg_pipelines.pipelines.lsmseg.*boom"):
        pipeline_registry.register_pipelines()


@pytest.mark.slow
def test_a_pipeline_run_makes_no_outbound_connection(project_copy: Path, tmp_path):
    """`kedro run` in a fresh process outside CI (MLflow only keeps quiet in CI on its own): every
    host lookup or connection that is not this machine is recorded, and none may happen."""
    import os

    log = tmp_path / "network.log"
    guard = Path(__file__).parent / "fixtures" / "network_guard"
    quiet = {"PYTEST_CURRENT_TEST", "CI", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "KEDRO_DISABLE_TELEMETRY"}
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    env.update(PYTHONPATH=os.pathsep.join([str(guard), env.get("PYTHONPATH", "")]), NETWORK_GUARD_LOG=str(log))
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "run", "--pipelines=data_preparation", "--env=test"],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not log.exists() or not log.read_text().strip(), log.read_text()


def test_pipelines_are_listed_in_reading_order():
    from seg_pipelines.pipeline_registry import DISPLAY_ORDER, pipeline_folders

    configure_project("seg_pipelines")
    names = list(register_pipelines())
    assert names[:6] == [
        "__default__",
        "data_preparation",
        "clip_pretraining",
        "sam_pretraining",
        "lsmseg_attribute_selection",
        "lsmseg",
    ]
    assert names == [n for n in DISPLAY_ORDER if n in names] and set(pipeline_folders()) <= set(DISPLAY_ORDER)


#: Kedro's data-engineering convention, the order data/01_raw … 08_reporting and Kedro-Viz's layers follow.
LAYER_ORDER = ("raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting")


def test_catalog_layers_follow_the_data_engineering_convention_and_kedro_viz_draws_them_in_order(
    project_copy: Path,
):
    """Issue 30 item 10: a node's outputs sit at or after the layers of its inputs, and Kedro-Viz (which
    orders layers by the graph, ties in its own order) draws each pipeline's layers in the convention's
    order; "models" above "primary" came from the tiny CLIP / SAM pretraining reading the raw world
    without the prepared index, and "feature" below "models" from the scorer's CLIP image features."""
    from types import SimpleNamespace

    from kedro.framework.project import pipelines
    from kedro_viz.services.layers import sort_layers

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy) as session:
        catalog = session.load_context().catalog

    def layer(name: str) -> str | None:
        if name == "parameters" or name.startswith("params:"):
            return None
        dataset = catalog.get(name)
        return ((getattr(dataset, "metadata", None) or {}).get("kedro-viz") or {}).get("layer")

    inversions, unknown, drawn = [], set(), {}
    for pipeline_name, pipeline in pipelines.items():
        graph_nodes, children = {}, {}
        for node in pipeline.nodes:
            graph_nodes[node.name], children[node.name] = SimpleNamespace(layer=None), set()
            for name in (*node.inputs, *node.outputs):
                graph_nodes.setdefault(name, SimpleNamespace(layer=layer(name)))
                children.setdefault(name, set())
                unknown |= {graph_nodes[name].layer} - {None, *LAYER_ORDER}
            for name in node.inputs:
                children[name].add(node.name)
            children[node.name] |= set(node.outputs)
            latest_input = max(
                (LAYER_ORDER.index(graph_nodes[i].layer) for i in node.inputs if graph_nodes[i].layer), default=0
            )
            inversions += [
                f"{pipeline_name}: {node.name} writes {o} ({graph_nodes[o].layer}) from {LAYER_ORDER[latest_input]}"
                for o in node.outputs
                if graph_nodes[o].layer and LAYER_ORDER.index(graph_nodes[o].layer) < latest_input
            ]
        drawn[pipeline_name] = sort_layers(graph_nodes, children)
    assert not unknown, f"layers outside the convention: {unknown}"
    assert not inversions, inversions
    out_of_order = {name: order for name, order in drawn.items() if order != sorted(order, key=LAYER_ORDER.index)}
    # lsmseg's one exception: its prompt_set (model_output) is a free input made by lsmseg_attribute_selection,
    # which Kedro-Viz can only draw above the layers lsmseg itself fills
    assert set(out_of_order) == {"lsmseg"}, out_of_order
    assert drawn["__default__"] == ["raw", "intermediate", "primary", "feature", "models", "model_output", "reporting"]

"""A moved or copied project keeps its MLflow records and points at its own files, not the original's."""

import os
import shutil
from pathlib import Path

import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from seg_pipelines.engine import tracking
from seg_pipelines.pipelines.catalog_datasets import ModelFileDataset


def _run_data_preparation(project: Path) -> None:
    """``kedro run --pipelines=data_preparation --env test`` in ``project`` with its own store, as a new
    process would (MLflow exports the last tracking URI into this process's environment)."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=["data_preparation"])


def _runs(project: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("seg_pipelines")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return client, experiment, runs


def test_a_moved_project_reads_its_artifacts_and_writes_into_its_own_mlruns(project_copy: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the project's own store, mlflow.db in the project root
    _run_data_preparation(project_copy)
    moved = project_copy.parent / "moved"
    shutil.copytree(project_copy, moved)
    shutil.rmtree(project_copy)
    monkeypatch.chdir(moved)

    client, experiment, (run,) = _runs(moved)
    assert client.list_artifacts(run.info.run_id, "reporting") == []  # what MLflow does after a move
    assert tracking.main(["relocate", str(moved)]) == 0
    client, experiment, (run,) = _runs(moved)
    assert experiment.artifact_location == (moved / "mlruns").as_uri()
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "reporting")}
    assert "reporting/dataset_overview.png" in logged
    assert tracking.relocate_moved_store(f"sqlite:///{moved / 'mlflow.db'}", moved) == []  # once is enough

    _run_data_preparation(moved)  # a run in the moved project writes into its own mlruns/
    client, _, runs = _runs(moved)
    assert len(runs) == 2 and runs[1].info.artifact_uri.startswith((moved / "mlruns").as_uri())
    assert not project_copy.exists()


def test_a_copied_store_is_pointed_at_the_copy_on_the_next_run(project_copy: Path, monkeypatch):
    """A copy whose original still exists: without the rewrite, its runs would write into the original."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    _run_data_preparation(project_copy)
    copy = project_copy.parent / "copy"
    shutil.copytree(project_copy, copy)
    monkeypatch.chdir(copy)
    _run_data_preparation(copy)  # the hook rewrites the copied store before the run starts
    _, experiment, runs = _runs(copy)
    assert experiment.artifact_location == (copy / "mlruns").as_uri()
    assert all(r.info.artifact_uri.startswith((copy / "mlruns").as_uri()) for r in runs)
    _, original, _ = _runs(project_copy)
    assert original.artifact_location == (project_copy / "mlruns").as_uri()  # the original is left as it was


def test_model_files_are_handed_on_relative_to_the_project(tmp_path: Path, monkeypatch):
    """Kedro gives datasets absolute paths; the configs that record the weights (tiny_clip_config.json,
    lsmseg_model_config.json, the run plan) get them relative, so a copy loads its own weights."""
    project = tmp_path / "project"
    monkeypatch.chdir(tmp_path)
    (project / "data/06_models").mkdir(parents=True)
    monkeypatch.chdir(project)
    weights = ModelFileDataset(filepath=str(project / "data/06_models/tiny_clip.pt"))
    weights.save({"w": torch.ones(2)})
    assert weights.load() == "data/06_models/tiny_clip.pt"
    outside = ModelFileDataset(filepath=str(tmp_path / "elsewhere.pt"))
    outside.save({"w": torch.ones(1)})
    assert outside.load() == str(tmp_path / "elsewhere.pt")  # a file outside the project: as given

"""``efficiency`` end to end through Kedro (test env), tracked in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from seg_pipelines.experiments import efficiency


def test_efficiency_pipeline_runs_end_to_end_and_is_tracked(project_copy: Path):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["efficiency"])  # needs no upstream outputs

    out = project_copy / "data/test/08_reporting/efficiency"
    for name in ("table_3_5", "table_3_6", "table_4_6", "table_5_8"):
        table = pd.read_csv(out / f"{name}.csv")
        assert len(table) == len(efficiency.thesis_rows(name))
        assert efficiency.THESIS_TABLES[name]["caption"] in (out / f"{name}.md").read_text()
    for name, addon in (("table_3_5", "caa"), ("table_4_6", "ecac")):  # every reading of the text, printed
        readings = pd.read_csv(out / f"{name}_readings.csv")
        assert set(readings["reading"]) == set(efficiency.PARAMETER_READINGS[addon])
        assert "parameter counts per reading of the text" in (out / f"{name}.md").read_text()
    table_3_6 = pd.read_csv(out / "table_3_6.csv")
    assert table_3_6["device"].str.startswith("cpu").all() and (table_3_6["train_iterations"] == 2).all()
    assert (table_3_6["Inference(ms/p) ours"] > 0).all()
    assert table_3_6.loc[table_3_6["model"] == "fcn", "Training(min) ratio ours"].isna().all()
    metrics = json.loads((out / "efficiency_metrics.json").read_text())
    assert metrics["table_3_6"]["fcn_caa"]["inference_ms_p_ratio"] > 0

    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["table_3_5.pspnet.params_m"] == pytest.approx(23.15, abs=0.01)
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "reporting/efficiency")}
    assert "reporting/efficiency/table_5_8.md" in logged and "reporting/efficiency/table_3_6.csv" in logged

"""notebooks/compare_runs.ipynb executed cell by cell against a temporary MLflow store with fake
closed-set and ablation runs, so the notebook cannot silently rot."""

import contextlib
import io
import json

import matplotlib

matplotlib.use("Agg")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tests.fixtures import PROJECT_ROOT  # noqa: E402

NOTEBOOK = PROJECT_ROOT / "notebooks" / "compare_runs.ipynb"

# method -> seed -> (baseline mIoU, method mIoU)
CLOSED_SET = {"caa": {0: (30.0, 33.0), 1: (31.0, 35.0), 2: (29.0, 34.0)}, "ecac": {0: (30.0, 31.0), 1: (32.0, 32.5)}}
ABLATION = {"Baseline": [20.0, 22.0], "CC+SA": [25.0, 26.0]}


def _execute(tmp_path, monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        for cell in cells:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:{cell['id']}", "exec"), namespace)
    return namespace, output.getvalue()


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("seg_pipelines")
    for method, seeds in CLOSED_SET.items():
        for seed, (baseline, with_method) in seeds.items():
            tags = {"pipeline": method, "method": method, "head": "fcn", "seed": str(seed)}
            with mlflow.start_run(run_name=method, tags=tags):
                mlflow.log_params({f"{method}.model.head": "fcn", f"{method}.training.seed": seed})
                mlflow.log_metrics(
                    {
                        f"{method}.baseline.mIoU": baseline,
                        f"{method}.method.mIoU": with_method,
                        f"{method}.delta.mIoU": with_method - baseline,
                    }
                )
    with mlflow.start_run(run_name="caa_ablations", tags={"pipeline": "caa_ablations", "method": "caa", "seed": "0,1"}):
        for row, values in ABLATION.items():
            for seed, value in enumerate(values):
                tags = {"ablation": "caa_ablations/table_3_2", "table": "3.2", "variant": row, "seed": str(seed)}
                with mlflow.start_run(run_name=f"caa_ablations/table_3_2/{row}/seed{seed}", nested=True, tags=tags):
                    mlflow.log_metrics({"mIoU": value, "seconds": 1.0})
    with mlflow.start_run(run_name="report"):  # a run without comparison metrics is ignored
        mlflow.log_metric("other", 1.0)
    yield uri
    mlflow.set_tracking_uri(None)


def test_notebook_plots_method_vs_baseline_across_seeds(tmp_path, monkeypatch, store):
    namespace, output = _execute(tmp_path, monkeypatch, store)
    fig = namespace["fig"]
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # closed set + Table 3.2
    closed_set, summary = namespace["closed_set"], namespace["summary"]
    assert len(closed_set) == 5 and set(closed_set["method"]) == {"caa", "ecac"}
    caa = summary[summary["method"] == "caa"].iloc[0]
    assert caa["seeds"] == 3
    assert caa["baseline_mean"] == pytest.approx(30.0) and caa["method_mean"] == pytest.approx(34.0)
    assert caa["method_std"] == pytest.approx(np.std([33.0, 35.0, 34.0], ddof=1))
    assert summary[summary["method"] == "ecac"].iloc[0]["gain"] == pytest.approx(0.75)
    # bars: 2 groups x (baseline, method) on the closed-set axis, one bar per variant on the ablation axis
    closed_axis, ablation_axis = fig.axes
    heights = sorted(round(p.get_height(), 6) for p in closed_axis.patches)
    assert heights == sorted([30.0, 34.0, 31.0, 31.75])
    assert [round(p.get_height(), 6) for p in ablation_axis.patches] == [21.0, 25.5]
    assert "Table 3.2" in ablation_axis.get_title()
    assert "finished runs" in output
    matplotlib.pyplot.close("all")


def test_notebook_says_clearly_when_there_are_no_runs(tmp_path, monkeypatch):
    namespace, output = _execute(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'empty.db'}")
    assert namespace["fig"] is None
    assert "No runs yet" in output and "Nothing to plot yet" in output

"""The MLflow hook against a temporary sqlite store: params once, metrics, artifacts, FAILED runs."""

from types import SimpleNamespace

import mlflow
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro_datasets.json import JSONDataset
from mlflow.tracking import MlflowClient

from seg_pipelines.engine.tracking import flatten_dict, resolve_tracking_uri
from seg_pipelines.hooks import MlflowTrackingHook


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    hook = MlflowTrackingHook()
    context = SimpleNamespace(
        project_path=tmp_path,
        config_loader={"mlflow": {"tracking_uri": uri, "experiment_name": "hook_test"}},
        params={"dataset": {"family": "synthetic", "splits": ["train", "val"]}, "seed": 3},
    )
    hook.after_context_created(context)
    yield hook, uri, tmp_path
    mlflow.end_run()


def _run_params(name):
    return {
        "pipeline_names": [name],
        "env": "test",
        "run_id": "r1",
        "kedro_version": "1.7",
        "runtime_params": {"lr": 0.1},
    }


def test_flatten_and_uri_resolution(tmp_path, monkeypatch):
    assert flatten_dict({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert resolve_tracking_uri(tmp_path, "http://server:5000") == "http://server:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/x.db")
    assert resolve_tracking_uri(tmp_path, "http://server:5000") == "sqlite:////elsewhere/x.db"


def test_successful_run_logs_params_metrics_and_artifacts(tracking):
    hook, uri, tmp_path = tracking
    metrics_path, report_path = tmp_path / "metrics.json", tmp_path / "report.json"
    catalog = DataCatalog(
        {
            "scores": JSONDataset(filepath=str(metrics_path), metadata={"mlflow": "metrics"}),
            "report": JSONDataset(
                filepath=str(report_path), metadata={"mlflow": "artifact", "kedro-viz": {"layer": "reporting"}}
            ),
            "plain": JSONDataset(filepath=str(tmp_path / "plain.json")),
        }
    )
    hook.before_pipeline_run(_run_params("data_preparation"), None, catalog)
    scores = {"miou": 0.42, "per_group": {"head": 0.6, "tail": 0.1}, "name": "not a number", "flag": True}
    catalog.save("scores", scores)
    hook.after_dataset_saved("scores", scores, None)
    catalog.save("report", {"rows": 3})
    hook.after_dataset_saved("report", {"rows": 3}, None)
    catalog.save("plain", {"x": 1.0})
    hook.after_dataset_saved("plain", {"x": 1.0}, None)
    hook.after_pipeline_run(_run_params("data_preparation"), {}, None, catalog)

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("hook_test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert (
        run.info.run_name == "data_preparation · synthetic · seed 3 · env test"
        and run.data.tags["kedro.pipeline"] == "data_preparation"
    )
    assert run.info.status == "FINISHED"
    assert run.data.params["dataset.family"] == "synthetic"
    assert run.data.params["seed"] == "3"
    assert run.data.params["runtime.lr"] == "0.1"
    assert run.data.metrics == {"miou": 0.42, "per_group.head": 0.6, "per_group.tail": 0.1}
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "reporting")]
    assert artifacts == ["reporting/report.json"]


def test_failed_run_is_marked_failed_and_keeps_what_was_logged(tracking):
    hook, uri, tmp_path = tracking
    catalog = DataCatalog({"scores": JSONDataset(filepath=str(tmp_path / "m.json"), metadata={"mlflow": "metrics"})})
    hook.before_pipeline_run(_run_params("caa"), None, catalog)
    hook.after_dataset_saved("scores", {"loss": 1.5}, None)
    hook.on_pipeline_error(RuntimeError("CUDA out of memory"), _run_params("caa"), None, catalog)
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("hook_test").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.metrics["loss"] == 1.5
    assert "CUDA out of memory" in run.data.tags["error"]
    assert mlflow.active_run() is None


def test_the_resolved_configuration_is_an_artifact_and_the_env_is_named(tracking):
    hook, uri, tmp_path = tracking
    run_params = {**_run_params("data_preparation"), "env": None}  # `kedro run` without --env
    hook.before_pipeline_run(run_params, None, DataCatalog())
    hook.after_pipeline_run(run_params, {}, None, DataCatalog())
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("hook_test").experiment_id])
    assert run.data.tags["kedro.env"] == "local"
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/config/parameters.yml")
    config = yaml.safe_load(text)
    assert config == {"dataset": {"family": "synthetic", "splits": ["train", "val"]}, "seed": 3}


def test_training_curves_are_step_metrics(tracking):
    import pandas as pd

    hook, uri, tmp_path = tracking
    curve = pd.DataFrame({"iteration": [10, 20, 30], "loss": [2.0, 1.5, 1.2], "lr": [0.01, 0.005, 0.0]})
    rows = [{"step": 5, "loss": 9.3, "note": "text is skipped"}, {"step": 10, "loss": float("nan")}]
    from kedro_datasets.pandas import ParquetDataset

    catalog = DataCatalog(
        {
            "fcn_curve": ParquetDataset(
                filepath=str(tmp_path / "curve.parquet"),
                metadata={"mlflow_curve": {"step": "iteration", "name": "fcn"}},
            ),
            "clip_curve": JSONDataset(
                filepath=str(tmp_path / "clip.json"), metadata={"mlflow_curve": {"step": "step"}}
            ),
        }
    )
    hook.before_pipeline_run(_run_params("caa"), None, catalog)
    for name, data in (("fcn_curve", curve), ("clip_curve", rows)):
        catalog.save(name, data)
        hook.after_dataset_saved(name, data, None)
    hook.after_pipeline_run(_run_params("caa"), {}, None, catalog)
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("hook_test").experiment_id])
    history = client.get_metric_history(run.info.run_id, "fcn/loss")
    assert [(m.step, m.value) for m in history] == [(10, 2.0), (20, 1.5), (30, 1.2)]
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "clip_curve/loss")] == [(5, 9.3)]


def test_only_the_parameter_blocks_the_pipeline_reads_are_logged(tracking):
    from kedro.pipeline import Node, Pipeline

    hook, uri, _ = tracking
    pipeline = Pipeline([Node(lambda dataset: dataset, inputs="params:dataset.family", outputs="x", name="n")])
    hook.before_pipeline_run(_run_params("data_preparation"), pipeline, DataCatalog())
    hook.after_pipeline_run(_run_params("data_preparation"), {}, pipeline, DataCatalog())
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("hook_test").experiment_id])
    assert set(run.data.params) == {"dataset.family", "dataset.splits", "runtime.lr"}  # not "seed"


def test_an_interrupted_run_is_killed_with_its_reason_not_finished(tracking):
    """Ctrl-C: Kedro calls neither after_pipeline_run nor on_pipeline_error; the exit handler ends it."""
    hook, uri, tmp_path = tracking
    hook.before_pipeline_run(_run_params("lsmseg"), None, DataCatalog())
    hook._end_interrupted_run()  # what atexit runs when the interpreter exits mid-run
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("hook_test").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["error"].startswith("KeyboardInterrupt: interrupted")
    assert mlflow.active_run() is None
    hook._end_interrupted_run()  # a second call (the registered one at exit) changes nothing


def test_validated_parameter_blocks_are_logged_as_plain_data(tmp_path, monkeypatch):
    from seg_pipelines.parameters import Preparation

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    hook = MlflowTrackingHook()
    context = SimpleNamespace(
        project_path=tmp_path,
        env="test",
        config_loader={"mlflow": {"experiment_name": "hook_plain"}},
        params={"preparation": Preparation.of({"on_bad_sample": "skip"}), "seed": 3},
    )
    hook.after_context_created(context)
    hook.before_pipeline_run(_run_params("data_preparation"), None, DataCatalog())
    hook.after_pipeline_run(_run_params("data_preparation"), {}, None, DataCatalog())
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("hook_plain").experiment_id])
    config = yaml.safe_load(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/config/parameters.yml"))
    assert config["preparation"] == {"on_bad_sample": "skip", "overview_images": 8}
    assert run.data.params["preparation.overview_images"] == "8"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("caa.trainig.iterations", "caa has no key 'trainig'; did you mean 'caa.training'?"),
        ("caa.training.iteratons", "caa.training has no key 'iteratons'; did you mean 'caa.training.iterations'?"),
        ("predict.mdoe", "predict has no key 'mdoe'; did you mean 'predict.mode'"),
        ("lsmseg_atribute_selection.top_k", "the parameters has no key 'lsmseg_atribute_selection'; did you mean"),
    ],
)
def test_a_params_key_that_names_no_setting_is_refused_with_the_closest_names(key, expected):
    from seg_pipelines.hooks import unknown_parameter
    from tests.pipelines.test_parameters import _params

    assert expected in unknown_parameter(key.split("."), _params())


@pytest.mark.parametrize(
    "key",
    [
        "caa.training.iterations",  # in the configuration
        "caa.training.amp_dtype",  # not in the YAML, a field of the block's model
        "caa.addon.cfg.some_new_option",  # below a free mapping (the add-on's keyword arguments)
        "dataset.reader_kwargs.vocabulary",
        "lsmseg.models.lsmseg.sam_variant",
    ],
)
def test_a_params_key_of_the_configuration_or_its_model_is_accepted(key):
    from seg_pipelines.hooks import unknown_parameter
    from tests.pipelines.test_parameters import _params

    assert unknown_parameter(key.split("."), _params()) is None


def test_the_check_runs_before_any_node_and_names_every_typo(tmp_path):
    from seg_pipelines.hooks import RuntimeParameterCheckHook, UnknownParameterError
    from tests.fixtures import PROJECT_ROOT

    hook = RuntimeParameterCheckHook()
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="local",
        config_patterns={"parameters": ["parameters*", "parameters*/**", "**/parameters*"]},
    )
    hook.after_context_created(SimpleNamespace(config_loader=loader))
    runtime = {"caa": {"trainig": {"iterations": 2}}, "predict": {"mdoe": "slide"}}
    with pytest.raises(UnknownParameterError) as error:
        hook.before_pipeline_run({"runtime_params": runtime}, None, None)
    assert str(error.value).count("\n") == 1 and "'caa.training'" in str(error.value)
    hook.before_pipeline_run({"runtime_params": {"caa": {"training": {"iterations": 2}}}}, None, None)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"caa": {"model": ["fcn"]}}, "'caa.model': got a list (['fcn']) where the configuration has a mapping"),
        ({"caa": {"training": "fast"}}, "'caa.training': got a single value ('fast') where the configuration has a"),
        ({"caa": {"training": {"iterations": {"x": 1}}}}, "'caa.training.iterations' is a single value (800)"),
        ({"caa": {"model": {"head": {"name": "fcn"}}}}, "'caa.model.head' is a single value ('fcn')"),
    ],
)
def test_a_params_value_of_the_wrong_container_kind_is_refused_naming_the_key(override, expected):
    """Issue 29, item 6: ``--params=caa.model=[fcn]`` stopped with OmegaConf's "Cannot merge
    incompatible container types"; the hook names the key before Kedro merges anything."""
    from seg_pipelines.hooks import RuntimeParameterCheckHook, UnknownParameterError
    from tests.fixtures import PROJECT_ROOT

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="local",
        config_patterns={"parameters": ["parameters*", "parameters*/**", "**/parameters*"]},
        runtime_params=override,
    )
    if override == {"caa": {"model": ["fcn"]}}:  # what Kedro gave before
        with pytest.raises(TypeError, match="Cannot merge incompatible container types"):
            loader["parameters"]
    with pytest.raises(UnknownParameterError) as error:
        RuntimeParameterCheckHook().after_context_created(SimpleNamespace(config_loader=loader))
    assert expected in str(error.value)


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_a_damaged_mlflow_store_is_named_with_what_to_do(tmp_path, monkeypatch, damage):
    import os

    from seg_pipelines.engine.tracking import TrackingStoreError, start_run

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "mlflow.db"
    if damage == "random":
        store.write_bytes(os.urandom(5000))
    else:  # a real store cut short
        start_run(f"sqlite:///{store}", "e", "run", {}, {})
        mlflow.end_run()
        store.write_bytes(store.read_bytes()[:3000])
    with pytest.raises(
        TrackingStoreError, match=r"mlflow\.db cannot be read .*damaged.*mv mlflow\.db mlflow\.db\.broken"
    ):
        start_run(f"sqlite:///{store}", "seg_pipelines", "run", {}, {})

"""Run tags (method, head, backbone, dataset, vocabulary, seed, pipeline): derived from the real
configuration, and set on the MLflow run by the hook."""

from types import SimpleNamespace

import mlflow
import pytest
from kedro.config import OmegaConfigLoader
from mlflow.tracking import MlflowClient

from seg_pipelines.engine.tracking import NOT_APPLICABLE, TAG_NAMES, run_tags
from seg_pipelines.hooks import MlflowTrackingHook
from tests.fixtures import PROJECT_ROOT


@pytest.fixture(scope="module")
def base_params():
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]


def test_closed_set_pipelines_tag_addon_head_backbone_seed(base_params):
    params = {
        **base_params,
        "ecac": {**base_params["ecac"], "training": {**base_params["ecac"]["training"], "seed": 7}},
    }
    assert run_tags("caa", params) == {
        "pipeline": "caa",
        "method": "caa",
        "head": "fcn",
        "backbone": "resnet_tiny",
        "dataset": "synthetic",
        "vocabulary": "synthetic",
        "seed": "0",
    }
    ecac = run_tags("ecac", params)
    assert (ecac["method"], ecac["seed"]) == ("ecac", "7")
    both = run_tags("closed_set", params)  # caa and ecac in one run: values joined
    assert (both["method"], both["head"], both["seed"]) == ("caa+ecac", "fcn", "0+7")


def test_open_vocabulary_and_other_pipelines(base_params):
    lsmseg = run_tags("lsmseg", base_params)
    assert lsmseg == {
        "pipeline": "lsmseg",
        "method": "lsmseg",
        "head": "catseg+lsmseg",
        "backbone": "TinyCLIP-ViT-8-96",
        "dataset": "synthetic",
        "vocabulary": "seen",
        "seed": "0",
    }
    clip = run_tags("clip_pretraining", base_params)
    assert (clip["backbone"], clip["head"], clip["seed"]) == ("TinyCLIP-ViT-8-96", NOT_APPLICABLE, "0")
    data = run_tags("data_preparation", base_params)
    assert (data["method"], data["dataset"], data["seed"]) == ("data_preparation", "synthetic", "0")
    assert run_tags("__default__", base_params, "lsmseg_attribute_selection")["method"] == "lsmseg_attribute_selection"
    report = run_tags("report", base_params)
    assert set(report) == set(TAG_NAMES) and report["seed"] == NOT_APPLICABLE


def test_ablations_fall_back_to_their_method_block_and_join_seeds():
    params = {
        "dataset": {"family": "ade20k_150", "reader_kwargs": {}},
        "caa": {"model": {"head": "fcn", "backbone": "resnet50c"}, "addon": {"name": "caa"}, "training": {"seed": 0}},
        "caa_ablations": {"seeds": [0, 1, 2], "model": {"head": "upernet"}},
        "lsmseg": {"train_vocabulary": "seen", "clip": {"model": "ViT-B-16"}, "training": {"seed": 0}},
        "lsmseg_ablations": {"seeds": [3], "setup": {"train_vocabulary": "full", "clip": {"model": "ViT-L-14"}}},
    }
    caa = run_tags("caa_ablations", params)
    assert caa == {
        "pipeline": "caa_ablations",
        "method": "caa",
        "head": "upernet",
        "backbone": "resnet50c",
        "dataset": "ade20k_150",
        "vocabulary": "ade20k_150",
        "seed": "0,1,2",
    }
    params["caa_ablations"]["seeds"] = 2  # a count: seeds 0..n-1
    assert run_tags("caa_ablations", params)["seed"] == "0,1"
    lsm = run_tags("lsmseg_ablations", params)
    assert (lsm["method"], lsm["backbone"], lsm["vocabulary"], lsm["seed"]) == ("lsmseg", "ViT-L-14", "full", "3")
    assert run_tags("data_preparation+caa", params)["head"] == "fcn"
    assert run_tags("anything", {}) == {
        t: ("anything" if t in ("pipeline", "method") else NOT_APPLICABLE) for t in TAG_NAMES
    }


def test_hook_sets_the_tags_on_the_run(tmp_path, monkeypatch, base_params):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    hook = MlflowTrackingHook()
    hook.after_context_created(
        SimpleNamespace(
            project_path=tmp_path,
            config_loader={"mlflow": {"tracking_uri": uri, "experiment_name": "tags"}},
            params={**base_params, "rows": {"CATSeg [†]": 1}},
        )
    )
    run_params = {
        "pipeline_names": ["ecac"],
        "env": "test",
        "run_id": "r",
        "kedro_version": "1.7",
        "runtime_params": {},
    }
    try:
        hook.before_pipeline_run(run_params, None, None)
        hook.after_pipeline_run(run_params, {}, None, None)
    finally:
        mlflow.end_run()
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tags").experiment_id])
    expected = run_tags("ecac", base_params)
    assert {k: run.data.tags[k] for k in TAG_NAMES} == expected
    assert run.data.tags["kedro.pipeline"] == "ecac" and run.data.params["ecac.model.head"] == "fcn"
    assert run.data.params["rows.CATSeg ___"] == "1"  # keys MLflow rejects are sanitised, not fatal
    found = mlflow.search_runs([run.info.experiment_id], filter_string="tags.method = 'ecac' and tags.seed = '0'")
    assert len(found) == 1


def test_artifacts_land_beside_the_sqlite_store_not_in_the_working_directory(tmp_path, monkeypatch):
    from seg_pipelines.engine import tracking

    store, elsewhere = tmp_path / "store", tmp_path / "cwd"
    store.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    artifact = tmp_path / "table.md"
    artifact.write_text("| a |\n")
    try:
        tracking.start_run(uri, "artifacts-here", "run", {"pipeline": "x"}, {"a": {"b": 1}})
        tracking.log_artifact(artifact, "reporting")
    finally:
        tracking.end_run("FINISHED")
    assert list((store / "mlruns").rglob("table.md")) and not (elsewhere / "mlruns").exists()
    assert tracking.artifact_location("http://server:5000") is None


def test_run_names_tell_runs_apart():
    from seg_pipelines.engine.tracking import run_name

    tags = {"method": "caa", "head": "fcn", "seed": "1"}
    assert run_name("caa", tags) == "caa · fcn · seed 1"
    assert run_name("caa_ablations", {**tags, "seed": "0,1,2"}) == "caa_ablations · fcn · seed 0,1,2"
    assert (
        run_name("closed_set", {"method": "caa+ecac", "head": "fcn", "seed": "0"})
        == "closed_set · caa+ecac · fcn · seed 0"
    )
    assert run_name("report", {"method": "report", "head": NOT_APPLICABLE, "seed": NOT_APPLICABLE}) == "report"


def test_run_names_say_env_dataset_and_checkpoint():
    from seg_pipelines.engine.tracking import run_name

    tags = {"method": "caa", "head": "fcn", "dataset": "synthetic", "seed": "0"}
    assert run_name("caa", tags, env="local") == "caa · fcn · synthetic · seed 0"
    assert run_name("caa", tags, env="test") == "caa · fcn · synthetic · seed 0 · env test"  # no longer the same
    default = {"method": "lsmseg_attribute_selection", "dataset": "synthetic", "seed": "0"}
    assert (
        run_name("__default__", default, env="local", default_pipeline="lsmseg_attribute_selection")
        == "lsmseg_attribute_selection (default) · synthetic · seed 0"
    )
    params = {
        "predict": {"checkpoint": "data/06_models/caa/method.pt", "input": "photos/"},
        "evaluate": {
            "checkpoint": "data/06_models/lsmseg.pt",
            "model_key": "lsmseg",
            "dataset": {"family": "synthetic", "vocabulary": "syn150", "split": "val"},
        },
    }
    bare = {"method": "predict", "head": NOT_APPLICABLE, "dataset": "synthetic", "seed": NOT_APPLICABLE}
    assert run_name("predict", bare, params, env="local") == "predict · caa/method · photos"
    other = {**params, "predict": {"checkpoint": "data/06_models/ecac/method.pt", "input": "street.jpg"}}
    assert run_name("predict", bare, other, env="local") == "predict · ecac/method · street.jpg"
    assert (
        run_name("evaluate", {**bare, "method": "evaluate"}, params, env="test")
        == "evaluate · lsmseg [lsmseg] · synthetic/syn150/val · env test"
    )


def test_logged_params_are_the_pipelines_own_blocks_not_every_parameter():
    """The demo's run list offered hundreds of columns: `report` logged all 580 parameters, `lsmseg`
    its upstream pretraining blocks. Now: own blocks + the data blocks + --params overrides."""
    from kedro.framework.project import configure_project, pipelines

    from seg_pipelines.engine.tracking import param_values, parameter_blocks, run_params
    from seg_pipelines.parameters import plain_data
    from seg_pipelines.settings import CONFIG_LOADER_ARGS, DataRootConfigLoader

    configure_project("seg_pipelines")
    params = plain_data(DataRootConfigLoader(str(PROJECT_ROOT / "conf"), env=None, **CONFIG_LOADER_ARGS)["parameters"])

    def logged(name: str) -> dict[str, str]:
        return param_values(run_params(name, params, pipelines[name], "lsmseg_attribute_selection", {"x": 1}))

    def before(name: str) -> dict[str, str]:  # what was logged until now: every block the pipeline reads
        blocks = parameter_blocks(pipelines[name])
        return param_values(params if blocks is None else {k: v for k, v in params.items() if k in blocks})

    assert len(before("report")) > 500 and set(logged("report")) == {
        key for key in logged("report") if key.startswith(("report.", "runtime."))
    }
    assert len(logged("report")) < 10
    lsmseg = logged("lsmseg")
    assert not any(key.startswith(("clip_pretraining.", "sam_pretraining.")) for key in lsmseg)
    assert {"dataset.family", "lsmseg.training.iterations", "runtime.x"} <= set(lsmseg)
    assert len(lsmseg) < len(before("lsmseg")) * 0.6
    demo_before = set(before("__default__")) | set(before("report"))  # `make demo`: kedro run + the report
    demo_after = set(logged("__default__")) | set(logged("report"))
    assert len(demo_after) < 80 < 500 < len(demo_before)
    assert max(len(value) for name in pipelines for value in logged(name).values()) <= 300  # no huge lists


def test_child_runs_left_running_by_a_dead_process_are_ended_as_killed(tmp_path):
    from seg_pipelines.engine.tracking import end_running_child_runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("runs", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="caa_ablations").info.run_id
    other_parent = client.create_run(experiment, run_name="other").info.run_id
    children = {}
    for name, of in (("dead/seed0", parent), ("done/seed0", parent), ("elsewhere/seed0", other_parent)):
        children[name] = client.create_run(experiment, run_name=name, tags={"mlflow.parentRunId": of}).info.run_id
    client.set_terminated(children["done/seed0"], status="FINISHED")

    assert end_running_child_runs((uri, parent), "killed: the worker died") == ["dead/seed0"]
    dead = client.get_run(children["dead/seed0"])
    assert dead.info.status == "KILLED" and dead.data.tags["status"] == "killed"
    assert dead.data.tags["error"] == "killed: the worker died"
    assert client.get_run(children["done/seed0"]).info.status == "FINISHED"
    assert client.get_run(children["elsewhere/seed0"]).info.status == "RUNNING"  # another run's child
    assert client.get_run(parent).info.status == "RUNNING"  # the parent is its hook's to end
    assert end_running_child_runs(None, "no parent run") == []

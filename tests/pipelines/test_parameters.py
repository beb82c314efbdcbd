"""Parameters are checked before any node runs: every shipped environment is valid, and a wrong
type or impossible value stops the run at its start with the key, the value and what is expected
(Kedro validates each node's annotated parameter blocks; check_parameters validates a whole tree)."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from seg_pipelines.parameters import ParameterError, check_parameters
from tests.fixtures import PROJECT_ROOT

PATTERNS = {"parameters": ["parameters*", "parameters*/**", "**/parameters*"]}


@functools.cache
def _loaded(env: str) -> dict:
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env, config_patterns=PATTERNS
    )
    return loader["parameters"]


def _params(env: str = "local") -> dict:
    """The resolved parameters of ``env`` (loaded once per env; each caller gets its own copy)."""
    return copy.deepcopy(_loaded(env))


@pytest.mark.parametrize("env", ["local", "test", "thesis"])
def test_every_shipped_environment_is_valid(env: str):
    check_parameters(_params(env))


def _set(params: dict, dotted: str, value) -> dict:
    changed = copy.deepcopy(params)
    *path, last = dotted.split(".")
    target = changed
    for key in path:
        target = target[key]
    target[last] = value
    return changed


BAD = [
    ("caa.training.iterations", "ten", "valid integer"),
    ("caa.training.iterations", 6.5, "valid integer"),
    ("caa.training.iterations", 0, "greater than or equal to 1"),
    ("caa.training.iterations", -3, "greater than or equal to 1"),
    ("caa.training.iterations", True, "valid integer"),
    ("ecac.training.batch_size", "8", "valid integer"),
    ("caa.training.lr", "0.01", "expected a number"),
    ("caa.training.lr", 0, "greater than 0"),
    ("caa.augmentation.scale_range", [2.0, 1.0], "low <= high"),
    ("caa.augmentation.crop_size", [96], "at least 2"),
    ("caa.augmentation.flip_probability", 1.5, "less than or equal to 1"),
    ("caa.evaluation.mode", "sliding", "'whole', 'slide' or 'multi_scale'"),
    ("caa_ablations.seeds", 0, "greater than or equal to 1"),
    ("caa_ablations.seeds", [], "at least 1"),
    ("lsmseg_attribute_selection.top_k", "abc", "valid integer"),
    ("lsmseg_attribute_selection.retry.max_attempts", 0, "greater than or equal to 1"),
    ("lsmseg_attribute_selection.scoring.mode", "trained", "'zero_shot' or 'finetune'"),
    ("lsmseg_attribute_selection.attributes", [], "at least 1"),
    ("lsmseg.prompts", "synthetic-world", "'world', 'prompt_set' or 'templates'"),
    ("lsmseg.models.lsmseg.top_k", -1, "greater than or equal to 0"),
    ("lsmseg.training.iterations", "200", "valid integer"),
    ("lsmseg.num_threads", 0, "greater than or equal to 1"),
    ("lsmseg_ablations.enriched_prompts", "gpt4", "'world' or 'prompt_set'"),
    ("clip_pretraining.training.steps", 1.5, "valid integer"),
    ("dataset.splits", [], "at least 1"),
    ("preparation.on_bad_sample", "ignore", "'raise' or 'skip'"),
    ("class_statistics.rho", "half", "expected a number"),
]


@pytest.mark.parametrize(("key", "value", "expected"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_a_bad_value_is_named_with_its_key(key: str, value, expected: str):
    with pytest.raises(ParameterError) as error:
        check_parameters(_set(_params(), key, value))
    message = str(error.value)
    assert f"{key} = {value!r}" in message and expected in message, message


def test_every_problem_is_listed_at_once():
    params = _set(_set(_params(), "caa.training.iterations", 0), "caa.training.batch_size", "eight")
    with pytest.raises(ParameterError) as error:
        check_parameters(params, ["caa"])
    assert str(error.value).count("\n") == 2


def validate_for(pipeline_name: str, params: dict) -> dict:
    """What Kedro does at a run's start: validate the parameter blocks the pipeline's nodes annotate."""
    from kedro.framework.project import configure_project
    from kedro.validation.parameter_validator import ParameterValidator

    from seg_pipelines.pipeline_registry import register_pipelines

    configure_project("seg_pipelines")
    return ParameterValidator({pipeline_name: register_pipelines()[pipeline_name]}).validate_raw_params(params)


def test_only_the_blocks_a_pipeline_reads_are_checked():
    from kedro.validation.exceptions import ParameterValidationError

    broken = _set(_params(), "lsmseg.training.iterations", 0)
    validated = validate_for("caa", broken)  # lsmseg is not read by caa
    assert type(validated["caa"]["training"]).__name__ == "ClosedSetTraining"  # the node gets the model
    with pytest.raises(ParameterValidationError, match="lsmseg"):
        validate_for("lsmseg", broken)


def test_a_run_with_bad_parameters_stops_before_its_first_node(project_copy: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.validation.exceptions import ParameterValidationError
    from mlflow.tracking import MlflowClient

    bootstrap_project(project_copy)
    runtime = {"caa": {"training": {"iterations": "ten"}}}
    with KedroSession.create(project_path=project_copy, env="test", runtime_params=runtime) as session:
        with pytest.raises(ParameterValidationError, match=r"(?s)caa\.training.*iterations.*valid integer"):
            session.run(pipeline_names=["caa"])
    assert not (project_copy / "data" / "test" / "01_raw").exists()  # no node ran: the world was not rendered
    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])  # this test's store (project_copy)
    experiment = client.get_experiment_by_name("seg_pipelines")
    assert experiment is None or not client.search_runs([experiment.experiment_id])  # no run left open


ISSUE_14_BAD = [
    ("ecac_ablations.model.auxiliary_head", "yes", "valid boolean"),
    ("ecac.addon.cfg.intra_variance_on", "features", "'logits' or 'probabilities'"),
    ("ecac.addon.cfg.memory_learning", "gradient", "'momentum' or 'loss_and_momentum'"),
    ("ecac_ablations.addon.cfg.intra_variance_start_iter", -1, "greater than or equal to 0"),
    ("lsmseg.training.lr_schedule", "step", "'cosine', 'poly' or 'constant'"),
    # issue 28
    ("ecac.addon.cfg.kl_average", "pixels", "'all_classes' or 'present_classes'"),
    ("lsmseg.training.min_lr_ratio", 2.0, "less than or equal to 1"),
    # issue 29 item 7: the add-ons' arguments, as deep as the code reads them
    ("caa.addon.cfg.affinity_loss_weight", "heavy", "expected a number"),
    ("caa_ablations.addon.cfg.reduction_kernel_size", 5, "1 or 3"),
    ("caa.addon.cfg.use_intra", "no", "valid boolean"),
    ("ecac.addon.cfg.kl_weight", -1.0, "greater than or equal to 0"),
    ("ecac_ablations.addon.cfg.memory_momentum", 1.5, "less than or equal to 1"),
]


@pytest.mark.parametrize(("key", "value", "expected"), ISSUE_14_BAD, ids=[f"{k}={v!r}" for k, v, _ in ISSUE_14_BAD])
def test_issue_14_switches_are_checked(key: str, value, expected: str):
    with pytest.raises(ParameterError) as error:
        check_parameters(_set(_params(), key, value))
    assert key.split(".")[0] in str(error.value) and expected in str(error.value)


def test_thesis_env_follows_the_equations():
    """Eq. 3.12 / 4.21: no MMSeg auxiliary head, no coarse CE; literal L_iv and L_M; poly to 0; chapter 5 §5.3.2
    (issue 28's values: tests/pipelines/test_thesis_env.py::test_thesis_env_has_issue_28_values)."""
    params = _params("thesis")
    for block in ("caa", "ecac", "caa_ablations", "ecac_ablations"):
        assert params[block]["model"]["auxiliary_head"] is False, block
        assert params[block]["training"]["min_lr"] == 0.0, block
    for block in ("ecac", "ecac_ablations"):
        cfg = params[block]["addon"]["cfg"]
        assert cfg["coarse_loss_weight"] == 0.0
        assert cfg["intra_variance_on"] == "logits" and cfg["intra_variance_detach_features"] is False
        assert cfg["memory_learning"] == "loss_and_momentum" and cfg["memory_logit_temperature"] is None
        assert (
            cfg["kl_weight"] == 1.0 and cfg["intra_variance_weight"] == 50.0 and cfg["memory_loss_start_iter"] == 1000
        )
    lsmseg = params["lsmseg"]
    assert lsmseg["clip"] == {**lsmseg["clip"], "model": "ViT-B-16", "image_size": 384, "finetune": "qv"}
    assert lsmseg["models"]["lsmseg"]["top_k"] == 32 and lsmseg["models"]["lsmseg"]["sam_variant"] == "vit_l"
    training = lsmseg["training"]
    assert (training["iterations"], training["batch_size"], training["lr"], training["weight_decay"]) == (
        80000,
        4,
        2.0e-4,
        1.0e-4,
    )
    assert lsmseg["augmentation"]["crop_size"] == [384, 384]
    assert training["grad_clip_norm"] is None and training["loss_on_kept_classes"] is False
    assert params["lsmseg_attribute_selection"]["scoring"]["mode"] == "finetune"

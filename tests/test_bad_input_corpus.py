"""The bad-input corpus (issue 29): what a new user, a careless hand and a hostile file give the
project, each case with its asserted outcome — correct, an error that names the key, file or value,
or a counted skip. Nothing is silent, nothing is lost.

More cases of the same kind live beside the code they test: parameter values
(``tests/pipelines/test_parameters.py``), reader layouts (``tests/datasets/test_readers.py``,
``test_index.py``), LLM answers and cache lines (``tests/prompts/test_bad_inputs.py``), predict /
evaluate inputs (``tests/experiments/test_inference.py``), MLflow stores (``tests/test_hooks.py``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seg_pipelines.datasets.base import DatasetError
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import build_index
from seg_pipelines.experiments import inference
from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config, load_segmentor
from seg_pipelines.models.checkpoints import CheckpointError
from seg_pipelines.parameters import ParameterError, check_parameters
from tests.fixtures.layouts import write_ade20k_150
from tests.pipelines.test_parameters import _params, _set

# --------------------------------------------------------------------------------------------------
# 1. Parameter values, nested as deep as the code reads them: refused before any node, naming the
#    key and the value
# --------------------------------------------------------------------------------------------------

PARAMETER_CASES = [
    ("caa.addon.cfg.affinity_loss_weight", "heavy", "expected a number, got 'heavy'"),
    ("caa.addon.cfg.aux_loss_weight", -1.0, "greater than or equal to 0"),
    ("caa.addon.cfg.channels", 0, "greater than or equal to 1"),
    ("caa.addon.cfg.affinity_chanels", 32, "Extra inputs are not permitted"),  # a typo in the add-on's keys
    ("ecac.addon.cfg.memory_momentun", 0.1, "did you mean 'memory_momentum'"),
    ("ecac.addon.cfg.memory_momentum", 1.5, "less than or equal to 1"),
    ("caa.model.head", "fcnn", "Input should be 'fcn'"),
    ("caa.model.channels", "wide", "valid integer"),
    ("caa.training.grad_clip_norm", -1.0, "greater than 0"),
    ("caa.training.momentum", 1.0, "less than 1"),
    ("caa.training.iteratons", 2, "Extra inputs are not permitted"),  # a YAML typo (not only --params)
    ("caa.training.amp_dtype", "float8", "'auto', 'bfloat16' or 'float16'"),
    ("predict.max_megapixels", 0, "greater than 0"),
    ("predict.alpha", 2, "less than or equal to 1"),
    ("predict.mode", "tiles", "'whole', 'slide' or 'multi_scale'"),
    ("predict.scales", [], "at least 1"),
    ("predict.crop_size", [0, 0], "greater than or equal to 1"),
    ("evaluate.limit", 0, "greater than or equal to 1"),
    ("evaluate.protocol", "open", "'closed_set' or 'open_vocabulary'"),
    ("evaluate.dataset.split", 5, "valid string"),
    ("lsmseg.models.lsmseg.sam_variant", "huge", "sam_variant must be one of"),
    ("lsmseg.training.batch_size", 0, "greater than or equal to 1"),
    ("lsmseg.prompt_comparison.rule", "t99", "'t95' or '2se'"),
    ("lsmseg_attribute_selection.llm_samples.n", 0, "greater than or equal to 1"),
    ("lsmseg_attribute_selection.llm_samples.temperature", -0.5, "greater than or equal to 0"),
    ("lsmseg_attribute_selection.llm_samples.use", "vote", "'ensemble' or 'replicates'"),
    ("clip_pretraining.training.lr", "fast", "expected a number, got 'fast'"),
    ("sam_pretraining.training.steps", -5, "greater than or equal to 1"),
    ("class_statistics.group_size", 0, "greater than or equal to 1"),
    ("preparation.overview_images", -1, "greater than or equal to 1"),
    ("dataset.family", None, "valid string"),
]


@pytest.mark.parametrize(
    ("key", "value", "expected"), PARAMETER_CASES, ids=[f"{k}={v!r}" for k, v, _ in PARAMETER_CASES]
)
def test_a_bad_parameter_is_refused_naming_key_and_value(key: str, value, expected: str):
    with pytest.raises(ParameterError) as error:
        check_parameters(_set(_params(), key, value))
    message = str(error.value)
    # the list item that is wrong; the block whose validator names the unknown key
    where = {
        "predict.crop_size": "predict.crop_size.0",
        "ecac.addon.cfg.memory_momentun": "ecac.addon.cfg",
        "lsmseg.models.lsmseg.sam_variant": "lsmseg.models.lsmseg",
    }.get(key, key)
    assert f"{where} = " in message and expected in message, message


def test_the_closed_lists_in_the_parameters_match_the_code():
    """The head, SAM-variant and ECAC-argument lists that parameters.py holds (it may not import the
    models) are the models' own."""
    import inspect

    from seg_pipelines.models.ecac import ExtendedContextAwareClassifier
    from seg_pipelines.models.ovss.sam import SAM_ENCODER_CONFIGS
    from seg_pipelines.models.segmentor import CLOSED_SET_MODELS
    from seg_pipelines.parameters import CLOSED_SET_HEADS, ECAC_OTHER_ARGUMENTS, SAM_VARIANTS, ECACConfig

    assert set(CLOSED_SET_HEADS) == set(CLOSED_SET_MODELS)
    assert set(SAM_VARIANTS) == set(SAM_ENCODER_CONFIGS)
    arguments = set(inspect.signature(ExtendedContextAwareClassifier.__init__).parameters)
    set_by_the_code = {"self", "in_channels", "num_classes", "class_weights", "ignore_index"}
    assert arguments - set_by_the_code == set(ECACConfig.model_fields) | set(ECAC_OTHER_ARGUMENTS)


# --------------------------------------------------------------------------------------------------
# 2. --params on the command line: a key that names nothing, a value of the wrong kind
# --------------------------------------------------------------------------------------------------

RUNTIME_CASES = [
    ({"caa": {"trainig": {"iterations": 2}}}, "caa has no key 'trainig'; did you mean 'caa.training'?"),
    ({"caa": {"training": {"iteratons": 2}}}, "did you mean 'caa.training.iterations'?"),
    ({"predict": {"mdoe": "slide"}}, "predict has no key 'mdoe'; did you mean 'predict.mode'"),
    ({"lsmseg_atribute_selection": {"top_k": 3}}, "did you mean 'lsmseg_attribute_selection'"),
    ({"caa": {"model": ["fcn"]}}, "'caa.model': got a list (['fcn']) where the configuration has a mapping"),
    ({"caa": {"training": "fast"}}, "'caa.training': got a single value ('fast')"),
    ({"caa": {"training": {"iterations": {"x": 1}}}}, "'caa.training.iterations' is a single value"),
    ({"dataset": {"splits": {"train": 1}}}, "'dataset.splits' is a list (['train', 'val']), so it has no key"),
]


@pytest.mark.parametrize(("runtime", "expected"), RUNTIME_CASES, ids=[e[:40] for _, e in RUNTIME_CASES])
def test_a_bad_params_option_is_refused_before_any_node(runtime: dict, expected: str):
    from types import SimpleNamespace

    from kedro.config import OmegaConfigLoader

    from seg_pipelines.hooks import RuntimeParameterCheckHook, UnknownParameterError
    from tests.fixtures import PROJECT_ROOT

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="local",
        config_patterns={"parameters": ["parameters*", "parameters*/**", "**/parameters*"]},
        runtime_params=runtime,
    )
    hook = RuntimeParameterCheckHook()
    with pytest.raises(UnknownParameterError) as error:
        hook.after_context_created(SimpleNamespace(config_loader=loader))
        hook.before_pipeline_run({"runtime_params": runtime}, None, None)
    assert expected in str(error.value)


# --------------------------------------------------------------------------------------------------
# 3. Dataset files: each bad sample raises naming its file (on_bad_sample: raise) or is skipped,
#    counted and listed (skip); the good samples are kept
# --------------------------------------------------------------------------------------------------

NAMES = ["sky", "grass", "lime", "coin"]
STEM = "ADE_train_00000002"


def _pair(root: Path) -> tuple[Path, Path]:
    dataset = root / "ADEChallengeData2016"
    return dataset / "images" / "training" / f"{STEM}.jpg", dataset / "annotations" / "training" / f"{STEM}.png"


def _damage(kind: str, root: Path) -> str:
    """Break sample 2 of the train split; return what the error must name."""
    image, label = _pair(root)
    if kind == "empty image file":
        image.write_bytes(b"")
        return str(image)
    if kind == "empty label file":
        label.write_bytes(b"")
        return str(label)
    if kind == "text file as image":
        image.write_text("this is not a picture")
        return str(image)
    if kind == "text file as label":
        label.write_text("0 1 2")
        return str(label)
    if kind == "half a jpeg":
        image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2])
        return str(image)
    if kind == "half a png label":
        label.write_bytes(label.read_bytes()[:60])
        return str(label)
    if kind == "label larger than image":
        Image.fromarray(np.ones((48, 64), np.uint8)).save(label)
        return str(image)
    if kind == "label smaller than image":
        Image.fromarray(np.ones((12, 16), np.uint8)).save(label)
        return str(image)
    if kind == "label value beyond the classes":
        Image.fromarray(np.full((24, 32), 200, np.uint8)).save(label)
        return "200"  # the raw value found in the file
    if kind == "missing label":
        label.unlink()
        return STEM
    if kind == "label of fractional floats":  # a float TIFF under the label's name: 1.5 is no class id
        import tifffile

        tifffile.imwrite(label, np.full((24, 32), 1.5, np.float32))
        return str(label)
    if kind == "label as RGB colours":
        Image.fromarray(np.ones((24, 32, 3), np.uint8)).save(label)
        return str(label)
    if kind == "case-only extension twin":
        twin = image.with_suffix(".JPG")
        twin.write_bytes(image.read_bytes())
        return str(twin)
    raise AssertionError(kind)


DATASET_CASES = [
    "empty image file",
    "empty label file",
    "text file as image",
    "text file as label",
    "half a jpeg",
    "half a png label",
    "label larger than image",
    "label smaller than image",
    "label value beyond the classes",
    "missing label",
    "label of fractional floats",
    "label as RGB colours",
    "case-only extension twin",
]


@pytest.fixture
def ade_root(tmp_path: Path) -> Path:
    return write_ade20k_150(tmp_path / "ade", n_train=4, n_val=2, size=(24, 32), class_names=NAMES)


@pytest.mark.parametrize("kind", DATASET_CASES)
def test_a_bad_sample_raises_naming_the_file_or_value(kind: str, ade_root: Path):
    named = _damage(kind, ade_root)
    with pytest.raises(DatasetError) as error:
        build_index(create_reader("ade20k_150", ade_root), ["train", "val"], show_progress=False)
    assert named in str(error.value), str(error.value)


@pytest.mark.parametrize("kind", DATASET_CASES)
def test_a_bad_sample_is_a_counted_listed_skip(kind: str, ade_root: Path, caplog):
    named = _damage(kind, ade_root)
    with caplog.at_level(logging.WARNING):
        index, report = build_index(
            create_reader("ade20k_150", ade_root), ["train", "val"], on_bad_sample="skip", show_progress=False
        )
    assert report["skipped_count"] >= 1 and any(named in entry["error"] for entry in report["skipped"])
    assert report["samples_per_split"]["val"] == 2  # the other split is untouched
    kept = set(index.loc[index["split"] == "train", "sample_id"])
    assert STEM not in kept and len(kept) == 3 and "skipped" in caplog.text


def test_a_label_without_its_image_is_ignored_and_the_rest_is_indexed(ade_root: Path):
    """An orphan annotation (no image) is not a sample: correct outcome, nothing to skip."""
    _, label = _pair(ade_root)
    orphan = label.with_name("ADE_train_00000099.png")
    orphan.write_bytes(label.read_bytes())
    index, report = build_index(create_reader("ade20k_150", ade_root), ["train", "val"], show_progress=False)
    assert report["samples_per_split"] == {"train": 4, "val": 2} and report["skipped_count"] == 0


# --------------------------------------------------------------------------------------------------
# 4. Checkpoints: each bad file is an error that names it (loaded with weights_only)
# --------------------------------------------------------------------------------------------------

TINY_MODEL = {"head": "fcn", "backbone": "resnet_tiny", "channels": 16, "aux_channels": 8}


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> Path:
    config = closed_set_model_config(TINY_MODEL, num_classes=4, ignore_index=255)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save({"model": build_segmentor(config).state_dict(), "model_config": config, "class_names": NAMES}, path)
    return path


def _bad_checkpoint(kind: str, good: Path, folder: Path) -> Path:
    path = folder / f"{kind.replace(' ', '_')}.pt"
    if kind == "missing file":
        return path
    if kind == "empty file":
        path.write_bytes(b"")
    elif kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    elif kind == "json renamed .pt":
        path.write_text(json.dumps({"model": {}}))
    elif kind == "a pickled object":  # weights_only refuses code objects
        torch.save({"model": {}, "model_config": {}, "hook": logging.getLogger}, path)
    elif kind == "without model_config":
        torch.save({"model": torch.load(good, weights_only=True)["model"]}, path)
    elif kind == "a folder":
        path.mkdir()
    else:
        raise AssertionError(kind)
    return path


CHECKPOINT_CASES = [
    "missing file",
    "empty file",
    "random bytes",
    "truncated",
    "json renamed .pt",
    "a pickled object",
    "without model_config",
    "a folder",
]


@pytest.mark.parametrize("kind", CHECKPOINT_CASES)
def test_a_bad_checkpoint_is_an_error_naming_the_file(kind: str, checkpoint_file: Path, tmp_path: Path):
    path = _bad_checkpoint(kind, checkpoint_file, tmp_path)
    with pytest.raises((CheckpointError, inference.InferenceInputError)) as error:
        inference.load_inference_model({"checkpoint": str(path)})
    assert path.name in str(error.value), str(error.value)


def test_a_checkpoint_for_another_class_count_is_named(checkpoint_file: Path):
    with pytest.raises(ValueError, match=r"class-count mismatch: checkpoint .*model\.pt was trained for 4 classes"):
        load_segmentor(checkpoint_file, num_classes=7)


# --------------------------------------------------------------------------------------------------
# 5. predict inputs: an error naming the input, or the bad file listed with the others segmented
# --------------------------------------------------------------------------------------------------


def _photo(path: Path, size=(20, 28)) -> Path:
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


PREDICT_ERRORS = [
    ("no input", lambda folder: None, "no image or folder given"),
    ("missing path", lambda folder: folder / "nowhere", "input not found"),
    ("a text file", lambda folder: (folder / "notes.txt").write_text("x") and folder / "notes.txt", "is not an image"),
    ("an empty folder", lambda folder: folder, "holds no images"),
    (
        "only non-images",
        lambda folder: (folder / "a.txt").write_text("x") and (folder / "b.csv").write_text("y") and folder,
        "holds no images",
    ),
    ("only corrupt images", lambda folder: (folder / "x.png").write_bytes(b"junk") and folder, "could be read"),
]


@pytest.mark.parametrize(("name", "make", "expected"), PREDICT_ERRORS, ids=[n for n, _, _ in PREDICT_ERRORS])
def test_bad_predict_input_is_named(name, make, expected, checkpoint_file: Path, tmp_path: Path):
    model = inference.load_inference_model({"checkpoint": str(checkpoint_file)})
    given = make(tmp_path)
    with pytest.raises(inference.InferenceInputError, match=expected) as error:
        inference.predict_images(model, {"input": None if given is None else str(given), "show_progress": False})
    if given is not None:
        assert str(given) in str(error.value) or Path(str(given)).name in str(error.value)


@pytest.mark.parametrize("bad", ["empty.png", "truncated.jpg", "text.webp"])
def test_one_bad_image_among_good_ones_is_listed_and_the_rest_segmented(bad: str, checkpoint_file, tmp_path):
    good = [_photo(tmp_path / "a.png"), _photo(tmp_path / "b.jpg")]
    path = tmp_path / bad
    if bad == "empty.png":
        path.write_bytes(b"")
    elif bad == "truncated.jpg":
        path.write_bytes(good[1].read_bytes()[:100])
    else:
        path.write_text("not an image")
    model = inference.load_inference_model({"checkpoint": str(checkpoint_file)})
    outputs, summary = inference.predict_images(model, {"input": str(tmp_path), "show_progress": False})
    assert sorted(outputs) == ["a_label", "a_overlay", "b_label", "b_overlay"]
    assert list(summary["failed"]) == [str(path)] and summary["images_segmented"] == 2
    assert summary["status"] == "completed with 1 of 3 images failed"


def test_a_grey_or_rgba_or_16_bit_photo_is_segmented_like_rgb(checkpoint_file, tmp_path):
    """Correct outcome: other pixel formats are read as RGB, labels keep the photo's size."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 28), dtype=np.uint8), mode="L").save(tmp_path / "grey.png")
    Image.fromarray(rng.integers(0, 255, (20, 28, 4), dtype=np.uint8), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (20, 28), dtype=np.uint16)).save(tmp_path / "deep.png")
    model = inference.load_inference_model({"checkpoint": str(checkpoint_file)})
    outputs, summary = inference.predict_images(model, {"input": str(tmp_path), "show_progress": False})
    assert summary["failed"] == {} and summary["images_segmented"] == 3
    assert all(np.asarray(outputs[f"{n}_label"]).shape == (20, 28) for n in ("grey", "rgba", "deep"))


def test_the_corpus_has_at_least_sixty_cases():
    cases = (
        len(PARAMETER_CASES)
        + len(RUNTIME_CASES)
        + 2 * len(DATASET_CASES)
        + 1
        + len(CHECKPOINT_CASES)
        + 1
        + len(PREDICT_ERRORS)
        + 3
        + 1
    )
    assert cases >= 60, cases

"""README "Your own data" end to end: a folder dataset written here (class-id masks and RGB masks with a
palette) goes through ``data_preparation``, ``caa``, ``evaluate`` and ``predict`` with the README's own
settings and commands, on ``--env test`` (tiny model, 6 iterations)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from kedro.framework.cli.utils import _split_params
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from PIL import Image

from seg_pipelines.experiments import inference
from seg_pipelines.models.factory import create_model
from tests.fixtures import layouts
from tests.fixtures.models import tiny_ovss

README = Path(__file__).resolve().parents[3] / "README.md"
TINY_OVSS = tiny_ovss(image_size=32)


def readme_recipe() -> tuple[dict, list[str]]:
    """The settings (``conf/local/parameters.yml``) and ``kedro run`` lines of README "Your own data"."""
    section = README.read_text().split("## Your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"\n\n((?: {4}[^\n]*\n?)+)", section)
    code = [re.sub(r"(?m)^ {4}", "", block) for block in blocks]
    (settings,) = [yaml.safe_load(block) for block in code if block.startswith("dataset:")]
    commands = [line.split("  #")[0].strip() for block in code for line in block.splitlines()]
    return settings, [line for line in commands if line.startswith("kedro run")]


def in_test_root(value):
    """``value`` with the default env's output paths (``data/06_models/...``) moved to the test env's data
    root (``data/test/...``, README "Environments and data roots"); the user's own data stays put."""
    if isinstance(value, dict):
        return {key: in_test_root(item) for key, item in value.items()}
    if isinstance(value, str):
        return re.sub(r"(?<![\w/])data/(0[2-8]_)", r"data/test/\1", value)
    return value


def use_settings(project: Path, settings: dict) -> None:
    """``settings`` as the test env's (the README puts them in conf/local; the test runs --env test)."""
    settings = in_test_root(settings)
    for path in (project / "conf/test").glob("parameters*.yml"):
        existing = yaml.safe_load(path.read_text()) or {}
        if set(existing) & set(settings):  # one env may define a key once: the recipe's replace the test env's
            path.write_text(yaml.safe_dump({k: v for k, v in existing.items() if k not in settings}))
    (project / "conf/test/parameters_my_data.yml").write_text(yaml.safe_dump(settings))


def run_command(project: Path, command: str) -> None:
    """A README ``kedro run --pipelines=… [--params=…]`` line, parsed as Kedro's CLI does, on --env test."""
    options = dict(part.lstrip("-").split("=", 1) for part in shlex.split(in_test_root(command))[2:])
    bootstrap_project(project)
    params = _split_params(None, None, options["params"]) if "params" in options else {}
    with KedroSession.create(project_path=project, env="test", runtime_params=params) as session:
        session.run(pipeline_names=[options["pipelines"]])


@pytest.mark.parametrize("mask_format", ["ids", "rgb"])
def test_readme_recipe_trains_caa_evaluates_and_predicts_on_a_folder_dataset(project_copy: Path, mask_format: str):
    settings, commands = readme_recipe()
    assert [c.split()[2] for c in commands] == [
        f"--pipelines={p}" for p in ("data_preparation", "caa", "evaluate", "predict", "export")
    ]
    root = project_copy / settings["dataset"]["root"]
    written = layouts.write_folder_dataset(root, mask_format, split_sizes={"train": 8, "val": 3}, size=(32, 40))
    labels = written.pop("labels")
    if mask_format == "rgb":
        settings["dataset"]["reader_kwargs"] |= {
            "mask_format": "rgb",
            "palette": "palette.txt",
            "ignore_colors": ["#000000"],
        }
    use_settings(project_copy, settings)

    for command in commands:
        run_command(project_copy, command)

    manifest = json.loads((project_copy / "data/test/01_raw/dataset_manifest.json").read_text())
    assert manifest["family"] == "folder" and manifest["class_names"] == list(layouts.FOLDER_CLASSES)
    report = json.loads((project_copy / "data/test/08_reporting/preparation_report.json").read_text())
    assert report["samples_per_split"] == {"train": 8, "val": 3} and report["skipped_count"] == 0
    statistics = pd.read_csv(project_copy / "data/test/04_feature/class_statistics.csv")
    train = [label for (split, _), label in labels.items() if split == "train"]
    expected_pixels = sum(np.bincount(label[label != 255], minlength=4) for label in train)
    assert statistics.sort_values("class_id")["pixel_count"].tolist() == expected_pixels.tolist()

    # evaluate on the val split reproduces the caa pipeline's own evaluation of the same checkpoint
    caa = json.loads((project_copy / "data/test/08_reporting/caa_closed_set_metrics.json").read_text())["caa"]
    evaluated = json.loads((project_copy / "data/test/08_reporting/evaluation_metrics.json").read_text())["evaluate"]
    per_class = pd.read_csv(project_copy / "data/test/08_reporting/evaluation_per_class_iou.csv")
    assert per_class["name"].tolist() == list(layouts.FOLDER_CLASSES)
    assert evaluated["images"] == 3 and evaluated["mIoU"] == pytest.approx(caa["method"]["mIoU"], abs=1e-6)
    val = [label for (split, _), label in labels.items() if split == "val"]
    assert per_class["ground_truth_pixels"].sum() == sum((label != 255).sum() for label in val)

    # predict: one label and one overlay per image of images/val (img0.jpg, img2.png; street/ is a subfolder)
    out = project_copy / "data/test/07_model_output/predictions"
    assert sorted(p.name for p in out.iterdir()) == [
        "img0_label.png",
        "img0_overlay.png",
        "img2_label.png",
        "img2_overlay.png",
        "summary.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_classes"] == 4 and set(summary["top_classes_all_images"]) <= set(layouts.FOLDER_CLASSES)
    model = inference.load_inference_model({"checkpoint": str(project_copy / "data/test/06_models/caa/method.pt")})
    assert model.class_names == list(layouts.FOLDER_CLASSES)
    image = torch.from_numpy(np.asarray(Image.open(root / "images/val/img2.png").convert("RGB"))).permute(2, 0, 1)
    scores = inference.build_predictor(model, model.class_names, {})(image[None].float() / 255)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "img2_label.png")), scores.argmax(1)[0].numpy())

    # export: the ONNX file of the same checkpoint, checked on the folder dataset's val split
    assert (project_copy / "data/test/06_models/caa/method.onnx").is_file()
    exported = json.loads((project_copy / "data/test/08_reporting/onnx_export_report.json").read_text())
    assert exported["passed"] and exported["images_evaluated"] == 3
    assert exported["mIoU_onnx"] == pytest.approx(evaluated["mIoU"], abs=0.01)


def test_the_class_list_is_the_open_vocabulary_vocabulary_for_evaluate_and_predict(project_copy: Path):
    root = project_copy / "data/01_raw/my_data"
    written = layouts.write_folder_dataset(root, "rgb", split_sizes={"val": 2}, size=(32, 32))
    written.pop("labels")
    torch.manual_seed(0)
    reference = create_model("catseg", **TINY_OVSS).eval()
    checkpoint = project_copy / "data/06_models/catseg.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    config = {"architecture": "catseg", "kwargs": TINY_OVSS}
    torch.save({"model": reference.state_dict(), "model_config": config}, checkpoint)
    dataset = {"family": "folder", "root": "data/01_raw/my_data", "split": "val", "reader_kwargs": written}
    params = f"predict.input=data/01_raw/my_data/images/val,predict.checkpoint={checkpoint}"
    run_command(
        project_copy,
        f'kedro run --pipelines=predict --params="{params},predict.vocabulary=data/01_raw/my_data/classes.txt"',
    )
    bootstrap_project(project_copy)
    with KedroSession.create(
        project_path=project_copy,
        env="test",
        runtime_params={"evaluate": {"checkpoint": str(checkpoint), "dataset": dataset}},
    ) as session:
        session.run(pipeline_names=["evaluate"])

    per_class = pd.read_csv(project_copy / "data/test/08_reporting/evaluation_per_class_iou.csv")
    assert per_class["name"].tolist() == list(layouts.FOLDER_CLASSES)
    metrics = json.loads((project_copy / "data/test/08_reporting/evaluation_metrics.json").read_text())["evaluate"]
    counted = per_class["ground_truth_pixels"] > 0  # open-vocabulary protocol: classes with ground truth
    assert metrics["classes_counted"] == counted.sum() == 4
    assert metrics["mIoU"] == pytest.approx(per_class.loc[counted, "iou"].mean())
    summary = json.loads((project_copy / "data/test/07_model_output/predictions/summary.json").read_text())
    assert summary["kind"] == "open_vocabulary" and summary["num_classes"] == 4
    model = inference.load_inference_model({"checkpoint": str(checkpoint)})
    image = torch.from_numpy(np.asarray(Image.open(root / "images/val/img0.jpg").convert("RGB"))).permute(2, 0, 1)
    text = inference.text_embeddings(model, list(layouts.FOLDER_CLASSES), inference.DEFAULT_TEMPLATES)
    with torch.no_grad():
        expected = reference(image[None].float() / 255, text)["logits"].argmax(1)[0].numpy()
    label = np.asarray(Image.open(project_copy / "data/test/07_model_output/predictions/img0_label.png"))
    np.testing.assert_array_equal(label, expected)


def test_a_typo_or_a_missing_file_in_the_settings_stops_the_run_before_any_node(project_copy: Path):
    from kedro.validation.exceptions import ParameterValidationError

    settings, _ = readme_recipe()
    layouts.write_folder_dataset(project_copy / settings["dataset"]["root"], "ids").pop("labels")
    settings["dataset"]["reader_kwargs"]["clases"] = settings["dataset"]["reader_kwargs"].pop("classes")
    use_settings(project_copy, settings)
    with pytest.raises(ParameterValidationError, match=r"(?s)'dataset'.*reader_kwargs\.clases: unknown key"):
        run_command(project_copy, "kedro run --pipelines=data_preparation")
    settings["dataset"]["reader_kwargs"]["classes"] = "labels.txt"
    del settings["dataset"]["reader_kwargs"]["clases"]
    use_settings(project_copy, settings)
    with pytest.raises(ParameterValidationError, match=r"reader_kwargs\.classes = 'labels.txt': no such file"):
        run_command(project_copy, "kedro run --pipelines=data_preparation")
    assert not (project_copy / "data/test/01_raw/dataset_manifest.json").exists()  # no node ran

"""ONNX export checked against PyTorch: FCN+CAA and FCN+ECAC (max abs logit difference <= 1e-4, same
mIoU), LSMSeg with a fixed vocabulary, and ``predict`` on the ``.onnx`` file giving PyTorch's labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.synthetic import ensure_synthetic_world
from seg_pipelines.engine.onnx_export import OnnxExportError, export_onnx, onnx_input_dims, read_onnx_metadata
from seg_pipelines.experiments import export, inference
from seg_pipelines.experiments.closed_set import build_segmentor
from seg_pipelines.models.factory import create_model
from tests.fixtures.models import tiny_ovss

TOLERANCE = 1e-4
TINY_LSMSEG = tiny_ovss(top_k=4, use_sam=True, sam_variant="tiny")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export_world") / "synthetic"
    ensure_synthetic_world(root, seed=0, image_size=48, n_train=2, n_val=3)
    return root


def _dataset(world: Path) -> dict:
    return {"family": "synthetic", "root": str(world), "split": "val"}


def calibrate_batch_norm(model: torch.nn.Module, images: torch.Tensor) -> None:
    """BatchNorm statistics of ``images`` (as after training): at random init with unit running
    statistics the add-ons' context branches hardly move the logits, so a round trip could not tell
    a lost branch from an exported one."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    with torch.no_grad():
        model(images)
    for norm in norms:
        norm.eval()


def _training_images(world: Path) -> torch.Tensor:
    """The world's training images, ImageNet-normalised, as a batch (what the statistics would be trained on)."""
    reader = create_reader("synthetic", world)
    images = [reader.load_pair(sample)[0] for sample in reader.list_samples("train")]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    return (batch - mean) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _closed_set_checkpoint(world: Path, directory: Path, addon: str, addon_cfg: dict) -> tuple[Path, torch.nn.Module]:
    reader = create_reader("synthetic", world)
    config = {
        "name": "fcn",
        "num_classes": reader.num_classes,
        "backbone": "resnet_tiny",
        "channels": 16,
        "aux_channels": 8,
        "addon": addon,
        "addon_cfg": addon_cfg,
    }
    torch.manual_seed(0)
    model = build_segmentor(config).eval()
    calibrate_batch_norm(model, _training_images(world))
    path = directory / f"{addon}.pt"
    torch.save({"model": model.state_dict(), "model_config": config, "class_names": reader.class_names}, path)
    return path, model


@pytest.fixture(scope="module")
def caa_export(world, tmp_path_factory):
    """FCN+CAA with a chunk size far below the feature map (several chunks at 130x170: the loop that
    ``torch.export`` would unroll for the sample size), exported and checked once for the module."""
    directory = tmp_path_factory.mktemp("caa")
    checkpoint, model = _closed_set_checkpoint(
        world, directory, "caa", {"channels": 16, "affinity_channels": 8, "chunk_size": 16}
    )
    params = {
        "checkpoint": str(checkpoint),
        "dataset": _dataset(world),
        "compare_sizes": [[67, 93], [130, 170]],
        "show_progress": False,
    }
    report, metrics, markdown = export.run_export(params)
    return checkpoint, model, report, metrics, markdown


def test_caa_round_trip_matches_pytorch_at_odd_sizes(caa_export):
    checkpoint, model, report, metrics, markdown = caa_export
    # the affinity branch moves the logits by far more than the tolerance: a lost branch would fail
    image = torch.rand(1, 3, 130, 170, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(image)["logits"]
        saved = model.addon.query.weight.clone()
        model.addon.query.weight.zero_()
        without_affinity = model(image)["logits"]
        model.addon.query.weight.copy_(saved)
    assert float((logits - without_affinity).abs().max()) > 10 * TOLERANCE

    sizes = {(row["height"], row["width"]) for row in report["logit_comparison"]}
    assert {(48, 48), (67, 93), (130, 170)} <= sizes
    assert report["max_abs_difference"] <= TOLERANCE
    assert all(row["labels_equal"] == 1.0 for row in report["logit_comparison"])
    assert report["mIoU_equal"] and report["mIoU_onnx"] == report["mIoU_pytorch"]
    assert metrics["export"]["max_abs_difference"] == report["max_abs_difference"]
    assert "segmentor.addon: CAA affinity materialised" in report["metadata"]["export_notes"]
    assert "max abs logit difference" in markdown

    onnx_path = Path(report["onnx"])
    assert onnx_path == checkpoint.with_suffix(".onnx") and onnx_path.is_file()
    height, width = onnx_input_dims(onnx_path)[2:]
    assert isinstance(height, str) and isinstance(width, str)  # dynamic
    metadata = read_onnx_metadata(onnx_path)
    assert json.loads(metadata["class_names"]) == json.loads(report["metadata"]["class_names"])
    assert len(json.loads(metadata["class_names"])) == int(metadata["num_classes"]) == model.num_classes
    assert json.loads(metadata["mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(metadata["std"]) == pytest.approx([0.229, 0.224, 0.225])
    assert metadata["kind"] == "closed_set" and metadata["color_order"] == "RGB" and metadata["layout"] == "NCHW"
    assert float(metadata["pixel_scale"]) == pytest.approx(1 / 255)


def test_ecac_round_trip_matches_pytorch(world, tmp_path):
    checkpoint, _ = _closed_set_checkpoint(world, tmp_path, "ecac", {})
    report, _, _ = export.run_export(
        {"checkpoint": str(checkpoint), "dataset": _dataset(world), "compare_sizes": [[67, 93]], "show_progress": False}
    )
    assert report["max_abs_difference"] <= TOLERANCE
    assert report["mIoU_equal"]
    assert read_onnx_metadata(report["onnx"])["architecture"] == "fcn+ecac"


@pytest.fixture(scope="module")
def lsmseg_export(world, tmp_path_factory):
    directory = tmp_path_factory.mktemp("lsmseg")
    torch.manual_seed(0)
    model = create_model("lsmseg", **TINY_LSMSEG).eval()
    path = directory / "lsmseg.pt"
    torch.save({"model": model.state_dict(), "model_config": {"architecture": "lsmseg", "kwargs": TINY_LSMSEG}}, path)
    params = {"checkpoint": str(path), "dataset": _dataset(world), "compare_sizes": [[67, 93]], "show_progress": False}
    report, _, _ = export.run_export(params)
    return path, report


def test_lsmseg_exports_with_a_fixed_vocabulary(world, lsmseg_export):
    _, report = lsmseg_export
    class_names = create_reader("synthetic", world).class_names
    assert len(class_names) > TINY_LSMSEG["top_k"]  # the category filter is in the exported graph
    assert report["max_abs_difference"] <= TOLERANCE
    assert report["mIoU_equal"]
    metadata = read_onnx_metadata(report["onnx"])
    assert metadata["kind"] == "open_vocabulary" and metadata["fixed_vocabulary"] == "true"
    assert json.loads(metadata["class_names"]) == list(class_names)
    assert json.loads(metadata["templates"]) == ["a photo of a {}."]
    assert json.loads(metadata["mean"]) == [0.0, 0.0, 0.0]  # CLIP's normalisation is inside the graph


def _images_folder(world: Path, directory: Path) -> Path:
    folder = directory / "photos"
    folder.mkdir(exist_ok=True)
    for index, sample in enumerate(create_reader("synthetic", world).list_samples("val")):
        image = Image.open(sample.image_path).convert("RGB")
        if index == 0:
            image = image.resize((93, 67))  # an odd size
        image.save(folder / f"{sample.sample_id}.png")
    return folder


def test_predict_on_the_onnx_file_gives_the_pytorch_labels(world, caa_export, lsmseg_export, tmp_path):
    folder = _images_folder(world, tmp_path)
    checkpoint, _, report, _, _ = caa_export
    torch_outputs, _ = inference.predict_images(
        inference.load_inference_model({"checkpoint": str(checkpoint)}), {"input": str(folder), "show_progress": False}
    )
    onnx_model = inference.load_inference_model({"checkpoint": report["onnx"]})
    assert onnx_model.num_classes == create_reader("synthetic", world).num_classes
    onnx_outputs, summary = inference.predict_images(onnx_model, {"input": str(folder), "show_progress": False})
    assert summary["checkpoint"].endswith(".onnx") and summary["images"] == 3
    for name, image in torch_outputs.items():
        if name.endswith("_label"):
            np.testing.assert_array_equal(np.asarray(onnx_outputs[name]), np.asarray(image))

    # the open-vocabulary file predicts its own vocabulary: no classes to give
    path, lsm_report = lsmseg_export
    class_names = list(create_reader("synthetic", world).class_names)
    torch_outputs, _ = inference.predict_images(
        inference.load_inference_model({"checkpoint": str(path)}),
        {"input": str(folder), "classes": class_names, "show_progress": False},
    )
    onnx_outputs, summary = inference.predict_images(
        inference.load_inference_model({"checkpoint": lsm_report["onnx"]}),
        {"input": str(folder), "show_progress": False},
    )
    assert summary["kind"] == "open_vocabulary" and summary["num_classes"] == len(class_names)
    for name, image in torch_outputs.items():
        if name.endswith("_label"):
            np.testing.assert_array_equal(np.asarray(onnx_outputs[name]), np.asarray(image))
    with pytest.raises(inference.InferenceInputError, match="exported with a fixed vocabulary"):
        inference.predict_images(
            inference.load_inference_model({"checkpoint": lsm_report["onnx"]}),
            {"input": str(folder), "classes": ["cat", *class_names[1:]], "show_progress": False},
        )


class BranchOnValue(torch.nn.Module):
    """An add-on ONNX cannot hold: which path runs depends on a tensor's value."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = torch.nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, features: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.classifier(features)
        return {"logits": logits if logits.mean() > 0 else -logits}


def test_an_unexportable_addon_is_named(tmp_path):
    segmentor = create_model(
        "fcn", num_classes=5, backbone="resnet_tiny", channels=16, aux_channels=8, addon=BranchOnValue(16, 5)
    ).eval()
    network, _ = export.prepare_for_export(export.ClosedSetNetwork(segmentor))
    with pytest.raises(OnnxExportError, match=r"module 'segmentor\.addon' \(BranchOnValue\): .*data-dependent"):
        export_onnx(network, torch.rand(1, 3, 67, 93), tmp_path / "bad.onnx", name="fcn+branch")


def test_a_mismatch_fails_the_export_with_the_numbers(world, tmp_path, monkeypatch):
    checkpoint, _ = _closed_set_checkpoint(world, tmp_path, "caa", {"channels": 16, "affinity_channels": 8})
    original = export.compare_logits

    def perturbed(*args, **kwargs):
        rows = original(*args, **kwargs)
        rows[0]["max_abs_difference"] = 3e-3
        return rows

    monkeypatch.setattr(export, "compare_logits", perturbed)
    with pytest.raises(export.ExportCheckError, match=r"max abs logit difference 0\.003 \(tolerance 0\.0001\)"):
        export.run_export({"checkpoint": str(checkpoint), "dataset": _dataset(world), "show_progress": False})

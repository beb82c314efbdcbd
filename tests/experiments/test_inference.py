"""predict / evaluate with a checkpoint (``experiments.inference``): the embedded world, real-layout
fixtures, MMSegmentation-style state dicts, and the errors a user meets with bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.overview import label_colormap, label_colours, label_overlay
from seg_pipelines.datasets.synthetic import ensure_synthetic_world
from seg_pipelines.engine.evaluation import ConfusionMatrix, scores_from_confusion
from seg_pipelines.experiments import inference
from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config, train_segmentor
from seg_pipelines.models.checkpoints import CheckpointError
from seg_pipelines.models.factory import create_model
from tests.fixtures.checkpoints import mmseg_state_dict as _mmseg_state
from tests.fixtures.layouts import write_ade20k_150, write_ade20k_847
from tests.fixtures.models import tiny_ovss

TINY_MODEL = {"head": "fcn", "backbone": "resnet_tiny", "channels": 16, "aux_channels": 8}
TINY_OVSS = tiny_ovss()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world") / "synthetic"
    ensure_synthetic_world(root, seed=0, image_size=48, n_train=4, n_val=3)
    return root


@pytest.fixture(scope="module")
def trained_checkpoint(world, tmp_path_factory):
    """A closed-set checkpoint written by the real training path (2 iterations on the world)."""
    from seg_pipelines.datasets.index import build_index

    reader = create_reader("synthetic", world)
    index, _ = build_index(reader, ["train", "val"])
    manifest = {
        "family": "synthetic",
        "root": str(world),
        "reader_kwargs": {},
        "class_names": reader.class_names,
        "num_classes": reader.num_classes,
        "ignore_index": reader.ignore_index,
    }
    config = closed_set_model_config(TINY_MODEL, num_classes=reader.num_classes, ignore_index=255, addon="caa")
    config["addon_cfg"].update(channels=8, affinity_channels=4)
    training = {"iterations": 2, "batch_size": 2, "lr": 0.01, "log_interval": 1, "checkpoint_interval": 2}
    augmentation = {"crop_size": [48, 48], "scale_range": [1.0, 1.0]}
    folder = tmp_path_factory.mktemp("runs")
    checkpoint, _ = train_segmentor(config, manifest, index, training, augmentation, folder, show_progress=False)
    path = folder / "method.pt"
    torch.save(checkpoint, path)
    return path


def _images_folder(world, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    reader = create_reader("synthetic", world)
    for sample in reader.list_samples("val"):
        Image.open(sample.image_path).convert("RGB").save(folder / f"{sample.sample_id}.jpg")
    return folder


def test_predict_closed_set_folder_writes_labels_that_match_the_model(world, trained_checkpoint, tmp_path):
    folder = _images_folder(world, tmp_path)
    model = inference.load_inference_model({"checkpoint": str(trained_checkpoint)})
    assert model.kind == "closed_set" and model.class_names == create_reader("synthetic", world).class_names
    outputs, summary = inference.predict_images(model, {"input": str(folder), "show_progress": False})
    stems = sorted(p.stem for p in folder.iterdir())
    assert sorted(outputs) == sorted([f"{s}_label" for s in stems] + [f"{s}_overlay" for s in stems])
    assert summary["images"] == len(stems) and summary["kind"] == "closed_set"
    image = np.array(Image.open(folder / f"{stems[0]}.jpg").convert("RGB"))
    normalised = (
        torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
        - torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    ) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        expected = model.module(normalised)["logits"].argmax(1)[0].numpy()
    label = np.asarray(outputs[f"{stems[0]}_label"])
    np.testing.assert_array_equal(label, expected)
    overlay = np.asarray(outputs[f"{stems[0]}_overlay"])  # overlay | label colours | legend
    height, width = image.shape[:2]
    np.testing.assert_array_equal(overlay[:height, :width], label_overlay(image, expected, ignore_index=-1, alpha=0.5))
    np.testing.assert_array_equal(overlay[:height, width : 2 * width], label_colours(expected, ignore_index=-1))


def test_predict_writes_one_pair_per_image_when_images_share_a_stem(world, trained_checkpoint, tmp_path):
    folder = tmp_path / "shared_stem"
    folder.mkdir()
    sample = create_reader("synthetic", world).list_samples("val")[0]
    rgb = Image.open(sample.image_path).convert("RGB")
    files = ["photo.jpg", "photo.png", "photo.webp", "other.png"]
    for index, name in enumerate(files):  # different pictures, so a mixed-up output would show
        Image.fromarray(np.roll(np.asarray(rgb), 8 * index, axis=1)).save(folder / name)
    model = inference.load_inference_model({"checkpoint": str(trained_checkpoint)})
    outputs, summary = inference.predict_images(model, {"input": str(folder), "show_progress": False})
    names = ["other", "photo_jpg", "photo_png", "photo_webp"]
    assert sorted(outputs) == sorted([f"{n}_label" for n in names] + [f"{n}_overlay" for n in names])
    assert summary["images"] == 4 == len(outputs) // 2
    assert summary["outputs"] == {n: str(folder / f) for n, f in zip(names, ["other.png", *files[:3]])}
    for name, file in summary["outputs"].items():  # each pair is the prediction of its own file
        image = Image.open(file).convert("RGB")
        single, _ = inference.predict_images(model, {"input": file, "show_progress": False})
        assert outputs[f"{name}_overlay"].size[1] >= image.size[1]
        assert outputs[f"{name}_overlay"].size[0] > 2 * image.size[0]  # overlay | label colours | legend
        np.testing.assert_array_equal(
            np.asarray(outputs[f"{name}_label"]), np.asarray(single[f"{Path(file).stem}_label"])
        )


@pytest.mark.parametrize(
    ("files", "names"),
    [
        (["a.jpg", "b.png"], ["a", "b"]),
        (["photo.jpg", "photo.png", "photo.webp"], ["photo_jpg", "photo_png", "photo_webp"]),
        (["x.jpg", "x.JPG", "X.png"], ["x_jpg", "x_jpg_2", "X_png"]),
        (["p.jpg", "p.png", "p_jpg.bmp"], ["p_jpg_2", "p_png", "p_jpg"]),
    ],
)
def test_output_names_are_unique_per_input(files, names):
    result = inference.output_names([Path("in") / f for f in files])
    assert result == names and len({n.casefold() for n in result}) == len(files)


@pytest.mark.parametrize("mode", ["whole", "slide", "multi_scale"])
def test_evaluate_closed_set_matches_a_direct_confusion_matrix(world, trained_checkpoint, mode):
    params = {
        "checkpoint": str(trained_checkpoint),
        "dataset": {"family": "synthetic", "root": str(world), "split": "val"},
        "mode": mode,
        "crop_size": [32, 32],
        "stride": [16, 16],
        "scales": [0.75, 1.0],
        "show_progress": False,
    }
    per_class, metrics, markdown = inference.run_evaluate(params)
    model = inference.load_inference_model(params)
    reader = create_reader("synthetic", world)
    predictor = inference.build_predictor(model, reader.class_names, params)
    confusion = ConfusionMatrix(reader.num_classes, reader.ignore_index)
    for sample in reader.list_samples("val"):
        image, label = reader.load_pair(sample)
        scores = predictor(torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255)
        confusion.update(scores.argmax(1), torch.from_numpy(label.astype(np.int64))[None])
    expected = scores_from_confusion(confusion.matrix, "closed_set")
    assert metrics["evaluate"]["mIoU"] == pytest.approx(100 * expected.miou)
    np.testing.assert_allclose(per_class["iou"], 100 * expected.iou)
    assert len(per_class) == reader.num_classes and "mIoU" in markdown
    # the chance row (issue 30 item 9): a uniform random predictor under the same protocol
    pixels = confusion.matrix.numpy().sum(axis=1).astype(float)
    k = reader.num_classes
    expected_chance = np.where(pixels > 0, pixels / (pixels.sum() + pixels * (k - 1)), 0.0)  # closed set: absent = 0
    assert metrics["evaluate"]["chance_mIoU"] == pytest.approx(100 * expected_chance.mean())
    assert 0 < metrics["evaluate"]["chance_mIoU"] < 100 / k
    assert f"| chance (uniform random) | {metrics['evaluate']['chance_mIoU']:.2f} |" in markdown
    assert "| chance_iou |" in markdown.splitlines()[-(reader.num_classes + 2)]  # the per-class table's header


def test_mmseg_checkpoint_loads_with_renamed_keys_and_meta_classes(tmp_path):
    torch.manual_seed(0)
    names = [f"c{i}" for i in range(5)]
    ours = build_segmentor({"name": "pspnet", "num_classes": 5, "backbone": "resnet_tiny", "channels": 16}).eval()
    state = _mmseg_state(ours)
    assert "backbone.stem.0.weight" in state and "decode_head.bottleneck.conv.weight" in state
    path = tmp_path / "pspnet_mmseg.pth"
    torch.save({"meta": {"CLASSES": names, "mmseg_version": "0.30.0"}, "state_dict": state}, path)
    model = inference.load_inference_model(
        {"checkpoint": str(path), "model": {"head": "pspnet", "backbone": "resnet_tiny", "channels": 16}}
    )
    assert model.class_names == names and model.num_classes == 5
    for key, value in ours.state_dict().items():
        assert torch.equal(model.module.state_dict()[key], value), key
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.module(images)["logits"], ours(images)["logits"])


def test_state_dict_mismatch_lists_missing_and_unexpected_keys(tmp_path):
    ours = build_segmentor({"name": "fcn", "num_classes": 4, "backbone": "resnet_tiny", "channels": 16})
    state = _mmseg_state(ours)
    del state["decode_head.convs.0.conv.weight"]
    state["decode_head.extra_layer.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as error:
        inference.load_inference_model(
            {"checkpoint": str(path), "model": {"head": "fcn", "backbone": "resnet_tiny", "channels": 16}}
        )
    message = str(error.value)
    assert str(path) in message
    assert "1 missing keys: decode_head.convs.0.0.weight" in message
    assert "1 unexpected keys: decode_head.extra_layer.weight" in message


def test_bad_inputs_give_clear_errors(world, trained_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*missing.pt"):
        inference.load_inference_model({"checkpoint": str(tmp_path / "missing.pt")})
    with pytest.raises(inference.InferenceInputError, match="no checkpoint given"):
        inference.load_inference_model({})
    model = inference.load_inference_model({"checkpoint": str(trained_checkpoint)})
    with pytest.raises(inference.InferenceInputError, match="vocabulary mismatch: the vocabulary has 3 classes"):
        inference.predict_images(model, {"input": str(_images_folder(world, tmp_path)), "classes": ["a", "b", "c"]})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(inference.InferenceInputError, match="holds no images"):
        inference.predict_images(model, {"input": str(empty)})
    with pytest.raises(inference.InferenceInputError, match="unknown vocabulary 'nope'"):
        inference.resolve_vocabulary({"vocabulary": "nope"})
    bare = tmp_path / "bare.pt"
    torch.save(torch.load(trained_checkpoint, weights_only=True)["model"], bare)
    with pytest.raises(inference.InferenceInputError, match="bare state dict"):
        inference.load_inference_model({"checkpoint": str(bare)})
    ovss = create_model("catseg", **TINY_OVSS)
    ovss_path = tmp_path / "catseg_state.pt"
    torch.save(ovss.state_dict(), ovss_path)
    with pytest.raises(inference.InferenceInputError, match="open-vocabulary state dict: pass model_config"):
        inference.load_inference_model({"checkpoint": str(ovss_path)})
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"baseline": {"architecture": "fcn", "kwargs": {}}}))
    with pytest.raises(inference.InferenceInputError, match="no open-vocabulary model"):
        inference.load_inference_model({"checkpoint": str(ovss_path), "model_config": str(config)})


def _ovss_checkpoint(tmp_path, architecture="catseg", **kwargs):
    torch.manual_seed(0)
    config = {**TINY_OVSS, **kwargs}
    model = create_model(architecture, **config).eval()
    path = tmp_path / f"{architecture}.pt"
    torch.save({"model": model.state_dict(), "model_config": {"architecture": architecture, "kwargs": config}}, path)
    return path, model


def test_predict_open_vocabulary_with_a_class_list_and_a_vocabulary_name(world, tmp_path):
    path, reference = _ovss_checkpoint(tmp_path)
    folder = _images_folder(world, tmp_path)
    model = inference.load_inference_model({"checkpoint": str(path)})
    assert model.kind == "open_vocabulary"
    with pytest.raises(inference.InferenceInputError, match="name the classes"):
        inference.predict_images(model, {"input": str(folder)})
    classes = ["sky", "grass", "water", "lime"]
    outputs, summary = inference.predict_images(model, {"input": str(folder), "classes": classes})
    stem = sorted(folder.iterdir())[0]
    image = torch.from_numpy(np.array(Image.open(stem).convert("RGB"))).permute(2, 0, 1).float()[None] / 255
    text = inference.text_embeddings(model, classes, inference.DEFAULT_TEMPLATES)
    with torch.no_grad():
        expected = reference(image, text)["logits"].argmax(1)[0].numpy()
    np.testing.assert_array_equal(np.asarray(outputs[f"{stem.stem}_label"]), expected)
    assert summary["num_classes"] == 4
    _, named = inference.predict_images(
        model,
        {
            "input": str(folder),
            "vocabulary": "syn150",
            "vocabulary_root": str(world),
            "mode": "slide",
            "crop_size": [32, 32],
        },
    )
    assert named["num_classes"] == len(create_reader("synthetic", world, vocabulary="syn150").class_names)


def test_lsmseg_pipeline_state_dict_with_its_model_config(world, tmp_path):
    torch.manual_seed(0)
    kwargs = {**TINY_OVSS, "top_k": 4, "use_sam": True, "sam_variant": "tiny"}
    model = create_model("lsmseg", **kwargs)
    torch.save(model.state_dict(), tmp_path / "lsmseg.pt")
    config = {
        "baseline": {"architecture": "catseg", "kwargs": TINY_OVSS},
        "lsmseg": {"architecture": "lsmseg", "kwargs": {**kwargs, "clip_pretrained": "data/06_models/tiny_clip.pt"}},
    }
    (tmp_path / "lsmseg_model_config.json").write_text(json.dumps(config))
    loaded = inference.load_inference_model(
        {
            "checkpoint": str(tmp_path / "lsmseg.pt"),
            "model_config": str(tmp_path / "lsmseg_model_config.json"),
            "model_key": "lsmseg",
        }
    )
    assert type(loaded.module).__name__ == "LSMSeg"
    params = {"dataset": {"family": "synthetic", "root": str(world), "vocabulary": "syn150"}, "show_progress": False}
    per_class, metrics, _ = inference.evaluate_checkpoint(loaded, params)
    counted = per_class["ground_truth_pixels"] > 0
    assert metrics["evaluate"]["classes_counted"] == counted.sum()  # open-vocabulary protocol: classes with GT only
    assert metrics["evaluate"]["mIoU"] == pytest.approx(per_class.loc[counted, "iou"].mean())


def test_evaluate_on_real_layout_fixtures(tmp_path):
    """ADE20K-150 (closed-set, reduce_zero_label) and ADE-847 (open-vocabulary, ignore 65535) fixtures."""
    root = write_ade20k_150(tmp_path / "ade", n_train=1, n_val=2, size=(40, 48))
    torch.manual_seed(0)
    segmentor = build_segmentor({"name": "fcn", "num_classes": 150, "backbone": "resnet_tiny", "channels": 16})
    path = tmp_path / "fcn_ade.pt"
    config = {"name": "fcn", "num_classes": 150, "backbone": "resnet_tiny", "channels": 16}
    torch.save({"model": segmentor.state_dict(), "model_config": config, "class_names": []}, path)
    params = {"checkpoint": str(path), "dataset": {"family": "ade20k_150", "root": str(root)}, "show_progress": False}
    per_class, metrics, _ = inference.run_evaluate(params)
    assert len(per_class) == 150 and per_class["ground_truth_pixels"].sum() > 0
    assert per_class.loc[per_class["ground_truth_pixels"] > 0, "class_id"].tolist() == [0, 1, 149]
    assert 0 <= metrics["evaluate"]["mIoU"] <= 100

    root847 = write_ade20k_847(tmp_path / "ade847", n_train=1, n_val=1, size=(40, 48))
    ovss_path, _ = _ovss_checkpoint(tmp_path)
    params = {
        "checkpoint": str(ovss_path),
        "dataset": {"family": "ade20k_847", "root": str(root847)},
        "mode": "slide",
        "crop_size": [64, 64],
        "show_progress": False,
    }
    per_class, metrics, _ = inference.run_evaluate(params)
    assert len(per_class) == 847 and metrics["evaluate"]["classes_counted"] == 3  # 0, 1, 846 have pixels
    with pytest.raises(inference.InferenceInputError, match="vocabulary mismatch: 150 classes given"):
        inference.run_evaluate({**params, "vocabulary": "ade20k_150"})


def test_a_corrupt_file_is_listed_and_the_other_images_are_still_segmented(world, trained_checkpoint, tmp_path):
    """Issue 29, item 11: one unreadable file no longer aborts predict; it is named with its reason."""
    folder = _images_folder(world, tmp_path)
    good = sorted(p.stem for p in folder.iterdir())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    model = inference.load_inference_model({"checkpoint": str(trained_checkpoint)})
    outputs, summary = inference.predict_images(model, {"input": str(folder), "show_progress": False})
    assert sorted(outputs) == sorted([f"{s}_label" for s in good] + [f"{s}_overlay" for s in good])
    assert summary["images"] == len(good) + 2 and summary["images_segmented"] == len(good)
    assert set(summary["failed"]) == {str(folder / "broken.jpg"), str(folder / "empty.png")}
    assert all(reason.startswith("cannot read image") for reason in summary["failed"].values())
    assert summary["status"] == f"completed with 2 of {len(good) + 2} images failed"
    assert str(folder / "broken.jpg") not in summary["outputs"].values()
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "broken.jpg").write_bytes(b"junk")
    with pytest.raises(inference.InferenceInputError, match=r"no image of .*only_bad could be read: .*broken\.jpg"):
        inference.predict_images(model, {"input": str(only_bad), "show_progress": False})


def test_banded_upsampled_argmax_equals_full_interpolation():
    """The banded label upsampling (bounded memory) gives F.interpolate's argmax."""
    import torch.nn.functional as F

    from seg_pipelines.engine.evaluation import upsampled_argmax

    generator = torch.Generator().manual_seed(0)
    for shape, size in [((1, 7, 9, 13), (41, 57)), ((1, 3, 16, 16), (16, 16)), ((1, 5, 20, 10), (7, 33))]:
        scores = torch.randn(*shape, generator=generator)
        expected = F.interpolate(scores, size=size, mode="bilinear", align_corners=False).argmax(1)[0]
        for band_values in (1, 7 * 57 * 3, 1 << 24):  # one row per band, a few rows, everything at once
            assert torch.equal(upsampled_argmax(scores, size, max_band_values=band_values), expected)


def test_large_photos_are_segmented_within_the_pixel_limit(world, trained_checkpoint, tmp_path):
    """Issue 29, item 10: the largest inference pass holds at most predict.max_megapixels; the label
    keeps the photo's full size, and the summary says which images were shrunk."""
    photo = tmp_path / "big.png"
    rgb = np.asarray(Image.open(create_reader("synthetic", world).list_samples("val")[0].image_path).convert("RGB"))
    Image.fromarray(np.tile(rgb, (6, 8, 1))).save(photo)  # 288 x 384
    model = inference.load_inference_model({"checkpoint": str(trained_checkpoint)})
    seen: list[tuple[int, int]] = []
    forward = model.module.forward

    def recording(images, *args, **kwargs):
        seen.append(tuple(images.shape[-2:]))
        return forward(images, *args, **kwargs)

    model.module.forward = recording
    params = {"input": str(photo), "show_progress": False, "mode": "multi_scale", "scales": [1.0, 2.0], "flip": False}
    outputs, summary = inference.predict_images(model, {**params, "max_megapixels": 0.05})
    assert max(h * w for h, w in seen) <= 0.05e6 and np.asarray(outputs["big_label"]).shape == (288, 384)
    assert "big.png" in next(iter(summary["downscaled"])) and "segmented at" in summary["downscaled"][str(photo)]
    seen.clear()
    _, summary = inference.predict_images(model, {**params, "max_megapixels": None})
    assert max(h * w for h, w in seen) == 576 * 768 and summary["downscaled"] == {}
    seen.clear()  # multi_scale without scales: the default ones (top 1.75) count
    defaults = {k: v for k, v in params.items() if k != "scales"}
    inference.predict_images(model, {**defaults, "max_megapixels": 0.05})
    assert 0.04e6 < max(h * w for h, w in seen) <= 0.05e6


def test_prediction_overlay_has_a_legend_of_the_classes_present_in_the_label_colours():
    # a 20 x 30 prediction: class 3 on 360 pixels, class 7 on 180, class 1 on 60; classes 0, 2, 4-6 absent
    label = np.full((20, 30), 3, dtype=np.int64)
    label[:, 20:] = 7  # 20 x 10 = 200 pixels ...
    label[:2, 20:] = 1  # ... of which 2 x 10 = 20 become class 1
    label[2:6, 20:] = 1  # 60 pixels of class 1, 140 of class 7
    names = [f"class {c}" for c in range(8)]
    assert inference.legend_entries(label, names) == [
        (3, "class 3", 400 / 600),
        (7, "class 7", 140 / 600),
        (1, "class 1", 60 / 600),
    ]
    rgb = np.full((20, 30, 3), 200, dtype=np.uint8)
    overlay = np.asarray(inference.overlay_with_legend(rgb, label, names, alpha=0.5))
    assert overlay.shape[0] >= 2 * inference.LEGEND_MARGIN + 3 * inference.LEGEND_ROW_HEIGHT and overlay.shape[1] > 60
    palette = label_colormap(256)
    swatch_left = 2 * 30 + inference.LEGEND_MARGIN
    for row, class_id in enumerate([3, 7, 1]):  # one swatch per class present, in its label colour
        top = inference.LEGEND_MARGIN + row * inference.LEGEND_ROW_HEIGHT
        centre = overlay[top + inference.LEGEND_SWATCH // 2, swatch_left + inference.LEGEND_SWATCH // 2]
        np.testing.assert_array_equal(centre, palette[class_id + 1])
        assert (overlay[:20, 30:60] == palette[class_id + 1]).all(axis=-1).any(), "the same colour in the label panel"
    below = inference.LEGEND_MARGIN + 3 * inference.LEGEND_ROW_HEIGHT
    assert (overlay[below:, 60:] == 255).all(), "no entry for an absent class"

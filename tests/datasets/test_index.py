"""The prepared index: every sample validated; bad input raises naming the file, or is skipped and counted."""

import logging

import numpy as np
import pytest
from PIL import Image

from seg_pipelines.datasets.base import DatasetError
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import build_index
from tests.fixtures.layouts import write_ade20k_150

NAMES = ["sky", "grass", "lime", "coin"]


@pytest.fixture
def ade_root(tmp_path):
    return write_ade20k_150(tmp_path / "ade", n_train=4, n_val=2, size=(24, 32), class_names=NAMES)


def _paths(root, split="training", number=2):
    stem = f"ADE_{'train' if split == 'training' else 'val'}_{number:08d}"
    dataset = root / "ADEChallengeData2016"
    return dataset / "images" / split / f"{stem}.jpg", dataset / "annotations" / split / f"{stem}.png"


def test_index_rows_match_the_labels(ade_root):
    reader = create_reader("ade20k_150", ade_root)
    index, report = build_index(reader, ["train", "val"], show_progress=False)
    assert report["samples_per_split"] == {"train": 4, "val": 2} and report["skipped_count"] == 0
    first = index.iloc[0]
    label = reader.load_label(reader.list_samples("train")[0])
    expected = np.bincount(label[label != 255].ravel(), minlength=len(NAMES))
    assert first["pixel_counts"] == expected.tolist()
    assert first["classes_present"] == np.flatnonzero(expected).tolist()
    assert first["ignored_pixels"] == int((label == 255).sum())
    assert (index["height"] == 24).all() and (index["width"] == 32).all()


def _break(kind, root):
    image, label = _paths(root)
    if kind == "missing_label":
        label.unlink()
        return "ADE_train_00000002", "no label"
    if kind == "size_mismatch":
        Image.fromarray(np.ones((10, 10), np.uint8)).save(label)
        return str(image), "size mismatch"
    if kind == "out_of_range":
        Image.fromarray(np.full((24, 32), 9, np.uint8)).save(label)  # raw 9 -> id 8 >= 4 classes
        return str(label), "outside the class range"
    if kind == "corrupt_image":
        image.write_bytes(image.read_bytes()[:200])
        return str(image), "corrupt or truncated"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing_label", "size_mismatch", "out_of_range", "corrupt_image"])
def test_bad_sample_raises_naming_the_file(ade_root, kind):
    where, problem = _break(kind, ade_root)
    reader = create_reader("ade20k_150", ade_root)
    with pytest.raises(DatasetError) as error:
        build_index(reader, ["train", "val"], show_progress=False)
    assert where in str(error.value) and problem in str(error.value)


@pytest.mark.parametrize("kind", ["missing_label", "size_mismatch", "out_of_range", "corrupt_image"])
def test_bad_sample_is_skipped_counted_and_logged(ade_root, kind, caplog):
    where, _ = _break(kind, ade_root)
    reader = create_reader("ade20k_150", ade_root)
    with caplog.at_level(logging.WARNING):
        index, report = build_index(reader, ["train", "val"], on_bad_sample="skip", show_progress=False)
    assert report["skipped_count"] == 1 and report["samples_per_split"]["train"] == 3
    assert where in report["skipped"][0]["error"]
    assert "ADE_train_00000002" not in set(index["sample_id"])
    assert "skipped 1 bad samples" in caplog.text


def test_missing_root_and_empty_split(tmp_path, ade_root):
    with pytest.raises(DatasetError, match="not found"):
        create_reader("ade20k_150", tmp_path / "nowhere")
    for path in (ade_root / "ADEChallengeData2016/images/validation").iterdir():
        path.unlink()
    reader = create_reader("ade20k_150", ade_root)
    with pytest.raises(DatasetError, match="empty"):
        build_index(reader, ["train", "val"], show_progress=False)


def test_a_split_with_only_bad_samples_is_an_error_even_when_skipping(tmp_path):
    root = write_ade20k_150(tmp_path / "one", n_train=1, n_val=1, size=(8, 8), class_names=NAMES)
    image, _ = _paths(root, number=1)
    image.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="no valid samples"):
        build_index(create_reader("ade20k_150", root), ["train"], on_bad_sample="skip", show_progress=False)
    with pytest.raises(ValueError, match="on_bad_sample"):
        build_index(create_reader("ade20k_150", root), ["train"], on_bad_sample="ignore", show_progress=False)


@pytest.mark.parametrize("suffix", [".JPG", ".Jpg"])
def test_case_only_extension_twins_are_an_error_naming_both_files_or_a_counted_skip(ade_root, suffix, caplog):
    image, _ = _paths(ade_root, split="validation", number=1)
    twin = image.with_suffix(suffix)
    twin.write_bytes(image.read_bytes())
    reader = create_reader("ade20k_150", ade_root)
    with pytest.raises(DatasetError) as error:
        build_index(reader, ["train", "val"], show_progress=False)
    assert str(image) in str(error.value) and str(twin) in str(error.value)
    with caplog.at_level(logging.WARNING):
        index, report = build_index(reader, ["train", "val"], on_bad_sample="skip", show_progress=False)
    assert report["skipped_count"] == 1 and report["skipped"][0]["sample_id"] == "ADE_val_00000001"
    assert str(twin) in report["skipped"][0]["error"] and report["samples_per_split"] == {"train": 4, "val": 1}
    assert index["sample_id"].is_unique and "ADE_val_00000001" not in set(index["sample_id"])
    assert "skipped 1 bad samples" in caplog.text


def test_images_without_labels_and_twins_are_all_listed_when_skipping(ade_root):
    for number in (1, 3):
        _paths(ade_root, number=number)[1].unlink()
    image, _ = _paths(ade_root, number=2)
    image.with_suffix(".JPG").write_bytes(image.read_bytes())
    index, report = build_index(
        create_reader("ade20k_150", ade_root), ["train", "val"], on_bad_sample="skip", show_progress=False
    )
    assert [row["sample_id"] for row in report["skipped"]] == [f"ADE_train_{n:08d}" for n in (1, 2, 3)]
    assert report["skipped_count"] == 3 and list(index["sample_id"]).count("ADE_train_00000004") == 1
    assert report["samples_per_split"] == {"train": 1, "val": 2}


def test_data_digest_follows_the_content_not_the_location(ade_root, tmp_path):
    """Reuse keys (issue 29, item 2): a copied dataset keeps its digest; changed pixels, a changed
    label or another split give another one; an index without the content column digests the files."""
    import shutil

    from seg_pipelines.datasets.index import data_digest

    def indexed(root):
        return build_index(create_reader("ade20k_150", root), ["train", "val"], show_progress=False)[0]

    index = indexed(ade_root)
    digest = data_digest(index, ["train"])
    assert len(digest) == 32 and digest == data_digest(index.iloc[::-1], ["train"])  # row order is irrelevant
    assert data_digest(index.drop(columns="content_sha256"), ["train"]) == digest  # an older index
    assert data_digest(index, ["val"]) != digest and data_digest(index) not in (digest, data_digest(index, ["val"]))

    copy = shutil.copytree(ade_root, tmp_path / "moved")
    assert data_digest(indexed(copy), ["train"]) == digest

    image_path, label_path = _paths(copy, "training", 2)
    pixels = np.asarray(Image.open(image_path)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]  # one pixel of one image: same labels, same pixel counts
    Image.fromarray(pixels).save(image_path)
    changed = indexed(copy)
    assert changed["pixel_counts"].tolist() == index["pixel_counts"].tolist()
    assert data_digest(changed, ["train"]) != digest
    assert data_digest(changed, ["val"]) == data_digest(index, ["val"])

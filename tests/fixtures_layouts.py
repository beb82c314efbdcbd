"""Tiny datasets written in the exact on-disk layouts the real readers expect.

Each ``write_<family>(root, ...)`` creates the dataset folder under ``root`` (e.g.
``root/ADEChallengeData2016``), fills it with a few small JPEG images and label maps in the
dataset's own encoding, and returns ``root`` (the readers accept it or the dataset folder).

Label maps are horizontal bands (:func:`band_label`): sample ``i`` cycles through the family's
``RAW_VALUES`` starting at offset ``i``, so tests know every raw value present and its decoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from seg_pipelines.datasets.readers import (
    ADE20K_150_CLASSES,
    COCO_STUFF_171_CLASSES,
    COCO_STUFF_UNUSED_IDS,
    PASCAL_CONTEXT_59_CLASSES,
    PASCAL_CONTEXT_59_IDS_IN_459,
)

# Raw label-file values each writer uses (covering ignore, the lowest and highest class) and their
# train-id decoding.
ADE150_RAW_VALUES = (0, 1, 2, 150)  # 0 → 255 (reduce_zero_label), k → k-1
ADE847_RAW_VALUES = (65535, 0, 1, 846)  # uint16 train ids, 65535 = ignore
COCO164K_TRAIN_ID_VALUES = (255, 0, 1, 170)  # *_labelTrainIds.png
COCO164K_STUFFTHINGMAP_VALUES = (255, 0, 1, 181)  # 0-indexed COCO ids: 181 (wood) → 170
COCO10K_MMSEG_RAW_VALUES = (0, 1, 2, 171)  # 0 → 255, k → k-1
COCO10K_MAT_RAW_VALUES = (0, 1, 13, 182)  # 1-indexed COCO ids: 13 (stop sign) → 11, 182 → 170
PC59_RAW_VALUES = (0, 1, 2, 59)  # 0 = background → 255
PC459_RAW_VALUES = (459, 0, 1, 458, 65535)  # train ids; 459 and 65535 (wrapped 0) = ignore
VOC_RAW_VALUES = (0, 1, 15, 20, 255)  # palette indices: background, aeroplane, person, tv, boundary


def band_label(size: tuple[int, int], values: Sequence[int], shift: int = 0) -> np.ndarray:
    """``H×W`` int64 map of horizontal bands cycling through ``values`` from offset ``shift``."""
    height, width = size
    rows = np.array([values[(shift + row * len(values) // height) % len(values)] for row in range(height)])
    return np.repeat(rows[:, None], width, axis=1).astype(np.int64)


def voc_palette() -> list[int]:
    """The 256-entry Pascal VOC colour map, flattened ``[r0, g0, b0, r1, ...]``."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        palette += [red, green, blue]
    return palette


def write_jpeg(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A random ``H×W`` RGB JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode="RGB").save(path, quality=90)
    return path


def write_label(path: Path, label: np.ndarray, palette: bool = False) -> Path:
    """Save a label map in the encoding its suffix implies: ``.tif`` → uint16 TIFF, ``.mat`` →
    MATLAB ``S`` array (uint16), ``.png`` → uint8 grayscale or, with ``palette``, a VOC palette PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in {".tif", ".tiff"}:
        import tifffile

        tifffile.imwrite(path, np.asarray(label, dtype=np.uint16))
    elif suffix == ".mat":
        from scipy.io import savemat

        savemat(path, {"S": np.asarray(label, dtype=np.uint16)})
    else:
        image = Image.fromarray(np.asarray(label, dtype=np.uint8), mode="L")
        if palette:
            image = image.convert("P")
            image.putpalette(voc_palette())
        image.save(path)
    return path


def _write_pairs(
    image_paths: list[Path],
    label_paths: list[Path],
    size: tuple[int, int],
    values: Sequence[int],
    palette: bool = False,
) -> None:
    for index, (image_path, label_path) in enumerate(zip(image_paths, label_paths)):
        write_jpeg(image_path, size, seed=index)
        write_label(label_path, band_label(size, values, shift=index), palette=palette)


def _write_list(path: Path, ids: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{sample_id}\n" for sample_id in ids))


def ade_object_info_text(class_names: Sequence[str]) -> str:
    """``objectInfo150.txt`` content (tab separated ``Idx Ratio Train Val Name``)."""
    lines = ["Idx\tRatio\tTrain\tVal\tName"]
    for index, name in enumerate(class_names, start=1):
        lines.append(f"{index}\t{1.0 / (index + 1):.4f}\t{100 + index}\t{10 + index}\t{name}")
    return "\n".join(lines) + "\n"


def write_ade20k_150(
    root: str | Path,
    n_train: int = 2,
    n_val: int = 2,
    size: tuple[int, int] = (24, 32),
    class_names: Sequence[str] | None = None,
    write_object_info: bool = True,
) -> Path:
    """``ADEChallengeData2016/{images,annotations}/{training,validation}/ADE_*_%08d.{jpg,png}``
    plus ``objectInfo150.txt`` (``class_names`` or the 150 ADE names, the 9th written with its
    synonym as ``"windowpane, window"``). Raw values: :data:`ADE150_RAW_VALUES` with 150 replaced
    by ``len(class_names)``."""
    root = Path(root)
    dataset = root / "ADEChallengeData2016"
    names = list(class_names) if class_names is not None else [
        "windowpane, window" if name == "windowpane" else name for name in ADE20K_150_CLASSES
    ]
    values = (0, 1, 2, len(names))
    for split, folder, count in (("train", "training", n_train), ("val", "validation", n_val)):
        stems = [f"ADE_{split}_{index + 1:08d}" for index in range(count)]
        _write_pairs(
            [dataset / "images" / folder / f"{stem}.jpg" for stem in stems],
            [dataset / "annotations" / folder / f"{stem}.png" for stem in stems],
            size,
            values,
        )
    if write_object_info:
        (dataset / "objectInfo150.txt").write_text(ade_object_info_text(names))
    return root


def ade847_names(num_classes: int = 847) -> list[str]:
    """Names for the A-847 fixture: CAT-Seg's first two entries, then ``"thing<i>, object<i>"``."""
    head = ["wall", "building, edifice"]
    return (head + [f"thing{index}, object{index}" for index in range(len(head), num_classes)])[:num_classes]


def write_ade20k_847(
    root: str | Path,
    n_train: int = 1,
    n_val: int = 2,
    size: tuple[int, int] = (24, 32),
    names_file: str | None = "ade847.json",
) -> Path:
    """``ADE20K_2021_17_01/images_detectron2/<split>/*.jpg`` and
    ``annotations_detectron2/<split>/*.tif`` (uint16 train ids, 65535 = ignore), with a CAT-Seg
    style ``ade847.json`` names list (or none if ``names_file`` is None)."""
    import json

    root = Path(root)
    dataset = root / "ADE20K_2021_17_01"
    for split, folder, count in (("train", "training", n_train), ("val", "validation", n_val)):
        stems = [f"ADE_{split}_{index + 1:08d}" for index in range(count)]
        _write_pairs(
            [dataset / "images_detectron2" / folder / f"{stem}.jpg" for stem in stems],
            [dataset / "annotations_detectron2" / folder / f"{stem}.tif" for stem in stems],
            size,
            ADE847_RAW_VALUES,
        )
    if names_file is not None:
        (dataset / names_file).write_text(json.dumps(ade847_names()))
    return root


def coco_stuff_labels_txt() -> str:
    """COCO-Stuff ``labels.txt``: ``0: unlabeled`` then ids 1..182 (unused ids get placeholder
    names; used ids get ``"<name>"`` from the 171 list, upper-cased so a test can tell the file
    was read)."""
    used = iter(COCO_STUFF_171_CLASSES)
    lines = ["0: unlabeled"]
    for coco_id in range(1, 183):
        name = f"unused-{coco_id}" if coco_id in COCO_STUFF_UNUSED_IDS else next(used).upper()
        lines.append(f"{coco_id}: {name}")
    return "\n".join(lines) + "\n"


def write_coco_stuff_164k(
    root: str | Path,
    n_train: int = 2,
    n_val: int = 2,
    size: tuple[int, int] = (24, 32),
    write_labels_txt: bool = False,
) -> Path:
    """``coco_stuff164k/images/{train2017,val2017}/%012d.jpg`` with, in
    ``annotations/<split>/``, both the converted ``%012d_labelTrainIds.png`` (train ids) and the
    raw stuffthingmap ``%012d.png`` (0-indexed COCO ids), as MMSeg's converter leaves them."""
    root = Path(root)
    dataset = root / "coco_stuff164k"
    image_id = 0
    for split, count in (("train", n_train), ("val", n_val)):
        folder = f"{split}2017"
        for index in range(count):
            image_id += 1
            stem = f"{image_id:012d}"
            write_jpeg(dataset / "images" / folder / f"{stem}.jpg", size, seed=image_id)
            annotations = dataset / "annotations" / folder
            write_label(annotations / f"{stem}_labelTrainIds.png", band_label(size, COCO164K_TRAIN_ID_VALUES, index))
            write_label(annotations / f"{stem}.png", band_label(size, COCO164K_STUFFTHINGMAP_VALUES, index))
    if write_labels_txt:
        (dataset / "labels.txt").write_text(coco_stuff_labels_txt())
    return root


def write_coco_stuff_10k(
    root: str | Path,
    n_train: int = 2,
    n_test: int = 2,
    size: tuple[int, int] = (24, 32),
    layout: str = "mmseg",
) -> Path:
    """COCO-Stuff-10k. ``layout="mmseg"``: ``images/{train2014,test2014}/*.jpg`` and
    ``annotations/{train2014,test2014}/*_labelTrainIds.png`` (0 = unlabelled, 1..171).
    ``layout="original"``: ``images/*.jpg``, ``annotations/*.mat`` (``S``, 1-indexed COCO ids)
    and ``imageLists/{train,test}.txt``. Both write ``imageLists``."""
    root = Path(root)
    dataset = root / "coco_stuff10k"
    for split, count in (("train", n_train), ("test", n_test)):
        stems = [f"COCO_{split}2014_{index + 1:012d}" for index in range(count)]
        _write_list(dataset / "imageLists" / f"{split}.txt", stems)
        if layout == "mmseg":
            folder = f"{split}2014"
            images = [dataset / "images" / folder / f"{stem}.jpg" for stem in stems]
            labels = [dataset / "annotations" / folder / f"{stem}_labelTrainIds.png" for stem in stems]
            _write_pairs(images, labels, size, COCO10K_MMSEG_RAW_VALUES)
        elif layout == "original":
            images = [dataset / "images" / f"{stem}.jpg" for stem in stems]
            labels = [dataset / "annotations" / f"{stem}.mat" for stem in stems]
            _write_pairs(images, labels, size, COCO10K_MAT_RAW_VALUES)
        else:
            raise ValueError(f"unknown COCO-Stuff-10k layout {layout!r}")
    return root


def pascal_context_labels_txt() -> str:
    """A 459-line ``labels.txt`` (``"idx: name"``): the 59 kept ids carry ``"ctx-<name>"`` so a
    test can tell the names came from the file; the rest are ``"class<idx>"``."""
    kept = dict(zip(PASCAL_CONTEXT_59_IDS_IN_459, PASCAL_CONTEXT_59_CLASSES))
    names = {index: f"ctx-{kept[index]}" if index in kept else f"class{index}" for index in range(1, 460)}
    return "".join(f"{index}: {name}\n" for index, name in names.items())


def write_pascal_context_59(
    root: str | Path,
    n_train: int = 2,
    n_val: int = 2,
    size: tuple[int, int] = (24, 32),
    write_labels_txt: bool = False,
) -> Path:
    """MMSeg layout: ``VOCdevkit/VOC2010/JPEGImages/*.jpg``, ``SegmentationClassContext/*.png``
    (0 = background, 1..59) and ``ImageSets/SegmentationContext/{train,val}.txt``."""
    root = Path(root)
    voc2010 = root / "VOCdevkit" / "VOC2010"
    for split, count, year in (("train", n_train, 2008), ("val", n_val, 2009)):
        stems = [f"{year}_{index + 1:06d}" for index in range(count)]
        _write_list(voc2010 / "ImageSets" / "SegmentationContext" / f"{split}.txt", stems)
        _write_pairs(
            [voc2010 / "JPEGImages" / f"{stem}.jpg" for stem in stems],
            [voc2010 / "SegmentationClassContext" / f"{stem}.png" for stem in stems],
            size,
            PC59_RAW_VALUES,
        )
    if write_labels_txt:
        (voc2010 / "labels.txt").write_text(pascal_context_labels_txt())
    return root


def write_pascal_context_459(
    root: str | Path,
    n_val: int = 2,
    size: tuple[int, int] = (24, 32),
    n_unlabelled_images: int = 1,
    write_val_list: bool = True,
) -> Path:
    """CAT-Seg layout: ``VOCdevkit/VOC2010/annotations_detectron2/pc459_val/*.tif`` (uint16
    ``LabelMap - 1``), images in ``JPEGImages`` (plus ``n_unlabelled_images`` extra VOC images
    without Context labels, as in the real folder), ``labels.txt`` and ``pascalcontext_val.txt``."""
    root = Path(root)
    voc2010 = root / "VOCdevkit" / "VOC2010"
    stems = [f"2008_{index + 1:06d}" for index in range(n_val)]
    _write_pairs(
        [voc2010 / "JPEGImages" / f"{stem}.jpg" for stem in stems],
        [voc2010 / "annotations_detectron2" / "pc459_val" / f"{stem}.tif" for stem in stems],
        size,
        PC459_RAW_VALUES,
    )
    for index in range(n_unlabelled_images):
        write_jpeg(voc2010 / "JPEGImages" / f"2007_{index + 1:06d}.jpg", size, seed=100 + index)
    (voc2010 / "labels.txt").write_text(pascal_context_labels_txt())
    if write_val_list:
        _write_list(voc2010 / "pascalcontext_val.txt", stems)
    return root


def write_voc2012(
    root: str | Path,
    n_train: int = 2,
    n_val: int = 2,
    size: tuple[int, int] = (24, 32),
) -> Path:
    """``VOCdevkit/VOC2012/JPEGImages/*.jpg``, palette PNGs in ``SegmentationClass`` (VOC colour
    map, 255 = boundary) and ``ImageSets/Segmentation/{train,val,trainval}.txt``."""
    root = Path(root)
    voc2012 = root / "VOCdevkit" / "VOC2012"
    all_stems = []
    for split, count, year in (("train", n_train, 2007), ("val", n_val, 2008)):
        stems = [f"{year}_{index + 1:06d}" for index in range(count)]
        all_stems += stems
        _write_list(voc2012 / "ImageSets" / "Segmentation" / f"{split}.txt", stems)
        _write_pairs(
            [voc2012 / "JPEGImages" / f"{stem}.jpg" for stem in stems],
            [voc2012 / "SegmentationClass" / f"{stem}.png" for stem in stems],
            size,
            VOC_RAW_VALUES,
            palette=True,
        )
    _write_list(voc2012 / "ImageSets" / "Segmentation" / "trainval.txt", all_stems)
    return root

"""Readers for the real benchmark datasets in their standard prepared on-disk layouts, and for a
user's own dataset (``folder``).

Every reader returns labels in *train-id space* with the dataset's own ignore value (DESIGN.md §6):

==================  =======================================================================  =====  ======
family              layout (under ``root``)                                                   C      ignore
==================  =======================================================================  =====  ======
ade20k_150          ADEChallengeData2016/{images,annotations}/{training,validation}           150*   255
ade20k_847          ADE20K_2021_17_01/{images,annotations}_detectron2/{training,validation}  847*   65535
coco_stuff_164k     {images,annotations}/{train2017,val2017}, ``*_labelTrainIds.png``         171    255
coco_stuff_10k      MMSeg-converted ({images,annotations}/{train2014,test2014}) or original   171    255
                    (images/*.jpg, annotations/*.mat, imageLists/{train,test}.txt)
pascal_context_59   VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext} (MMSeg)          59     255
pascal_context_459  VOCdevkit/VOC2010/annotations_detectron2/pc459_val/*.tif (CAT-Seg)        459    459
voc_20              VOCdevkit/VOC2012/{JPEGImages,SegmentationClass} palette PNGs             20     255
voc_21b             same files, background kept as a class                                    21     255
folder              your own: {images,masks}/<split>/**, classes.txt (+ palette.txt for RGB   C*     set
                    masks) or split list files; see :class:`FolderReader`
==================  =======================================================================  =====  ======

(* the class count is whatever the dataset's names file lists.)  ``root`` may point at the
dataset folder itself or at its parent (e.g. at ``ADEChallengeData2016`` or the folder holding it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from seg_pipelines.datasets.base import (
    DatasetError,
    Sample,
    SegmentationReader,
    check_label_values,
    read_image_rgb,
    read_label_array,
    register_reader,
    require_dir,
)

# --------------------------------------------------------------------------------------------
# Class-name tables shipped with the code (used only where a dataset ships no names file).
# --------------------------------------------------------------------------------------------

#: ADE20K SceneParsing-150, first synonym of each objectInfo150.txt entry, in train-id order.
ADE20K_150_CLASSES: tuple[str, ...] = (
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
)

#: COCO-Stuff 171 train-id classes (80 things then 91 stuff), as in MMSeg / CAT-Seg.
COCO_STUFF_171_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
    "banner",
    "blanket",
    "branch",
    "bridge",
    "building-other",
    "bush",
    "cabinet",
    "cage",
    "cardboard",
    "carpet",
    "ceiling-other",
    "ceiling-tile",
    "cloth",
    "clothes",
    "clouds",
    "counter",
    "cupboard",
    "curtain",
    "desk-stuff",
    "dirt",
    "door-stuff",
    "fence",
    "floor-marble",
    "floor-other",
    "floor-stone",
    "floor-tile",
    "floor-wood",
    "flower",
    "fog",
    "food-other",
    "fruit",
    "furniture-other",
    "grass",
    "gravel",
    "ground-other",
    "hill",
    "house",
    "leaves",
    "light",
    "mat",
    "metal",
    "mirror-stuff",
    "moss",
    "mountain",
    "mud",
    "napkin",
    "net",
    "paper",
    "pavement",
    "pillow",
    "plant-other",
    "plastic",
    "platform",
    "playingfield",
    "railing",
    "railroad",
    "river",
    "road",
    "rock",
    "roof",
    "rug",
    "salad",
    "sand",
    "sea",
    "shelf",
    "sky-other",
    "skyscraper",
    "snow",
    "solid-other",
    "stairs",
    "stone",
    "straw",
    "structural-other",
    "table",
    "tent",
    "textile-other",
    "towel",
    "tree",
    "vegetable",
    "wall-brick",
    "wall-concrete",
    "wall-other",
    "wall-panel",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "waterdrops",
    "window-blind",
    "window-other",
    "wood",
)

#: 1-indexed COCO category ids that COCO-Stuff defines but never annotates (dropped from 182 → 171).
COCO_STUFF_UNUSED_IDS: frozenset[int] = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91})

#: Pascal-Context 59 in train-id order (alphabetical over the 459-class names; MMSeg 1.x and
#: CAT-Seg agree, CAT-Seg spells "table" as "diningtable").
PASCAL_CONTEXT_59_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bag",
    "bed",
    "bedclothes",
    "bench",
    "bicycle",
    "bird",
    "boat",
    "book",
    "bottle",
    "building",
    "bus",
    "cabinet",
    "car",
    "cat",
    "ceiling",
    "chair",
    "cloth",
    "computer",
    "cow",
    "cup",
    "curtain",
    "dog",
    "door",
    "fence",
    "floor",
    "flower",
    "food",
    "grass",
    "ground",
    "horse",
    "keyboard",
    "light",
    "motorbike",
    "mountain",
    "mouse",
    "person",
    "plate",
    "platform",
    "pottedplant",
    "road",
    "rock",
    "sheep",
    "shelves",
    "sidewalk",
    "sign",
    "sky",
    "snow",
    "sofa",
    "table",
    "track",
    "train",
    "tree",
    "truck",
    "tvmonitor",
    "wall",
    "water",
    "window",
    "wood",
)

#: The 459-class ids (1-indexed, as in Pascal-Context ``labels.txt``) of the 59 classes above, in
#: the same order: MMSeg's ``tools/dataset_converters/pascal_context.py`` mapping without its 0.
PASCAL_CONTEXT_59_IDS_IN_459: tuple[int, ...] = (
    2,
    9,
    18,
    19,
    22,
    23,
    25,
    31,
    33,
    34,
    44,
    45,
    46,
    59,
    65,
    68,
    72,
    80,
    85,
    98,
    104,
    105,
    113,
    115,
    144,
    158,
    159,
    162,
    187,
    189,
    207,
    220,
    232,
    258,
    259,
    260,
    284,
    295,
    296,
    308,
    324,
    326,
    347,
    349,
    354,
    355,
    360,
    366,
    368,
    397,
    415,
    416,
    420,
    424,
    427,
    440,
    445,
    454,
    458,
)

#: Pascal VOC 2012 object classes (palette indices 1..20).
VOC_OBJECT_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def first_synonym(name: str) -> str:
    """``"windowpane, window"`` or ``"windowpane;window"`` → ``"windowpane"``."""
    return split_synonyms(name)[0]


def split_synonyms(name: str) -> list[str]:
    """All comma/semicolon-separated synonyms of a class-name entry, stripped, order kept."""
    synonyms = [part.strip() for part in re.split(r"[;,]", name) if part.strip()]
    if not synonyms:
        raise ValueError(f"empty class name entry {name!r}")
    return synonyms


def build_lookup_table(mapping: dict[int, int], size: int, fill: int = -1) -> np.ndarray:
    """A ``size``-entry int64 table sending each raw value to its train id and every other raw
    value to ``fill`` (-1 by default: "no train id", which :func:`check_label_values` rejects)."""
    table = np.full(size, fill, dtype=np.int64)
    for raw_value, train_id in mapping.items():
        table[raw_value] = train_id
    return table


def apply_lookup_table(raw: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[raw]``; raw values beyond the table become -1 so the range check rejects them."""
    raw = np.asarray(raw, dtype=np.int64)
    inside = (raw >= 0) & (raw < len(table))
    return np.where(inside, table[np.clip(raw, 0, len(table) - 1)], -1)


def reduce_zero_label(raw: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """MMSeg's ``reduce_zero_label``: raw 0 (unlabelled/background) → ignore, k → k-1; the raw
    ignore value stays ignore."""
    raw = np.asarray(raw, dtype=np.int64)
    decoded = raw - 1
    decoded[raw == 0] = ignore_index
    decoded[raw == ignore_index] = ignore_index
    beyond = raw > ignore_index  # e.g. 256 in a 16-bit PNG must not alias the ignore value
    decoded[beyond] = raw[beyond]
    return decoded


def resolve_dataset_dir(root: Path, folder_names: tuple[str, ...], marker: str) -> Path:
    """``root/<folder>`` for the first of ``folder_names`` (a relative path, may be nested) that
    holds ``marker``; ``root`` itself if it holds ``marker``; otherwise the first candidate that
    exists, else ``root`` (the caller's directory checks then name the missing folder)."""
    if (root / marker).exists():
        return root
    for folder in folder_names:
        if (root / folder / marker).exists():
            return root / folder
    for folder in folder_names:
        if (root / folder).is_dir():
            return root / folder
    return root


def read_split_ids(list_file: Path, split: str) -> list[str]:
    """Sample ids (one per line, blank lines skipped) from a split list file."""
    if not list_file.is_file():
        raise DatasetError(f"split list for {split!r} not found: {list_file}")
    ids = [line.strip().split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise DatasetError(f"split {split!r} is empty: {list_file} lists no sample ids")
    return ids


def _missing_label(problems: list[tuple[str, str]] | None, sample_id: str, message: str) -> None:
    """Raise ``message`` at once (``problems is None``), or note it for the split's listing."""
    if problems is None:
        raise DatasetError(message)
    problems.append((sample_id, message))


def pair_by_image_dir(
    image_dir: Path,
    label_dir: Path,
    split: str,
    image_suffix: str,
    label_suffix: str,
    what: str,
    problems: list[tuple[str, str]] | None = None,
) -> list[Sample]:
    """One sample per ``*image_suffix`` file in ``image_dir`` (any case); each must have
    ``label_dir/<stem><label_suffix>``. An image without it raises DatasetError, or with a
    ``problems`` list is noted there (``(sample_id, message)``) and left out."""
    require_dir(image_dir, f"{what} image folder for split {split!r}")
    require_dir(label_dir, f"{what} label folder for split {split!r}")
    samples = []
    for image_path in image_dir.iterdir():
        if image_path.suffix.lower() != image_suffix or not image_path.is_file():
            continue
        label_path = label_dir / f"{image_path.stem}{label_suffix}"
        if not label_path.is_file():
            _missing_label(problems, image_path.stem, f"image {image_path} has no label file: expected {label_path}")
            continue
        samples.append(Sample(image_path.stem, split, image_path, label_path))
    return samples


def pair_by_ids(
    ids: list[str],
    image_dir: Path,
    label_dir: Path,
    split: str,
    image_suffix: str,
    label_suffix: str,
    what: str,
    problems: list[tuple[str, str]] | None = None,
) -> list[Sample]:
    """One sample per id; both ``image_dir/<id><image_suffix>`` and the label must exist. A
    missing image raises DatasetError; a missing label too, or with a ``problems`` list is noted
    there (``(sample_id, message)``) and left out."""
    require_dir(image_dir, f"{what} image folder")
    require_dir(label_dir, f"{what} label folder")
    samples = []
    for sample_id in ids:
        image_path = image_dir / f"{sample_id}{image_suffix}"
        label_path = label_dir / f"{sample_id}{label_suffix}"
        if not image_path.is_file():
            raise DatasetError(f"split {split!r} lists {sample_id!r} but its image {image_path} is missing")
        if not label_path.is_file():
            _missing_label(problems, sample_id, f"image {image_path} has no label file: expected {label_path}")
            continue
        samples.append(Sample(sample_id, split, image_path, label_path))
    return samples


def read_names_file(path: Path) -> list[list[str]]:
    """Synonym lists from a names file: a JSON list of strings (CAT-Seg ``ade847.json``,
    ``pc459.json``) or of dicts with ``"name"`` (+ optional ``"trainId"``, detectron2 style),
    or a text file with one class per line (``"idx: name"`` lines are accepted too)."""
    if not path.is_file():
        raise DatasetError(f"class-names file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as error:
            raise DatasetError(f"class-names file {path} is not valid JSON: {error}") from error
        if not isinstance(entries, list) or not entries:
            raise DatasetError(f"class-names file {path} must hold a non-empty JSON list")
        if all(isinstance(entry, dict) for entry in entries):
            if all("trainId" in entry for entry in entries):
                entries = sorted(entries, key=lambda entry: entry["trainId"])
            names = [str(entry["name"]) for entry in entries]
        else:
            names = [str(entry) for entry in entries]
    else:
        names = []
        for line in text.splitlines():
            if not line.strip():
                continue
            match = re.match(r"^\s*\d+\s*:\s*(.+)$", line)
            names.append(match.group(1) if match else line.strip())
    if not names:
        raise DatasetError(f"class-names file {path} lists no classes")
    return [split_synonyms(name) for name in names]


def read_indexed_names(path: Path) -> dict[int, str]:
    """``{idx: name}`` from an ``"idx: name"`` per-line file (COCO-Stuff and Pascal-Context
    ``labels.txt``)."""
    names: dict[int, str] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = re.match(r"^\s*(\d+)\s*:\s*(.+?)\s*$", line)
        if match is None:
            raise DatasetError(f"{path}:{line_number}: expected 'index: name', got {line!r}")
        names[int(match.group(1))] = match.group(2)
    if not names:
        raise DatasetError(f"{path} lists no classes")
    return names


def read_ade_object_info(path: Path) -> list[list[str]]:
    """Synonym lists in train-id order from ADE20K's ``objectInfo150.txt``.

    Rows are ``Idx Ratio Train Val Name`` (tab separated; a header row is skipped); ``Idx`` runs
    1..N and becomes train id ``Idx-1``. Any N is accepted (the synthetic world writes its own).
    """
    rows: dict[int, list[str]] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split(None, 4)
        if not fields[0].strip().isdigit():
            continue  # header row "Idx Ratio Train Val Name"
        if len(fields) < 5:
            raise DatasetError(f"{path}:{line_number}: expected 5 columns (Idx Ratio Train Val Name), got {line!r}")
        rows[int(fields[0])] = split_synonyms(fields[4])
    if not rows:
        raise DatasetError(f"{path} lists no classes")
    if sorted(rows) != list(range(1, len(rows) + 1)):
        raise DatasetError(f"{path}: class indices must run 1..{len(rows)} without gaps")
    return [rows[index] for index in range(1, len(rows) + 1)]


# --------------------------------------------------------------------------------------------
# ADE20K
# --------------------------------------------------------------------------------------------

_ADE_SPLIT_FOLDERS = {"train": "training", "val": "validation"}


class _ADE20KReader(SegmentationReader):
    """Shared ADE20K layout: ``<image_folder>/{training,validation}/*.jpg`` and the labels of the same
    stem in ``<annotation_folder>/<same folder>`` (``label_suffix``); class names are the first of
    each class's :attr:`class_synonyms`."""

    image_folder: ClassVar[str]
    annotation_folder: ClassVar[str]
    label_suffix: ClassVar[str]
    data_root: Path
    class_synonyms: list[list[str]]

    @property
    def class_names(self) -> list[str]:
        return [synonyms[0] for synonyms in self.class_synonyms]

    def list_samples(self, split: str) -> list[Sample]:
        self._check_split(split)
        folder = _ADE_SPLIT_FOLDERS[split]
        image_dir = self.data_root / self.image_folder / folder
        problems: list[tuple[str, str]] = []
        samples = pair_by_image_dir(
            image_dir,
            self.data_root / self.annotation_folder / folder,
            split,
            ".jpg",
            self.label_suffix,
            self.family,
            problems=problems,
        )
        return self._require_nonempty(samples, split, image_dir, problems)


@register_reader
class ADE20K150Reader(_ADE20KReader):
    """ADE20K SceneParsing (``ADEChallengeData2016``) with MMSeg's ``reduce_zero_label``.

    Raw PNG values are 0 = "other/unlabelled" and 1..N = classes; decoding sends 0 → 255 and
    k → k-1. Class names come from ``objectInfo150.txt`` when the root holds it (any N, first
    synonym), else from the built-in ADE-150 list.
    """

    family = "ade20k_150"
    ignore_index = 255
    splits = ("train", "val")
    image_folder = "images"
    annotation_folder = "annotations"
    label_suffix = ".png"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.data_root = resolve_dataset_dir(self.root, ("ADEChallengeData2016",), "images")
        object_info = self.data_root / "objectInfo150.txt"
        if object_info.is_file():
            self.class_synonyms = read_ade_object_info(object_info)
        else:
            self.class_synonyms = [[name] for name in ADE20K_150_CLASSES]

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        return reduce_zero_label(raw, self.ignore_index)


@register_reader
class ADE20K847Reader(_ADE20KReader):
    """ADE20K-Full (``ADE20K_2021_17_01``) as prepared for CAT-Seg / MaskFormer:
    ``images_detectron2/<split>/*.jpg`` and ``annotations_detectron2/<split>/*.tif`` holding
    uint16 train ids 0..846 with 65535 = ignore.

    ADE20K-Full ships no names file of its own in this layout (``index_ade20k.pkl`` lists all
    3688 raw object names, not the 847 train ids), so a names file is required: ``names_file``
    if given, else ``ade847.json`` (the list CAT-Seg ships in ``datasets/ade847.json``) or
    ``ade847.txt`` in the dataset folder. Class names are first synonyms; all synonyms are kept
    in :attr:`class_synonyms`.
    """

    family = "ade20k_847"
    ignore_index = 65535
    splits = ("train", "val")
    image_folder = "images_detectron2"
    annotation_folder = "annotations_detectron2"
    label_suffix = ".tif"
    names_file_candidates: ClassVar[tuple[str, ...]] = ("ade847.json", "ade847.txt")

    def __init__(self, root: str | Path, names_file: str | Path | None = None) -> None:
        super().__init__(root)
        self.data_root = resolve_dataset_dir(self.root, ("ADE20K_2021_17_01",), "images_detectron2")
        if names_file is None:
            found = [self.data_root / name for name in self.names_file_candidates if (self.data_root / name).is_file()]
            if not found:
                raise DatasetError(
                    f"ADE20K-847 needs a class-names file: pass names_file= or put one of "
                    f"{list(self.names_file_candidates)} in {self.data_root} (CAT-Seg ships datasets/ade847.json)"
                )
            names_file = found[0]
        self.class_synonyms = read_names_file(Path(names_file))

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.int64)  # already train ids, 65535 = ignore


# --------------------------------------------------------------------------------------------
# COCO-Stuff
# --------------------------------------------------------------------------------------------


def coco_stuff_names(labels_file: Path) -> list[str]:
    """The 171 train-id names from COCO-Stuff's ``labels.txt`` (``"0: unlabeled"``, then the 182
    1-indexed COCO ids, of which the 11 unused ones are dropped)."""
    indexed = read_indexed_names(labels_file)
    names = [name for index, name in sorted(indexed.items()) if index > 0 and index not in COCO_STUFF_UNUSED_IDS]
    if len(names) != len(COCO_STUFF_171_CLASSES):
        raise DatasetError(f"{labels_file}: expected 171 used COCO-Stuff classes, found {len(names)}")
    return names


def coco_id_to_train_id() -> dict[int, int]:
    """1-indexed COCO-Stuff category id (1..182, unused ids skipped) → train id 0..170."""
    used = [coco_id for coco_id in range(1, 183) if coco_id not in COCO_STUFF_UNUSED_IDS]
    return {coco_id: train_id for train_id, coco_id in enumerate(used)}


class _CocoStuffNames:
    """Mixin: 171 names from ``labels.txt`` in the dataset folder if present, else built in."""

    data_root: Path

    def _load_coco_names(self) -> list[str]:
        labels_file = self.data_root / "labels.txt"
        return coco_stuff_names(labels_file) if labels_file.is_file() else list(COCO_STUFF_171_CLASSES)


@register_reader
class CocoStuff164kReader(_CocoStuffNames, SegmentationReader):
    """COCO-Stuff-164k in MMSeg's converted layout: ``images/{train2017,val2017}/*.jpg`` and
    ``annotations/{train2017,val2017}/*_labelTrainIds.png`` (train ids 0..170, 255 = ignore).

    ``label_format="stuffthingmaps"`` reads the unconverted ``stuffthingmaps_trainval2017``
    PNGs instead (``annotations/<split>/<id>.png``: 0-indexed COCO ids 0..181, 255 = unlabelled),
    mapping them to train ids with the same table as MMSeg's ``coco_stuff164k.py``.
    """

    family = "coco_stuff_164k"
    ignore_index = 255
    splits = ("train", "val")
    label_formats: ClassVar[tuple[str, ...]] = ("train_ids", "stuffthingmaps")

    def __init__(self, root: str | Path, label_format: str = "train_ids") -> None:
        super().__init__(root)
        if label_format not in self.label_formats:
            raise ValueError(f"label_format must be one of {self.label_formats}, got {label_format!r}")
        self.label_format = label_format
        self.data_root = resolve_dataset_dir(self.root, ("coco_stuff164k", "coco-stuff", "coco"), "images")
        self._names = self._load_coco_names()
        # stuffthingmaps hold 0-indexed COCO ids: 1-indexed id c is stored as c-1.
        zero_indexed = {coco_id - 1: train_id for coco_id, train_id in coco_id_to_train_id().items()}
        self._stuffthingmap_table = build_lookup_table(zero_indexed | {255: 255}, 256)

    @property
    def class_names(self) -> list[str]:
        return list(self._names)

    def list_samples(self, split: str) -> list[Sample]:
        self._check_split(split)
        folder = f"{split}2017"
        image_dir = self.data_root / "images" / folder
        suffix = "_labelTrainIds.png" if self.label_format == "train_ids" else ".png"
        problems: list[tuple[str, str]] = []
        samples = pair_by_image_dir(
            image_dir,
            self.data_root / "annotations" / folder,
            split,
            ".jpg",
            suffix,
            self.family,
            problems=problems,
        )
        return self._require_nonempty(samples, split, image_dir, problems)

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        if self.label_format == "train_ids":
            return np.asarray(raw, dtype=np.int64)
        return apply_lookup_table(raw, self._stuffthingmap_table)


@register_reader
class CocoStuff10kReader(_CocoStuffNames, SegmentationReader):
    """COCO-Stuff-10k, in either of its two layouts (detected from the folders present):

    * ``mmseg`` (after ``tools/dataset_converters/coco_stuff10k.py``):
      ``images/{train2014,test2014}/*.jpg``, ``annotations/{train2014,test2014}/*_labelTrainIds.png``
      with 0 = unlabelled and 1..171 = classes; MMSeg loads it with ``reduce_zero_label=True``,
      so 0 → 255 and k → k-1.
    * ``original`` (the 10k download): ``images/*.jpg``, ``annotations/*.mat`` (key ``S``: 0 =
      unlabelled, 1..182 = 1-indexed COCO ids) and ``imageLists/{train,test}.txt``; COCO ids are
      mapped to train ids as in the converter (needs scipy to read ``.mat``).

    Splits are ``train`` and ``test``; ``val`` is accepted as the name of ``test`` (the split
    every paper evaluates on).
    """

    family = "coco_stuff_10k"
    ignore_index = 255
    splits = ("train", "test", "val")

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.data_root = resolve_dataset_dir(self.root, ("coco_stuff10k", "cocostuff-10k-v1.1"), "images")
        converted = (self.data_root / "annotations" / "train2014").is_dir() or (
            self.data_root / "annotations" / "test2014"
        ).is_dir()
        self.layout = "mmseg" if converted else "original"
        self._names = self._load_coco_names()
        # .mat ``S``: 0 = unlabelled, 1..182 = 1-indexed COCO ids
        self._coco_id_table = build_lookup_table(coco_id_to_train_id() | {0: 255}, 256)

    @property
    def class_names(self) -> list[str]:
        return list(self._names)

    def list_samples(self, split: str) -> list[Sample]:
        self._check_split(split)
        list_name = "train" if split == "train" else "test"
        problems: list[tuple[str, str]] = []
        if self.layout == "mmseg":
            folder = f"{list_name}2014"
            image_dir = self.data_root / "images" / folder
            samples = pair_by_image_dir(
                image_dir,
                self.data_root / "annotations" / folder,
                split,
                ".jpg",
                "_labelTrainIds.png",
                self.family,
                problems=problems,
            )
            return self._require_nonempty(samples, split, image_dir, problems)
        list_file = self.data_root / "imageLists" / f"{list_name}.txt"
        ids = read_split_ids(list_file, split)
        samples = pair_by_ids(
            ids,
            self.data_root / "images",
            self.data_root / "annotations",
            split,
            ".jpg",
            ".mat",
            self.family,
            problems=problems,
        )
        return self._require_nonempty(samples, split, list_file, problems)

    def load_label(self, sample: Sample) -> np.ndarray:
        if sample.label_path is None or sample.label_path.suffix != ".mat":
            return super().load_label(sample)
        raw = read_coco_stuff_mat(sample.label_path)
        label = self.decode_label(raw)
        check_label_values(label, self.num_classes, self.ignore_index, sample.label_path, raw=raw)
        return label

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        if self.layout == "mmseg":
            return reduce_zero_label(raw, self.ignore_index)
        return apply_lookup_table(raw, self._coco_id_table)


def read_coco_stuff_mat(path: Path) -> np.ndarray:
    """The ``S`` label map of a COCO-Stuff-10k ``.mat`` annotation as int64."""
    try:
        from scipy.io import loadmat
    except ImportError as error:  # pragma: no cover - scipy ships with the project's deps
        raise DatasetError(f"reading {path} needs scipy (COCO-Stuff-10k .mat annotations)") from error
    if not path.is_file():
        raise DatasetError(f"label file missing: {path}")
    try:
        content = loadmat(path)
    except Exception as error:
        raise DatasetError(f"corrupt or unreadable label {path}: {error}") from error
    if "S" not in content:
        keys = sorted(key for key in content if not key.startswith("__"))
        raise DatasetError(f"label {path} has no 'S' array (keys: {keys})")
    return np.asarray(content["S"]).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Pascal-Context
# --------------------------------------------------------------------------------------------


@register_reader
class PascalContext59Reader(SegmentationReader):
    """Pascal-Context-59 in MMSeg's layout: ``VOCdevkit/VOC2010/JPEGImages/*.jpg``,
    ``SegmentationClassContext/*.png`` (0 = background, 1..59 = classes) and
    ``ImageSets/SegmentationContext/{train,val}.txt``; ``reduce_zero_label``: 0 → 255, k → k-1.

    Class names come from the 459-class ``labels.txt`` in VOC2010 when present (picking the 59
    ids MMSeg's converter keeps), else from the built-in list.
    """

    family = "pascal_context_59"
    ignore_index = 255
    splits = ("train", "val")

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.data_root = resolve_dataset_dir(self.root, ("VOCdevkit/VOC2010", "VOC2010"), "JPEGImages")
        labels_file = self.data_root / "labels.txt"
        if labels_file.is_file():
            indexed = read_indexed_names(labels_file)
            missing = [index for index in PASCAL_CONTEXT_59_IDS_IN_459 if index not in indexed]
            if missing:
                raise DatasetError(f"{labels_file} lacks the Pascal-Context-59 class ids {missing[:10]}")
            self._names = [indexed[index] for index in PASCAL_CONTEXT_59_IDS_IN_459]
        else:
            self._names = list(PASCAL_CONTEXT_59_CLASSES)

    @property
    def class_names(self) -> list[str]:
        return list(self._names)

    def list_samples(self, split: str) -> list[Sample]:
        self._check_split(split)
        list_file = self.data_root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
        ids = read_split_ids(list_file, split)
        problems: list[tuple[str, str]] = []
        samples = pair_by_ids(
            ids,
            self.data_root / "JPEGImages",
            self.data_root / "SegmentationClassContext",
            split,
            ".jpg",
            ".png",
            self.family,
            problems=problems,
        )
        return self._require_nonempty(samples, split, list_file, problems)

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        return reduce_zero_label(raw, self.ignore_index)


@register_reader
class PascalContext459Reader(SegmentationReader):
    """Pascal-Context-459 as prepared by CAT-Seg (``prepare_pascal_context_459.py``):
    ``VOCdevkit/VOC2010/annotations_detectron2/pc459_val/*.tif`` holding ``LabelMap - 1``
    (train ids 0..458), images in ``VOC2010/JPEGImages``; ignore value 459 (detectron2
    evaluates with ``ignore_label=459``). Only the ``val`` split is prepared.

    A ``LabelMap`` value 0 (unlabelled) wraps to 65535 in the uint16 TIFF; it is decoded to the
    ignore value 459 as well. ``.png`` labels in the same folder are accepted.

    Class names come from ``labels.txt`` (the ``"idx: name"`` file of the Pascal-Context
    download, which CAT-Seg's prepare script also reads), or ``names_file`` / ``pc459.json``.
    """

    family = "pascal_context_459"
    ignore_index = 459
    splits = ("val",)
    wrapped_unlabelled_value: ClassVar[int] = 65535

    def __init__(self, root: str | Path, names_file: str | Path | None = None) -> None:
        super().__init__(root)
        self.data_root = resolve_dataset_dir(self.root, ("VOCdevkit/VOC2010", "VOC2010"), "JPEGImages")
        labels_file = self.data_root / "labels.txt"
        if names_file is not None:
            self._names = [synonyms[0] for synonyms in read_names_file(Path(names_file))]
        elif labels_file.is_file():
            indexed = read_indexed_names(labels_file)
            if sorted(indexed) != list(range(1, len(indexed) + 1)):
                raise DatasetError(f"{labels_file}: class indices must run 1..{len(indexed)} without gaps")
            self._names = [indexed[index] for index in range(1, len(indexed) + 1)]
        elif (self.data_root / "pc459.json").is_file():
            self._names = [synonyms[0] for synonyms in read_names_file(self.data_root / "pc459.json")]
        else:
            raise DatasetError(
                f"Pascal-Context-459 needs its class names: {labels_file} (from the Pascal-Context "
                f"download) or pc459.json was not found; or pass names_file="
            )

    @property
    def class_names(self) -> list[str]:
        return list(self._names)

    def list_samples(self, split: str) -> list[Sample]:
        self._check_split(split)
        label_dir = require_dir(
            self.data_root / "annotations_detectron2" / "pc459_val", "Pascal-Context-459 label folder"
        )
        image_dir = require_dir(self.data_root / "JPEGImages", "Pascal-Context-459 image folder")
        list_file = self.data_root / "pascalcontext_val.txt"
        if list_file.is_file():
            ids = read_split_ids(list_file, split)
        else:  # JPEGImages holds every VOC2010 image, so the prepared labels define the split
            ids = sorted({path.stem for path in label_dir.iterdir() if path.suffix.lower() in {".tif", ".png"}})
        samples = []
        problems: list[tuple[str, str]] = []
        for sample_id in ids:
            image_path = image_dir / f"{sample_id}.jpg"
            label_path = label_dir / f"{sample_id}.tif"
            if not label_path.is_file() and (label_dir / f"{sample_id}.png").is_file():
                label_path = label_dir / f"{sample_id}.png"
            if not image_path.is_file():
                raise DatasetError(f"label {label_path} has no image: expected {image_path}")
            if not label_path.is_file():
                problems.append((sample_id, f"image {image_path} has no label file: expected {label_path}"))
                continue
            samples.append(Sample(sample_id, split, image_path, label_path))
        return self._require_nonempty(samples, split, label_dir, problems)

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        decoded = np.asarray(raw, dtype=np.int64).copy()
        decoded[decoded == self.wrapped_unlabelled_value] = self.ignore_index
        return decoded


# --------------------------------------------------------------------------------------------
# Pascal VOC 2012
# --------------------------------------------------------------------------------------------


class _VOC2012Reader(SegmentationReader):
    """Shared VOC 2012 layout: ``VOCdevkit/VOC2012/JPEGImages/*.jpg``, palette PNGs in
    ``SegmentationClass`` (index 0 = background, 1..20 = objects, 255 = boundary/difficult) and
    ``ImageSets/Segmentation/{train,val,trainval}.txt``. ``label_folder`` selects another folder
    of the same encoding (e.g. ``SegmentationClassAug``)."""

    ignore_index = 255
    splits = ("train", "val", "trainval")

    def __init__(self, root: str | Path, label_folder: str = "SegmentationClass") -> None:
        super().__init__(root)
        self.data_root = resolve_dataset_dir(self.root, ("VOCdevkit/VOC2012", "VOC2012"), "JPEGImages")
        self.label_folder = label_folder

    def list_samples(self, split: str) -> list[Sample]:
        self._check_split(split)
        list_file = self.data_root / "ImageSets" / "Segmentation" / f"{split}.txt"
        ids = read_split_ids(list_file, split)
        problems: list[tuple[str, str]] = []
        samples = pair_by_ids(
            ids,
            self.data_root / "JPEGImages",
            self.data_root / self.label_folder,
            split,
            ".jpg",
            ".png",
            self.family,
            problems=problems,
        )
        return self._require_nonempty(samples, split, list_file, problems)


@register_reader
class VOC20Reader(_VOC2012Reader):
    """VOC-20: the 20 object classes (ids 0..19); background and boundaries are ignored (255)."""

    family = "voc_20"

    @property
    def class_names(self) -> list[str]:
        return list(VOC_OBJECT_CLASSES)

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        return reduce_zero_label(raw, self.ignore_index)  # background 0 → 255, k → k-1


@register_reader
class VOC21bReader(_VOC2012Reader):
    """VOC-21b ("with background"): 20 objects plus background, boundaries ignored (255).

    By default background is the LAST class, id 20, exactly as CAT-Seg prepares it
    (``annotations_detectron2_bg``: palette 0 → 20, k → k-1) and names it (20 objects +
    ``"background"``). This is the ordering under which the open-vocabulary protocol's rule
    "every prediction ≥ 20 is background" (DESIGN.md §6) is meaningful; evaluation code should use
    :attr:`background_index` and :attr:`num_object_classes` (predictions ``>= num_object_classes``
    → ``background_index``) rather than hard-coding 20.

    ``background_first=True`` keeps the raw VOC order instead (background = 0, objects 1..20).
    """

    family = "voc_21b"
    num_object_classes: ClassVar[int] = 20
    #: evaluation maps every prediction ``>= num_object_classes`` to :attr:`background_index`
    maps_extra_predictions_to_background: ClassVar[bool] = True

    def __init__(
        self, root: str | Path, label_folder: str = "SegmentationClass", background_first: bool = False
    ) -> None:
        super().__init__(root, label_folder)
        self.background_first = background_first
        self.background_index = 0 if background_first else self.num_object_classes

    @property
    def class_names(self) -> list[str]:
        if self.background_first:
            return ["background", *VOC_OBJECT_CLASSES]
        return [*VOC_OBJECT_CLASSES, "background"]

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.int64)
        if self.background_first:
            return raw.copy()
        decoded = raw - 1
        decoded[raw == 0] = self.background_index
        # a raw value above 20 must not alias background id 20: keep it so the range check names it
        invalid = (raw > self.num_object_classes) & (raw != self.ignore_index)
        decoded[invalid] = raw[invalid]
        decoded[raw == self.ignore_index] = self.ignore_index
        return decoded


# --------------------------------------------------------------------------------------------
# A user's own dataset: a folder of images and a folder of masks
# --------------------------------------------------------------------------------------------

#: Image files the ``folder`` family lists (any case: ``.JPG`` too).
FOLDER_IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Mask files the ``folder`` family pairs with them (any case).
FOLDER_MASK_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".bmp")
#: ``mask_format`` values: single-channel class ids, or RGB colours decoded with a palette file.
FOLDER_MASK_FORMATS: tuple[str, ...] = ("ids", "rgb")


def parse_colour(text: str) -> tuple[int, int, int] | None:
    """``"#rrggbb"``, ``"R G B"`` or ``"R,G,B"`` as an ``(r, g, b)`` triple; ``None`` if ``text`` is none."""
    text = text.strip()
    if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
    parts = [part for part in re.split(r"[\s,]+", text) if part]
    if len(parts) == 3 and all(part.isdigit() for part in parts):
        values = tuple(int(part) for part in parts)
        if all(value <= 255 for value in values):
            return values  # type: ignore[return-value]
    return None


def colour_text(colour: tuple[int, int, int]) -> str:
    """``(12, 34, 56)`` → ``"(12, 34, 56) #0c2238"``: both spellings a user may search a palette for."""
    red, green, blue = (int(value) for value in colour)
    return f"({red}, {green}, {blue}) #{red:02x}{green:02x}{blue:02x}"


def read_palette(path: Path) -> list[tuple[tuple[int, int, int], str | None]]:
    """``(colour, name or None)`` per line of a palette file, in order (line i = raw class id i).

    A line is ``#rrggbb [name]`` or ``R G B [name]`` (``R,G,B`` too); blank lines and lines starting
    with ``"# "`` or ``"//"`` are skipped. A colour given twice is an error naming both lines."""
    if not path.is_file():
        raise DatasetError(f"palette file not found: {path}")
    entries: list[tuple[tuple[int, int, int], str | None]] = []
    first_line: dict[tuple[int, int, int], int] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped == "#" or stripped.startswith(("# ", "//")):
            continue
        match = re.match(r"^(#[0-9a-fA-F]{6}|\d+\s*[, ]\s*\d+\s*[, ]\s*\d+)(?:\s+(.*))?$", stripped)
        colour = parse_colour(match.group(1)) if match else None
        if colour is None:
            raise DatasetError(
                f"{path}:{line_number}: expected a colour '#rrggbb [name]' or 'R G B [name]' (0-255), got {line!r}"
            )
        if colour in first_line:
            raise DatasetError(
                f"{path}:{line_number}: colour {colour_text(colour)} is already class line {first_line[colour]}; "
                "every class needs its own colour"
            )
        first_line[colour] = line_number
        name = match.group(2).strip() if match.group(2) else None
        entries.append((colour, name or None))
    if not entries:
        raise DatasetError(f"palette file {path} lists no colours")
    return entries


def read_class_list(path: str | Path) -> list[str]:
    """Class names of a class-list file (one per line, blank lines skipped; the first synonym of a
    ``"name, synonym"`` line), in id order; empty or duplicate names are an error naming them."""
    path = Path(path)
    names = [synonyms[0] for synonyms in read_names_file(path)]
    seen: dict[str, int] = {}
    for class_id, name in enumerate(names):
        key = name.casefold()
        if key in seen:
            raise DatasetError(f"class list {path}: {name!r} is both class {seen[key]} and class {class_id}")
        seen[key] = class_id
    return names


def _first_pixel(mask: np.ndarray) -> str:
    """``"x=5, y=10"``: the first (row-major) pixel where ``mask`` is true."""
    row, column = np.unravel_index(int(np.argmax(mask)), mask.shape)
    return f"x={int(column)}, y={int(row)}"


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    """Files under ``folder`` (any depth) whose suffix is one of ``suffixes`` (any case), by their
    path relative to ``folder`` without the suffix (``"street/0001"``), sorted."""
    found: dict[str, list[Path]] = {}
    for directory, subdirectories, files in os.walk(folder):
        subdirectories.sort()
        base = Path(directory)
        relative = base.relative_to(folder).as_posix()
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() not in suffixes or name.startswith("."):
                continue
            key = stem if relative == "." else f"{relative}/{stem}"
            found.setdefault(key, []).append(base / name)
    return found


@register_reader
class FolderReader(SegmentationReader):
    """A user's own dataset: ``root/<images>`` and ``root/<masks>`` paired by their path without
    extension, a class list, and masks as class ids or as RGB colours with a palette.

    Layout (every path relative to ``root`` unless absolute; the image and mask folders must lie
    under ``root``)::

        root/classes.txt              one class name per line, in id order
        root/images/train/**/x.jpg    any depth; .jpg .jpeg .png .bmp .tif .tiff .webp, any case
        root/masks/train/**/x.png     the same relative path, .png (.tif .bmp); 8- or 16-bit,
                                      or palette PNGs whose indices are the ids
        root/images/val/... root/masks/val/...

    Splits are the subfolders of ``images`` (``images/train``, ``images/val``), or, with
    ``split_files={split: file}``, list files whose lines are either an image path relative to
    ``images`` with or without its extension (``street/0001``; the mask is ``masks/street/0001.png``)
    or two paths relative to ``root``, image then mask.

    ``mask_format="ids"``: pixel values are class ids (``ignore_index`` = ignore). With
    ``reduce_zero_label`` raw 0 is "other" (→ ignore) and raw k is class k-1, as MMSegmentation
    does for ADE20K. ``mask_format="rgb"``: each pixel's colour is looked up in the ``palette``
    file (see :func:`read_palette`): its line number (from 0) is the raw id, decoded as above, so
    the palette has one colour per class (one more, the first, for "other" with
    ``reduce_zero_label``); ``ignore_colors`` are read as ignore. A palette line may carry the class
    name, which must then be the class list's.

    Errors name the file and the problem: an image without its mask or a mask without its image
    (listed; ``on_bad_sample: skip`` counts and leaves them out), a colour not in the palette (the
    colour, its pixel count and first pixel), an id beyond the class list (the id, its pixel count
    and first pixel), a palette that does not match the class list (counts or names).
    """

    family = "folder"
    ignore_index = 255
    splits: tuple[str, ...] = ()

    def __init__(
        self,
        root: str | Path,
        classes: str | Path = "classes.txt",
        images: str | Path = "images",
        masks: str | Path = "masks",
        mask_format: str = "ids",
        palette: str | Path | None = None,
        ignore_colors: list[str] | tuple[str, ...] = (),
        ignore_index: int = 255,
        reduce_zero_label: bool = False,
        split_files: dict[str, str | Path] | None = None,
    ) -> None:
        super().__init__(root)
        if mask_format not in FOLDER_MASK_FORMATS:
            raise DatasetError(f"folder dataset {self.root}: mask_format must be one of {FOLDER_MASK_FORMATS}")
        self.mask_format = mask_format
        self.reduce_zero_label = bool(reduce_zero_label)
        self.ignore_index = int(ignore_index)
        self.classes_file = self._under_root(classes)
        self.image_dir = require_dir(self._under_root(images), "folder dataset image folder")
        self.mask_dir = require_dir(self._under_root(masks), "folder dataset mask folder")
        for what, folder in (("images", self.image_dir), ("masks", self.mask_dir)):
            if not folder.resolve().is_relative_to(self.root.resolve()):
                raise DatasetError(f"folder dataset: the {what} folder {folder} is not under root {self.root}")
        self._names = read_class_list(self.classes_file)
        if self.ignore_index < len(self._names):
            raise DatasetError(
                f"folder dataset: ignore_index {self.ignore_index} is a class id of {self.classes_file} "
                f"({len(self._names)} classes): set ignore_index >= {len(self._names)} (e.g. 65535 for 16-bit masks)"
            )
        self.palette_file: Path | None = None
        self._palette_keys = self._ignore_keys = np.zeros(0, dtype=np.uint32)
        self._palette_ids = np.zeros(0, dtype=np.int64)
        if mask_format == "rgb":
            if palette is None:
                raise DatasetError(f"folder dataset {self.root}: mask_format 'rgb' needs a palette file (palette=)")
            self.palette_file = self._under_root(palette)
            self._load_palette(read_palette(self.palette_file), ignore_colors)
        elif ignore_colors:
            raise DatasetError("folder dataset: ignore_colors applies to mask_format 'rgb' only")
        self.split_files = {str(split): self._under_root(path) for split, path in (split_files or {}).items()}
        if self.split_files:
            self.splits = tuple(self.split_files)
        else:
            self.splits = tuple(sorted(p.name for p in self.image_dir.iterdir() if p.is_dir()))

    def _sample_id(self, image_path: Path) -> str:
        """An image's path without its extension, relative to the image folder (else to root)."""
        for folder in (self.image_dir, self.root):
            if image_path.is_relative_to(folder):
                return image_path.relative_to(folder).with_suffix("").as_posix()
        return image_path.with_suffix("").as_posix()

    def _under_root(self, path: str | Path) -> Path:
        path = Path(path)
        return path if path.is_absolute() else self.root / path

    @property
    def class_names(self) -> list[str]:
        return list(self._names)

    # ---------------------------------------------------------------- palette

    def _load_palette(
        self, entries: list[tuple[tuple[int, int, int], str | None]], ignore_colors: list[str] | tuple[str, ...]
    ) -> None:
        """Check the palette against the class list and build the colour → raw id lookup."""
        offset = 1 if self.reduce_zero_label else 0
        expected = len(self._names) + offset
        if len(entries) != expected:
            other = " (with reduce_zero_label its first colour is 'other', then one per class)" if offset else ""
            raise DatasetError(
                f"palette {self.palette_file} has {len(entries)} colours but the class list {self.classes_file} "
                f"has {len(self._names)} classes: the palette needs {expected}{other}"
            )
        for line, (colour, name) in enumerate(entries):
            if name is None or line < offset:
                continue
            class_name = self._names[line - offset]
            if name.casefold() != class_name.casefold() and first_synonym(name).casefold() != class_name.casefold():
                raise DatasetError(
                    f"palette {self.palette_file} names colour {colour_text(colour)} {name!r} (class id "
                    f"{line - offset}) but the class list {self.classes_file} names class {line - offset} "
                    f"{class_name!r}: list the classes in the same order"
                )
        keys = np.array([(r << 16) | (g << 8) | b for (r, g, b), _ in entries], dtype=np.uint32)
        order = np.argsort(keys)
        self._palette_keys, self._palette_ids = keys[order], order.astype(np.int64)
        ignore = []
        for text in ignore_colors:
            colour = parse_colour(str(text))
            if colour is None:
                raise DatasetError(f"folder dataset: ignore_colors entry {text!r} is no '#rrggbb' or 'R G B' colour")
            key = (colour[0] << 16) | (colour[1] << 8) | colour[2]
            if key in keys:
                raise DatasetError(
                    f"folder dataset: ignore colour {colour_text(colour)} is also a class colour in {self.palette_file}"
                )
            ignore.append(key)
        self._ignore_keys = np.array(sorted(ignore), dtype=np.uint32)

    # ---------------------------------------------------------------- listing

    def list_samples(self, split: str) -> list[Sample]:
        if split not in self.splits:
            if self.split_files:
                raise DatasetError(
                    f"folder dataset: split {split!r} has no split file; split_files: {self.split_files}"
                )
            raise DatasetError(
                f"folder dataset: split {split!r} has no folder {self.image_dir / split} (subfolders found: "
                f"{list(self.splits)}); put each split in its own subfolder of the image and mask folders, or "
                "list them with split_files"
            )
        problems: list[tuple[str, str]] = []
        if self.split_files:
            samples = self._samples_from_list(split, self.split_files[split], problems)
            return self._require_nonempty(samples, split, self.split_files[split], problems)
        image_dir = self.image_dir / split
        mask_dir = require_dir(self.mask_dir / split, f"folder dataset mask folder for split {split!r}")
        images = _files_by_stem(image_dir, FOLDER_IMAGE_SUFFIXES)
        masks = _files_by_stem(mask_dir, FOLDER_MASK_SUFFIXES)
        samples = []
        for stem, image_paths in images.items():
            mask_path = self._one_mask(stem, masks.get(stem, []), image_paths[0], mask_dir, problems)
            if mask_path is not None:
                samples += [Sample(stem, split, image_path, mask_path) for image_path in image_paths]
        for stem in sorted(set(masks) - set(images)):
            problems.append(
                (
                    stem,
                    f"mask {masks[stem][0]} has no image: expected {image_dir / stem} with an image extension",
                )
            )
        return self._require_nonempty(samples, split, image_dir, problems)

    def _one_mask(
        self, stem: str, candidates: list[Path], image_path: Path, mask_dir: Path, problems: list[tuple[str, str]]
    ) -> Path | None:
        """The one mask of ``stem``, or ``None`` with the problem noted (none, or several)."""
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            problems.append((stem, f"image {image_path} has no mask: expected {mask_dir / stem}.png"))
        else:
            problems.append(
                (stem, f"image {image_path} has {len(candidates)} masks: {', '.join(map(str, candidates))}; keep one")
            )
        return None

    def _samples_from_list(self, split: str, list_file: Path, problems: list[tuple[str, str]]) -> list[Sample]:
        if not list_file.is_file():
            raise DatasetError(f"split list for {split!r} not found: {list_file}")
        images = masks = None  # the trees are walked once, when a line names a sample without its extension
        samples = []
        for line_number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{list_file}:{line_number}"
            if len(fields) == 2:  # image and mask, relative to root
                image_path, mask_path = self._under_root(fields[0]), self._under_root(fields[1])
                stem = self._sample_id(image_path)
                if not image_path.is_file():
                    problems.append((stem, f"{where} lists image {image_path}, which does not exist"))
                elif not mask_path.is_file():
                    problems.append((stem, f"{where}: image {image_path} has no mask: {mask_path} does not exist"))
                else:
                    samples.append(Sample(stem, split, image_path, mask_path))
                continue
            if len(fields) > 2:
                raise DatasetError(f"{where}: expected 'image' or 'image mask', got {line!r}")
            entry = fields[0]
            stem = entry[: -len(Path(entry).suffix)] if Path(entry).suffix.lower() in FOLDER_IMAGE_SUFFIXES else entry
            if images is None:
                images = _files_by_stem(self.image_dir, FOLDER_IMAGE_SUFFIXES)
                masks = _files_by_stem(self.mask_dir, FOLDER_MASK_SUFFIXES)
            image_paths = images.get(stem, [])
            if stem != entry:  # the line gives the extension: that file
                image_paths = [path for path in image_paths if path.name == Path(entry).name]
            if not image_paths:
                problems.append((stem, f"{where} lists {entry!r} but no image {self.image_dir / entry} exists"))
                continue
            mask_path = self._one_mask(stem, masks.get(stem, []), image_paths[0], self.mask_dir, problems)
            if mask_path is not None:
                samples += [Sample(stem, split, image_path, mask_path) for image_path in image_paths]
        return samples

    # ---------------------------------------------------------------- masks

    def read_mask(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw class ids of a mask file (``int64 H×W``; for RGB masks the palette line of each colour)
        and, for RGB masks, where an ``ignore_colors`` colour is (else ``None``)."""
        if self.mask_format == "ids":
            return self._read_id_mask(path), None
        rgb = read_image_rgb(path)  # palette PNGs give their colours here
        keys = rgb[..., 0].astype(np.uint32) << 16
        keys |= rgb[..., 1].astype(np.uint32) << 8
        keys |= rgb[..., 2]
        position = np.searchsorted(self._palette_keys, keys)
        np.minimum(position, len(self._palette_keys) - 1, out=position)
        known = self._palette_keys[position] == keys
        raw = self._palette_ids[position]
        if known.all():
            return raw, None
        ignored = np.isin(keys, self._ignore_keys)
        unknown = ~known & ~ignored
        if unknown.any():
            colours, counts = np.unique(keys[unknown], return_counts=True)
            first = int(colours[0])
            at = _first_pixel(keys == first)
            colour = (first >> 16, (first >> 8) & 255, first & 255)
            more = f"; {len(colours) - 1} more unknown colours" if len(colours) > 1 else ""
            raise DatasetError(
                f"mask {path} has colour {colour_text(colour)} ({int(counts[0])} pixels, first at {at}) that is not "
                f"in the palette {self.palette_file}{more}"
            )
        raw[ignored] = 0  # any id: load_label sets these pixels to ignore_index
        return raw, ignored

    def _read_id_mask(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise DatasetError(f"label file missing: {path}")
        if path.suffix.lower() in {".tif", ".tiff"}:
            return read_label_array(path)
        try:
            with Image.open(path) as image:
                image.load()
                mode = image.mode
                array = np.asarray(image)
        except Exception as error:  # PIL raises many types for broken files
            raise DatasetError(f"corrupt or unreadable mask {path}: {error}") from error
        if array.ndim == 3:
            channels = array[..., :3] if mode in ("RGB", "RGBA") else array[..., :1]
            if not (channels == channels[..., :1]).all():
                raise DatasetError(
                    f"mask {path} is a {mode} colour image; with mask_format 'ids' a mask holds one class id per "
                    "pixel (a single-channel or palette PNG): for colour masks set mask_format: rgb and a palette file"
                )
            array = channels[..., 0]
        return array.astype(np.int64)

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        if self.reduce_zero_label:
            return reduce_zero_label(raw, self.ignore_index)
        return np.asarray(raw, dtype=np.int64)

    def load_label(self, sample: Sample) -> np.ndarray:
        """Decoded mask of ``sample``; an id beyond the class list names the id, its pixels and where."""
        if sample.label_path is None:
            raise DatasetError(f"sample {sample.sample_id} ({sample.image_path}) has no mask")
        raw, ignored = self.read_mask(sample.label_path)
        label = self.decode_label(raw)
        if ignored is not None:
            label[ignored] = self.ignore_index
        bad = (label != self.ignore_index) & ((label < 0) | (label >= self.num_classes))
        if bad.any():
            values, counts = np.unique(raw[bad], return_counts=True)
            first = int(values[0])
            at = _first_pixel(bad & (raw == first))
            shifted = ", reduce_zero_label: raw k is class k-1" if self.reduce_zero_label else ""
            more = f"; other ids beyond it: {values[1:10].tolist()}" if len(values) > 1 else ""
            raise DatasetError(
                f"mask {sample.label_path} has class id {first} ({int(counts[0])} pixels, first at {at}) beyond the "
                f"class list {self.classes_file} ({self.num_classes} classes: ids 0..{self.num_classes - 1}, ignore "
                f"{self.ignore_index}{shifted}){more}"
            )
        return label


__all__ = [
    "ADE20K150Reader",
    "ADE20K847Reader",
    "CocoStuff10kReader",
    "CocoStuff164kReader",
    "FolderReader",
    "PascalContext459Reader",
    "PascalContext59Reader",
    "VOC20Reader",
    "VOC21bReader",
]

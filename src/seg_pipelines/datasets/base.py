"""The reader contract every dataset family implements, and the checked file I/O they share.

A reader knows one on-disk layout. It lists samples (image path, label path, split) and loads
an image as ``uint8 H×W×3`` and a label as ``int64 H×W`` in *train-id space*: class ids
``0 … num_classes-1`` plus the dataset's own ignore value (``ignore_index``) — 255 for the
closed-set layouts, 65535 for A-847, 459 for PC-459 (DESIGN.md §6). Nothing is remapped to a
common ignore value; downstream code takes ``ignore_index`` from the reader.

Every problem with the files raises :class:`DatasetError` naming the file and the problem.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError


class DatasetError(ValueError):
    """A dataset on disk is missing, incomplete or inconsistent; the message names the file."""


class BadSamplesError(DatasetError):
    """Listing a split found samples that cannot be used: an image without its label file, or
    two files that map to one sample id (``x.jpg`` beside ``x.JPG``). The message names the files
    of the first problem; ``problems`` holds every ``(sample_id, message)`` and ``samples`` the
    usable samples, so that ``on_bad_sample: skip`` goes on without the bad ones."""

    def __init__(self, split: str, problems: list[tuple[str, str]], samples: list[Sample]) -> None:
        self.split = split
        self.problems = sorted(problems)
        self.samples = samples
        more = f" (and {len(problems) - 1} more bad samples in split {split!r})" if len(problems) > 1 else ""
        super().__init__(self.problems[0][1] + more)


@dataclass(frozen=True)
class Sample:
    """One image with its label file, as listed by a reader."""

    sample_id: str
    split: str
    image_path: Path
    label_path: Path | None

    def __post_init__(self) -> None:  # rows of the prepared index hold the paths as text
        object.__setattr__(self, "image_path", Path(self.image_path))
        if self.label_path is not None and not isinstance(self.label_path, Path):
            object.__setattr__(self, "label_path", Path(self.label_path) if str(self.label_path) else None)


def require_dir(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path, or raise DatasetError if it is not an existing directory."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{what} not found: {path} does not exist or is not a directory")
    return path


def _high_bit_depth_to_rgb(values: np.ndarray, path: Path) -> np.ndarray:
    """A 16-bit greyscale image as ``uint8 H×W×3``, scaled (``/ 257``: 65535 → 255), not clipped
    (PIL's ``convert("RGB")`` saturates every value above 255)."""
    values = values.astype(np.int64)
    if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
        raise DatasetError(f"image {path}: integer values outside 0-65535 ({values.min()}..{values.max()})")
    grey = np.rint(values / 257.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as ``uint8 H×W×3``; a missing, corrupt or truncated file raises DatasetError."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image file missing: {path}")
    try:
        with Image.open(path) as image:
            image.load()  # forces a full decode: truncated files fail here, not later
            if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
                return _high_bit_depth_to_rgb(np.asarray(image), path)
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DatasetError(f"corrupt or truncated image {path}: {error}") from error


def read_label_array(path: str | Path) -> np.ndarray:
    """Read a label map (PNG, palette PNG, TIFF incl. uint16) as its raw integer values, ``H×W``.

    Palette PNGs (VOC) keep their indices (mode ``P``), they are not converted to colours.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label file missing: {path}")
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            import tifffile

            array = tifffile.imread(path)
        else:
            with Image.open(path) as label:
                label.load()
                array = np.asarray(label)
    except Exception as error:  # tifffile and PIL raise many types for broken files
        raise DatasetError(f"corrupt or unreadable label {path}: {error}") from error
    if array.ndim == 3:
        raise DatasetError(f"label {path} has {array.shape[2]} channels; expected a single-channel id map")
    if array.dtype.kind == "f":  # a float map: truncating 1.5 to 1 would be a silent wrong class
        fractional = array[~np.isfinite(array) | (array != np.round(array))]
        if fractional.size:
            raise DatasetError(
                f"label {path} holds {array.dtype} values that are no class ids (e.g. {fractional[0]!r}); "
                "expected integer class ids"
            )
    return array.astype(np.int64)


def check_label_values(
    label: np.ndarray, num_classes: int, ignore_index: int, path: Path | str, raw: np.ndarray | None = None
) -> None:
    """Raise DatasetError if ``label`` holds values outside ``[0, num_classes)`` other than ``ignore_index``.

    ``raw`` is the label as stored in the file, before decoding: the error names the values found
    in the file (e.g. PC-59's raw 60, not its decoded 59), with the decoded ones beside them."""
    bad = (label != ignore_index) & ((label < 0) | (label >= num_classes))
    if bad.any():
        values = np.unique(label[bad])[:10].tolist()
        found = f"values {values}"
        if raw is not None and np.shape(raw) == label.shape:
            raw_values = np.unique(np.asarray(raw)[bad])[:10].tolist()
            if raw_values != values:
                found = f"raw values {raw_values} (decoded to {values})"
        raise DatasetError(
            f"label {path} has {found} outside the class range 0..{num_classes - 1} (ignore value {ignore_index})"
        )


class SegmentationReader(abc.ABC):
    """A dataset family's on-disk layout.

    Subclasses set ``family`` (registry name), ``ignore_index``, ``splits`` and implement
    :meth:`class_names`, :meth:`list_samples` and :meth:`decode_label` (raw file values → train ids).
    """

    family: ClassVar[str]
    ignore_index: ClassVar[int] = 255
    splits: ClassVar[tuple[str, ...]] = ("train", "val")

    def __init__(self, root: str | Path) -> None:
        self.root = require_dir(root, f"{type(self).__name__} dataset root")

    @property
    @abc.abstractmethod
    def class_names(self) -> list[str]:
        """Class names in train-id order, read from the dataset's own files where it ships them."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @abc.abstractmethod
    def list_samples(self, split: str) -> list[Sample]:
        """All samples of ``split``, sorted by id; raise DatasetError on an unknown or empty split
        or an image without its label file."""

    @abc.abstractmethod
    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        """Map raw label-file values to train ids with ``ignore_index`` for ignored pixels."""

    def load_image(self, sample: Sample) -> np.ndarray:
        return read_image_rgb(sample.image_path)

    def load_label(self, sample: Sample) -> np.ndarray:
        """Decoded, range-checked ``int64`` label map of ``sample``."""
        if sample.label_path is None:
            raise DatasetError(f"sample {sample.sample_id} ({sample.image_path}) has no label file")
        raw = read_label_array(sample.label_path)
        label = self.decode_label(raw)
        check_label_values(label, self.num_classes, self.ignore_index, sample.label_path, raw=raw)
        return label

    def load_pair(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """Image and label of ``sample``; raise DatasetError if their sizes differ."""
        image = self.load_image(sample)
        label = self.load_label(sample)
        if image.shape[:2] != label.shape:
            raise DatasetError(
                f"image/label size mismatch for {sample.image_path}: image {image.shape[1]}x{image.shape[0]}, "
                f"label {sample.label_path} {label.shape[1]}x{label.shape[0]}"
            )
        return image, label

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DatasetError(f"{self.family}: unknown split {split!r}; known splits: {list(self.splits)}")

    @staticmethod
    def _require_nonempty(
        samples: list[Sample], split: str, where: Path, problems: list[tuple[str, str]] | None = None
    ) -> list[Sample]:
        """``samples`` sorted by id. Raise :class:`BadSamplesError` when listing found bad samples
        (``problems``, plus every sample id that more than one sample maps to: both are left out
        of the usable samples), or :class:`DatasetError` when there are no samples at all."""
        problems = list(problems or [])
        by_id: dict[str, list[Sample]] = {}
        for sample in samples:
            by_id.setdefault(sample.sample_id, []).append(sample)
        usable = []
        for sample_id, group in by_id.items():
            if len(group) == 1:
                usable.append(group[0])
                continue
            images = ", ".join(sorted(str(s.image_path) for s in group))
            labels = sorted({str(s.label_path) for s in group})
            problems.append(
                (
                    sample_id,
                    f"sample id {sample_id!r} of split {split!r} maps to {len(group)} files: {images} "
                    f"(label {', '.join(labels)}); keep one of them",
                )
            )
        usable.sort(key=lambda s: s.sample_id)
        if problems:
            raise BadSamplesError(split, problems, usable)
        if not usable:
            raise DatasetError(f"split {split!r} is empty: no samples found under {where}")
        return usable


READERS: dict[str, type[SegmentationReader]] = {}


def register_reader(cls: type[SegmentationReader]) -> type[SegmentationReader]:
    """Class decorator adding a reader to :data:`READERS` under its ``family`` name."""
    if cls.family in READERS:
        raise ValueError(f"reader family {cls.family!r} registered twice")
    READERS[cls.family] = cls
    return cls

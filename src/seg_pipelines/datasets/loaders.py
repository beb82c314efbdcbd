"""PyTorch Dataset / DataLoader factory over a prepared index, with mask-aligned augmentation.

Training augmentation (MMSegmentation's recipe, in ``torchvision.transforms.v2``): random
rescale by a factor in ``scale_range`` (0.5–2.0) of ``base_size``, random crop padded with the
ignore value, horizontal flip, photometric jitter (image only). ``tv_tensors.Mask`` makes every
geometric op nearest-neighbour on the label, so image and mask stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from seg_pipelines.datasets.base import Sample, SegmentationReader
from seg_pipelines.datasets.factory import create_reader

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentationConfig:
    """Parameters of the training/eval transforms (see module docstring)."""

    crop_size: tuple[int, int] = (96, 96)
    base_size: tuple[int, int] | None = None  # None: the crop size
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip_probability: float = 0.5
    photometric: dict[str, float] = field(
        default_factory=lambda: {"brightness": 0.125, "contrast": 0.5, "saturation": 0.5, "hue": 0.05}
    )
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def build_transform(config: AugmentationConfig, ignore_index: int, train: bool) -> v2.Compose:
    """Joint image+mask transform; evaluation only converts and normalises (whole image)."""
    steps: list[Any] = []
    if train:
        base = tuple(config.base_size or config.crop_size)
        steps += [
            v2.ScaleJitter(target_size=base, scale_range=tuple(config.scale_range), antialias=True),
            v2.RandomCrop(
                tuple(config.crop_size),
                pad_if_needed=True,
                fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index},
            ),
            v2.RandomHorizontalFlip(config.flip_probability),
        ]
        if config.photometric:
            steps.append(v2.ColorJitter(**config.photometric))
    steps += [v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64}, scale=True)]
    steps.append(v2.Normalize(mean=list(config.mean), std=list(config.std)))
    return v2.Compose(steps)


# Decoded (image, label) pairs of this process, by (family, root, reader settings, split, sample id)
# (a folder dataset may use one file name in two splits: train/0001.jpg and val/0001.jpg): a
# small dataset (the synthetic world: ~1,600 images of 96 px, ~60 MB decoded) is decoded once and
# every later epoch, run and dataset object of the process reads it from memory. Bounded: past
# DECODED_CACHE_BYTES nothing more is kept (larger datasets decode per access, as before).
DECODED_CACHE_BYTES = 1 << 30
_DECODED: dict[tuple[str, str, str, str, str], tuple[np.ndarray, np.ndarray]] = {}
_decoded_bytes = 0


def _compact_label(label: np.ndarray) -> np.ndarray:
    """The label in the smallest unsigned type that holds its values (int64 → uint8 / uint16)."""
    if label.size and label.min() >= 0:
        for dtype in (np.uint8, np.uint16):
            if label.max() <= np.iinfo(dtype).max:
                return label.astype(dtype)
    return label


def clear_decoded_cache() -> None:
    """Forget every decoded sample (tests; a dataset rewritten on disk under the same root)."""
    global _decoded_bytes
    _DECODED.clear()
    _decoded_bytes = 0


class SegmentationDataset(Dataset):
    """Samples of one split of a prepared index, decoded through the dataset's reader.

    ``label_lookup`` optionally remaps train ids (e.g. a benchmark vocabulary or the seen-class
    training set with unseen classes → ignore); it must map ``ignore_index`` to itself.
    ``cache_decoded``: keep decoded pairs in memory for the process (module cache, bounded by
    :data:`DECODED_CACHE_BYTES`); the numbers are the same either way.
    """

    def __init__(
        self,
        index: pd.DataFrame,
        split: str,
        family: str,
        root: str,
        reader_kwargs: dict[str, Any] | None = None,
        transform: v2.Compose | None = None,
        label_lookup: np.ndarray | None = None,
        cache_decoded: bool = True,
    ) -> None:
        self.rows = index[index["split"] == split].reset_index(drop=True)
        if self.rows.empty:
            raise ValueError(f"split {split!r} has no samples in the prepared index")
        self.split = split
        self.family, self.root, self.reader_kwargs = family, root, dict(reader_kwargs or {})
        self.transform = transform
        self.label_lookup = label_lookup
        self.cache_decoded = cache_decoded
        self._cache_prefix = (family, str(root), repr(sorted(self.reader_kwargs.items())))
        self._reader: SegmentationReader | None = None  # built lazily: picklable for workers

    @property
    def reader(self) -> SegmentationReader:
        if self._reader is None:
            self._reader = create_reader(self.family, self.root, **self.reader_kwargs)
        return self._reader

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_reader"] = None
        return state

    def __len__(self) -> int:
        return len(self.rows)

    def _decoded(self, row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        global _decoded_bytes
        key = (*self._cache_prefix, str(row["split"]), str(row["sample_id"]))
        if self.cache_decoded and key in _DECODED:
            return _DECODED[key]
        sample = Sample(row["sample_id"], row["split"], row["image_path"], row["label_path"])
        image, label = self.reader.load_pair(sample)
        if self.cache_decoded:
            label = _compact_label(label)
            size = image.nbytes + label.nbytes
            if _decoded_bytes + size <= DECODED_CACHE_BYTES:
                image.setflags(write=False)
                label.setflags(write=False)
                _DECODED[key] = (image, label)
                _decoded_bytes += size
        return image, label

    def __getitem__(self, position: int) -> dict[str, Any]:
        row = self.rows.iloc[position]
        image, label = self._decoded(row)
        if self.label_lookup is not None:
            label = self.label_lookup[label]
        # fresh, writable copies: the decoded arrays may be the cache's (read-only)
        image_tensor = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        mask = tv_tensors.Mask(torch.from_numpy(np.array(label, dtype=np.int64)))
        if self.transform is not None:
            image_tensor, mask = self.transform(image_tensor, mask)
        return {
            "image": image_tensor.as_subclass(torch.Tensor),
            "label": mask.as_subclass(torch.Tensor),
            "sample_id": row["sample_id"],
        }


def build_dataloader(
    index: pd.DataFrame,
    dataset: dict[str, Any],
    split: str,
    train: bool,
    batch_size: int,
    augmentation: dict[str, Any] | None = None,
    num_workers: int = 0,
    seed: int = 0,
    label_lookup: np.ndarray | None = None,
) -> DataLoader:
    """DataLoader over ``split`` of a prepared index; ``dataset`` is the ``dataset`` parameter block
    (family, root, reader_kwargs). Training loaders shuffle with a seeded generator and drop the
    last incomplete batch; evaluation loaders use batch size as given on whole images."""
    config = AugmentationConfig(**(augmentation or {}))
    reader = create_reader(dataset["family"], dataset["root"], **dataset.get("reader_kwargs", {}))
    torch_dataset = SegmentationDataset(
        index,
        split,
        dataset["family"],
        dataset["root"],
        dataset.get("reader_kwargs"),
        transform=build_transform(config, reader.ignore_index, train),
        label_lookup=label_lookup,
    )
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        torch_dataset,
        batch_size=batch_size,
        shuffle=train,
        drop_last=train and len(torch_dataset) >= batch_size,
        num_workers=num_workers,
        generator=generator,
        persistent_workers=num_workers > 0,
    )

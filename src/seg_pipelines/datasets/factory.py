"""``create_reader(family, root)``: the one way to build a dataset reader by name. Importing this
module registers every family (the real ones in :mod:`~seg_pipelines.datasets.readers`, the
synthetic world in :mod:`~seg_pipelines.datasets.synthetic.reader`) in
:data:`~seg_pipelines.datasets.base.READERS`."""

from __future__ import annotations

from pathlib import Path

from seg_pipelines.datasets import readers as _readers  # noqa: F401  (registers the real families)
from seg_pipelines.datasets.base import READERS, SegmentationReader
from seg_pipelines.datasets.synthetic import reader as _synthetic  # noqa: F401  (registers "synthetic")


def create_reader(family: str, root: str | Path, **kwargs) -> SegmentationReader:
    """Build the reader registered as ``family``; an unknown name lists the known ones."""
    if family not in READERS:
        raise KeyError(f"unknown dataset family {family!r}; known: {sorted(READERS)}")
    return READERS[family](root, **kwargs)

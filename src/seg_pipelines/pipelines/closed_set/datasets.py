"""Kedro dataset for segmentor checkpoints: ``torch.save`` (atomic) / ``torch.load(weights_only=True)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from seg_pipelines.engine.training import load_checkpoint, save_checkpoint


class TorchCheckpointDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """A dict of tensors and plain values (state dict + model config) in one ``.pt`` file.

    Loading never unpickles arbitrary objects (``weights_only=True``); a missing or corrupt file
    raises :class:`~seg_pipelines.engine.training.CheckpointError` naming it.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        return load_checkpoint(self._filepath)

    def save(self, data: dict[str, Any]) -> None:
        save_checkpoint(self._filepath, data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

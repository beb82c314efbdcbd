"""Kedro dataset types of the project (the catalog's ``type: seg_pipelines.pipelines.catalog_datasets.…``).

* :class:`TorchCheckpointDataset`: a segmentor checkpoint (state dict + model config) in one file.
* :class:`ModelFileDataset`: weights another stage loads by path (the tiny CLIP): saved as a state
  dict, loaded as the path of the verified file, so models keep loading through their own loaders
  (``load_clip``) while Kedro-Viz draws the edge from the stage that wrote them.
* :class:`OptionalJSONDataset`: JSON that may not exist yet (the attribute-selection prompt set):
  ``None`` until a pipeline writes it, so a pipeline that can use it runs without it.
* :class:`IndexParquetDataset`: the prepared index, with a Kedro-Viz preview of its list columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from seg_pipelines.engine.training import load_checkpoint, project_relative, save_checkpoint


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


class ModelFileDataset(AbstractDataset[Any, str]):
    """Weights in one file: ``save`` takes a module (its ``state_dict()``) or a state dict and writes it
    atomically; ``load`` returns the file's path relative to the project (``data/06_models/tiny_clip.pt``;
    Kedro hands datasets absolute paths), so the configs that record it survive a moved or copied
    project, after checking it exists, with ``produced_by`` in the error when it does not."""

    def __init__(self, filepath: str, produced_by: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = str(filepath)
        self._produced_by = produced_by
        self.metadata = metadata

    def load(self) -> str:
        if not Path(self._filepath).is_file():
            hint = f" (run the {self._produced_by} pipeline first)" if self._produced_by else ""
            raise DatasetError(f"model file not found: {self._filepath}{hint}")
        return project_relative(self._filepath)

    def save(self, data: Any) -> None:
        state = data.state_dict() if hasattr(data, "state_dict") else data
        if not isinstance(state, dict):
            raise DatasetError(f"{self._filepath}: expected a module or a state dict, got {type(data).__name__}")
        save_checkpoint(self._filepath, dict(state))

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "produced_by": self._produced_by}


class OptionalJSONDataset(JSONDataset):
    """A :class:`kedro_datasets.json.JSONDataset` whose ``load`` gives ``None`` while the file does
    not exist (a node decides whether it needs it and says so)."""

    def load(self) -> Any:
        return super().load() if self._exists() else None


class IndexParquetDataset(ParquetDataset):
    """The prepared index (:class:`kedro_datasets.pandas.ParquetDataset`) with a Kedro-Viz preview
    that serialises: its list columns (classes present, pixel counts) come back from Parquet as
    arrays, which the preview hands on as plain lists."""

    def preview(self, nrows: int = 5) -> dict[str, Any]:
        table = super().preview(nrows)
        table["data"] = [[_plain(value) for value in row] for row in table.get("data", [])]
        return table


def _plain(value: Any) -> Any:
    """An array cell as a list of Python numbers; other cells as they are."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value

"""The project's Kedro dataset types: the tiny-CLIP weights by path, the optional prompt set, the
prepared index's Kedro-Viz preview."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from kedro.io import DatasetError

from seg_pipelines.pipelines.catalog_datasets import IndexParquetDataset, ModelFileDataset, OptionalJSONDataset
from tests.fixtures import PROJECT_ROOT


def test_model_file_saves_a_state_dict_and_loads_its_path(tmp_path: Path):
    dataset = ModelFileDataset(str(tmp_path / "models" / "clip.pt"), produced_by="clip_pretraining")
    with pytest.raises(DatasetError, match="run the clip_pretraining pipeline first"):
        dataset.load()
    dataset.save(torch.nn.Linear(2, 3))
    path = dataset.load()
    assert path == str(tmp_path / "models" / "clip.pt")
    assert set(torch.load(path, weights_only=True)) == {"weight", "bias"}
    with pytest.raises(DatasetError, match="expected a module or a state dict"):
        dataset.save([1, 2])


def test_optional_json_is_none_until_written(tmp_path: Path):
    dataset = OptionalJSONDataset(filepath=str(tmp_path / "prompt_set.json"))
    assert dataset.load() is None
    dataset.save({"sky": "a blue sky"})
    assert dataset.load() == {"sky": "a blue sky"}


def test_index_preview_serialises_array_cells(tmp_path: Path):
    dataset = IndexParquetDataset(filepath=str(tmp_path / "index.parquet"))
    dataset.save(pd.DataFrame({"sample_id": ["a", "b"], "classes_present": [[0, 3], [1]], "pixels": [[10, 20], [5]]}))
    preview = dataset.preview(nrows=2)
    json.dumps(preview)  # what Kedro-Viz sends; numpy array cells used to fail here (HTTP 500)
    assert preview["data"][0] == ["a", [0, 3], [10, 20]]


def test_every_catalog_entry_says_what_it_holds():
    import yaml

    missing = []
    for path in sorted((PROJECT_ROOT / "conf/base").glob("catalog*.yml")):
        for name, entry in (yaml.safe_load(path.read_text()) or {}).items():
            description = ((entry or {}).get("metadata") or {}).get("description", "")
            if len(description.split()) < 4:
                missing.append(f"{path.name}:{name}")
    assert not missing, f"catalog entries without metadata.description: {missing}"

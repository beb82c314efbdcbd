"""Bad weight files, wherever a user can point one (a segmentor checkpoint, a backbone
``pretrained_path``, a CLIP or SAM checkpoint): a clear error of a known type that names the file,
and never code run from a pickle."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from seg_pipelines.engine.training import load_checkpoint
from seg_pipelines.models.backbones import PretrainedWeightsError, create_backbone
from seg_pipelines.models.checkpoints import CheckpointError, read_checkpoint
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, load_clip
from seg_pipelines.models.ovss.sam import build_sam_image_encoder


class RunsCode:
    """Unpickling this would run a shell command (a code-running pickle)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(2048))


def _text(path: Path) -> None:
    path.write_text("not a checkpoint, just text\n")


def _code_running_pickle(path: Path) -> None:
    torch.save({"weight": torch.zeros(2), "payload": RunsCode(path.with_suffix(".ran"))}, path)


def _truncated(path: Path) -> None:
    torch.save({"weight": torch.zeros(64, 64)}, path)
    path.write_bytes(path.read_bytes()[:300])


def _zip_without_data(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/readme.txt", "a zip, not a torch checkpoint")


BAD_FILES: dict[str, Callable[[Path], None]] = {
    "empty": _empty,
    "garbage": _garbage,
    "text": _text,
    "code-running pickle": _code_running_pickle,
    "truncated": _truncated,
    "zip without tensors": _zip_without_data,
}

LOADERS: dict[str, tuple[Callable[[Path], object], type[Exception]]] = {
    "read_checkpoint": (lambda path: read_checkpoint(path), CheckpointError),
    "segmentor checkpoint": (lambda path: load_checkpoint(path), CheckpointError),
    "backbone pretrained_path": (
        lambda path: create_backbone("resnet_tiny", pretrained_path=path),
        PretrainedWeightsError,
    ),
    "CLIP checkpoint": (lambda path: load_clip(TINY_CLIP_NAME, str(path), image_size=32), CheckpointError),
    "SAM checkpoint": (lambda path: build_sam_image_encoder("tiny", image_size=32, checkpoint=path), CheckpointError),
}


@pytest.mark.parametrize("bad", list(BAD_FILES))
@pytest.mark.parametrize("loader", list(LOADERS))
def test_bad_weight_files_give_a_named_error_and_run_no_code(loader: str, bad: str, tmp_path: Path):
    path = tmp_path / "weights.pt"
    BAD_FILES[bad](path)
    load, error_type = LOADERS[loader]
    with pytest.raises(error_type) as error:
        load(path)
    assert str(path) in str(error.value)
    if bad == "code-running pickle":
        assert "weights_only" in str(error.value)
        assert not path.with_suffix(".ran").exists(), "the pickle's code ran"


@pytest.mark.parametrize("loader", ["read_checkpoint", "segmentor checkpoint", "backbone pretrained_path"])
def test_missing_weight_files_are_named(loader: str, tmp_path: Path):
    path = tmp_path / "nowhere" / "weights.pt"
    load, error_type = LOADERS[loader]
    with pytest.raises(error_type, match="not found"):
        load(path)

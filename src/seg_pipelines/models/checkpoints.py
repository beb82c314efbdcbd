"""Reading weight files safely, with errors that name the file: the one loader behind segmentor
checkpoints (``engine.training.load_checkpoint``), backbone ``pretrained_path``, CLIP and SAM
checkpoints. ``torch.load(weights_only=True)`` never runs code from a pickle; a file that would
(or is no checkpoint at all) gives a :class:`CheckpointError` saying so."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not match the model."""


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """The content of the torch (or ``.safetensors``) file ``path``, on the CPU, loaded without
    running code (``weights_only=True``). Raises :class:`CheckpointError` naming ``what`` and the
    path when the file is missing, empty, not a checkpoint, or a pickle that wants to run code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path} is an empty file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        text = str(error)
        unsafe = re.search(r"(?:Unsupported global: |unsupported )GLOBAL ([\w.]+)", text)
        if unsafe:  # a pickle that names a callable to run on load (torch refuses it under weights_only)
            message = (
                f"{what} {path} holds Python objects whose loading would run code "
                f"({unsafe.group(1)}; refused: weights_only)"
            )
        else:
            message = f"corrupt or unreadable {what} {path}: not a torch checkpoint ({type(error).__name__})"
        raise CheckpointError(message) from error

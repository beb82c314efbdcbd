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


# --------------------------------------------------------------------------- state dicts from elsewhere

#: Wrappers other tools put around a state dict: MMSegmentation/mmengine (``state_dict`` next to
#: ``meta``), detectron2 and many repos (``model``), DDP saves (``module``).
STATE_DICT_WRAPPERS = ("state_dict", "model", "module")

# open-mmlab ResNetV1c deep stem -> timm's (``stem.{0,1,3,4,6,7}`` -> ``conv1.*`` / ``bn1``)
_MMSEG_STEM = {
    "stem.0.": "conv1.0.",
    "stem.1.": "conv1.1.",
    "stem.3.": "conv1.3.",
    "stem.4.": "conv1.4.",
    "stem.6.": "conv1.6.",
    "stem.7.": "bn1.",
}
_CONV_MODULE_PARTS = ((".conv.", ".0."), (".bn.", ".1."))  # mmcv ConvModule -> our Sequential(conv, bn, act)


def unwrap_state_dict(checkpoint: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of ``checkpoint``, unwrapping :data:`STATE_DICT_WRAPPERS` and a leading
    ``module.`` (DDP) on every key. Raises :class:`CheckpointError` when no state dict is found."""
    for wrapper in STATE_DICT_WRAPPERS:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, dict) or not any(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        found = sorted(map(str, checkpoint))[:10] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{source} holds no state dict (found {found})")
    state = {str(k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def mmseg_resnet_key(key: str) -> str:
    """open-mmlab ResNetV1c key -> timm key (``backbone.``/``module.`` prefixes dropped, deep stem renamed;
    the residual stages already share timm's names)."""
    for prefix in ("backbone.", "module."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    for old, new in _MMSEG_STEM.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def mmseg_class_names(checkpoint: Any) -> list[str] | None:
    """Class names an MMSegmentation checkpoint records (``meta.CLASSES`` in 0.x,
    ``meta.dataset_meta.classes`` in 1.x), or ``None``."""
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    names = meta.get("CLASSES") or (meta.get("dataset_meta") or {}).get("classes")
    return [str(name) for name in names] if names else None


def is_mmseg_segmentor_state(state: dict[str, torch.Tensor]) -> bool:
    """True when ``state`` looks like an MMSeg ``EncoderDecoder``'s (``decode_head.conv_seg`` and an
    MMSeg-style backbone or ConvModule key)."""
    return "decode_head.conv_seg.weight" in state and any(
        k.startswith("backbone.stem.") or ".conv.weight" in k or ".bn.weight" in k for k in state
    )


def convert_mmseg_segmentor_state(
    state: dict[str, torch.Tensor], own_keys: Any
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """MMSegmentation ``EncoderDecoder`` keys -> this project's :class:`EncoderDecoder` keys.

    ``backbone.<mmseg ResNet>`` -> ``backbone.model.<timm>`` (:func:`mmseg_resnet_key`);
    ``decode_head.`` / ``auxiliary_head.`` keep their prefix, with mmcv ``ConvModule`` parts
    ``.conv.`` / ``.bn.`` -> ``.0.`` / ``.1.`` where the renamed key exists in ``own_keys`` (a key
    that matches neither stays as it is and is reported as unexpected by the loader).
    Returns the converted state and the renaming applied ``{mmseg key: our key}``.
    """
    own = set(own_keys)
    converted: dict[str, torch.Tensor] = {}
    renamed: dict[str, str] = {}
    for key, value in state.items():
        candidates = [key]
        if key.startswith("backbone.") and not key.startswith("backbone.model."):
            candidates.insert(0, "backbone.model." + mmseg_resnet_key(key))
        if key.startswith(("decode_head.", "auxiliary_head.")):
            renamed_key = key
            for old, new in _CONV_MODULE_PARTS:
                renamed_key = renamed_key.replace(old, new)
            candidates.insert(0, renamed_key)
        target = next((c for c in candidates if c in own), candidates[0])
        converted[target] = value
        if target != key:
            renamed[key] = target
    return converted, renamed


class KeyMismatch:
    """Missing / unexpected keys and shape mismatches between a model and a state dict."""

    def __init__(self, own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
        self.missing = sorted(set(own) - set(state))
        self.unexpected = sorted(set(state) - set(own))
        self.mismatched = [
            f"{k}: {tuple(state[k].shape)} in the checkpoint, {tuple(v.shape)} in the model"
            for k, v in own.items()
            if k in state and tuple(state[k].shape) != tuple(v.shape)
        ]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 10) -> str:
        parts = []
        for label, keys in (
            ("missing keys", self.missing),
            ("unexpected keys", self.unexpected),
            ("shape mismatches", self.mismatched),
        ):
            if keys:
                more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:limit])}{more}")
        return "; ".join(parts) or "keys match"


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict load of ``state`` into ``model``; on any mismatch a :class:`CheckpointError` listing the
    missing and unexpected keys and the shape mismatches (the first 10 of each)."""
    report = KeyMismatch(model.state_dict(), state)
    if not report.ok:
        raise CheckpointError(f"{source} does not match the model: {report.describe()}")
    model.load_state_dict(state)

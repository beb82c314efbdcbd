"""Checkpoints from outside the project (synthetic state dicts in the foreign layouts): MMSegmentation
``EncoderDecoder`` for every head, open_clip training checkpoints, segment_anything full-model files;
a mismatch lists the missing / unexpected keys."""

from __future__ import annotations

import pytest
import torch

from seg_pipelines.experiments.closed_set import build_segmentor
from seg_pipelines.models.checkpoints import (
    CheckpointError,
    KeyMismatch,
    convert_mmseg_segmentor_state,
    is_mmseg_segmentor_state,
    load_state_dict_checked,
    mmseg_class_names,
    unwrap_state_dict,
)
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, clip_state_dict, load_clip
from seg_pipelines.models.ovss.sam import SAMImageEncoder
from seg_pipelines.models.segmentor import CLOSED_SET_MODELS
from tests.fixtures.checkpoints import mmseg_state_dict as _mmseg_state


def test_unwrap_state_dict_handles_the_common_wrappers():
    tensors = {"a.weight": torch.ones(2), "b.bias": torch.zeros(1)}
    assert unwrap_state_dict({"meta": {"CLASSES": ["x"]}, "state_dict": tensors}) == tensors
    assert unwrap_state_dict({"model": tensors, "iteration": 3}) == tensors
    ddp = {f"module.{k}": v for k, v in tensors.items()}
    assert unwrap_state_dict({"state_dict": ddp}) == tensors
    with pytest.raises(CheckpointError, match="x.pt holds no state dict"):
        unwrap_state_dict({"epoch": 3, "name": "run"}, "x.pt")
    assert mmseg_class_names({"meta": {"dataset_meta": {"classes": ("sky", "road")}}}) == ["sky", "road"]
    assert mmseg_class_names({"state_dict": tensors}) is None


@pytest.mark.parametrize("head", CLOSED_SET_MODELS)
def test_mmseg_encoder_decoder_keys_map_onto_every_head(head):
    torch.manual_seed(0)
    ours = build_segmentor({"name": head, "num_classes": 3, "backbone": "resnet_tiny", "channels": 16})
    mmseg = _mmseg_state(ours)
    assert is_mmseg_segmentor_state(mmseg)
    converted, renamed = convert_mmseg_segmentor_state(mmseg, ours.state_dict())
    assert KeyMismatch(ours.state_dict(), converted).ok, KeyMismatch(ours.state_dict(), converted).describe()
    assert renamed and all(torch.equal(converted[k], v) for k, v in ours.state_dict().items())


def test_key_mismatch_report_names_keys_and_shapes():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    state = dict(model.state_dict())
    state["0.weight"] = torch.zeros(4, 2)
    del state["1.bias"]
    state["2.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        load_state_dict_checked(model, state, "foreign.pth")
    message = str(error.value)
    assert "foreign.pth does not match the model" in message
    assert "1 missing keys: 1.bias" in message and "1 unexpected keys: 2.weight" in message
    assert "0.weight: (4, 2) in the checkpoint, (3, 2) in the model" in message


def test_open_clip_training_checkpoint_loads(tmp_path):
    """open_clip's own training loop saves ``{"epoch", "name", "state_dict": {"module.*"}}``."""
    torch.manual_seed(0)
    source = load_clip(TINY_CLIP_NAME, None)
    state = {f"module.{k}": v for k, v in clip_state_dict(source).items()}
    path = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "name": "tiny", "state_dict": state}, path)
    loaded = load_clip(TINY_CLIP_NAME, str(path))
    for key, value in clip_state_dict(source).items():
        assert torch.equal(clip_state_dict(loaded)[key], value), key


def test_segment_anything_full_checkpoint_loads_and_a_wrong_one_lists_keys(tmp_path):
    torch.manual_seed(0)
    reference = SAMImageEncoder("tiny", image_size=64)
    full = {f"image_encoder.{k}": v for k, v in reference.encoder.state_dict().items()}
    full.update({"prompt_encoder.point_embeddings.0.weight": torch.zeros(1, 8), "mask_decoder.x": torch.zeros(1)})
    path = tmp_path / "sam_tiny.pth"
    torch.save(full, path)
    loaded = SAMImageEncoder("tiny", image_size=64, checkpoint=path)
    for key, value in reference.encoder.state_dict().items():
        assert torch.equal(loaded.encoder.state_dict()[key], value), key
    del full["image_encoder.blocks.0.attn.qkv.weight"]
    torch.save({"model": full}, path)
    with pytest.raises(RuntimeError, match=r"missing \['blocks.0.attn.qkv.weight'\]"):
        SAMImageEncoder("tiny", image_size=64, checkpoint=path)

"""The fused upsampled CE equals ``F.cross_entropy(F.interpolate(...))`` in value and gradient; the
segmentor's loss from head-resolution logits equals its loss from upsampled ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.engine.runtime import keep_freed_cpu_memory
from seg_pipelines.engine.training import default_loss
from seg_pipelines.losses.cross_entropy import bilinear_matrix, upsampled_cross_entropy
from seg_pipelines.models.factory import create_model


def _reference(logits, target, weight, ignore_index, align_corners):
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=align_corners)
    return F.cross_entropy(up, target, weight=weight, ignore_index=ignore_index)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_value_and_gradient_equal_the_two_step_loss(align_corners, weighted):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 5, 6, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 7, (3, 37, 43), generator=generator)
    target[:, :9] = 255
    target[1] = 255  # one image entirely ignored
    weight = torch.rand(7, generator=generator, dtype=torch.float64) + 0.1 if weighted else None
    fused_input = logits.clone().requires_grad_()
    reference_input = logits.clone().requires_grad_()
    with torch.autocast("cpu", enabled=False):
        fused = upsampled_cross_entropy(fused_input, target, weight, 255, align_corners)
    reference = _reference(
        reference_input.float(), target, None if weight is None else weight.float(), 255, align_corners
    )
    fused.backward()
    reference.backward()
    torch.testing.assert_close(fused.double(), reference.double(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused_input.grad, reference_input.grad, rtol=1e-4, atol=1e-7)
    assert float(fused.detach()) > 0


def test_bilinear_matrix_resizes_as_interpolate():
    x = torch.randn(2, 3, 5, 7)
    for align_corners in (False, True):
        rows, cols = bilinear_matrix(5, 19, align_corners), bilinear_matrix(7, 23, align_corners)
        expected = F.interpolate(x, size=(19, 23), mode="bilinear", align_corners=align_corners)
        torch.testing.assert_close(rows @ x @ cols.T, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rows.sum(1), torch.ones(19))


def test_all_ignored_is_zero_and_shapes_are_checked():
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    loss = upsampled_cross_entropy(logits, torch.full((2, 12, 12), 255))
    loss.backward()
    assert float(loss) == 0.0 and float(logits.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="target"):
        upsampled_cross_entropy(logits, torch.zeros(12, 12, dtype=torch.long))


def test_a_second_backward_pass_is_refused():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = upsampled_cross_entropy(logits, torch.zeros(1, 8, 8, dtype=torch.long))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward pass"):
        loss.backward()


@pytest.mark.parametrize("addon", [None, "caa"])
def test_segmentor_loss_and_gradients_match_the_upsampled_path(addon):
    """``default_loss`` (head-resolution logits, fused CE) gives the segmentor's loss terms and
    gradients of the old path (logits upsampled in forward, then ``F.cross_entropy``)."""
    tiny = {"backbone": "resnet_tiny", "channels": 16, "aux_channels": 8}
    cfg = {"addon": addon, "addon_cfg": {"channels": 16, "affinity_channels": 8}} if addon else {}
    torch.manual_seed(0)
    model = create_model("fcn", num_classes=6, **tiny, **cfg).train()
    model.decode_head.dropout = torch.nn.Identity()
    model.auxiliary_head.dropout = torch.nn.Identity()
    if addon:
        model.addon.dropout = torch.nn.Identity()
    images = torch.randn(2, 3, 40, 48)
    target = torch.randint(0, 6, (2, 40, 48))
    target[:, :5] = 255
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def run(loss_of):
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        losses = loss_of()
        losses["loss"].backward()
        return {k: float(v) for k, v in losses.items()}, {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }

    old_losses, old_grads = run(lambda: model.losses(model(images, target), target))
    new_losses, new_grads = run(lambda: default_loss(model, {"image": images, "label": target}, 0))
    assert model(images, target, upsample=False)["logits"].shape[-2:] == (5, 6)  # stride 8
    assert old_losses.keys() == new_losses.keys() and "loss_aux" in new_losses
    for key, value in old_losses.items():
        assert new_losses[key] == pytest.approx(value, rel=1e-5), key
    assert old_grads.keys() == new_grads.keys()
    for name, grad in old_grads.items():
        torch.testing.assert_close(new_grads[name], grad, rtol=1e-3, atol=1e-6, msg=name)


def test_keep_freed_cpu_memory_is_idempotent_and_can_be_turned_off(monkeypatch):
    assert keep_freed_cpu_memory() is keep_freed_cpu_memory()
    monkeypatch.setenv("SEG_PIPELINES_KEEP_FREED_MEMORY", "0")
    assert keep_freed_cpu_memory() is False

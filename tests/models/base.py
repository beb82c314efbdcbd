"""Shared checks for every closed-set segmentor (decode head, optionally with an add-on).

A subclass names a model through :meth:`BaseSegmentationModelTester.build` (tiny widths on the
``resnet_tiny`` backbone, CPU, float32) and declares what is particular to it; every ``test_*``
below then runs against it:

    class TestFCN(BaseSegmentationModelTester):
        expected_loss_terms = frozenset({"loss_ce", "loss_aux", "loss"})

        def build(self, num_classes):
            return create_model("fcn", num_classes=num_classes, **TINY)

The model is an :class:`~seg_pipelines.models.segmentor.EncoderDecoder` (or has its surface):
``model(images, target=None) -> {"logits": (N, K, H, W), ...}`` at the input size, ``losses()``
as ``engine.training.default_loss`` calls it, ``extract_features`` and ``decode_head``.

The class name has no ``Test`` prefix, so pytest collects only the subclasses. Exceptions to a
check are class attributes with the reason as the value (``params_without_grad``,
``params_with_zero_grad``, ``training_state_buffers``) and are asserted, not skipped: a pattern
that no longer matches a parameter, or a parameter that starts to get a gradient, fails the test.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Mapping
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from seg_pipelines.engine.training import default_loss

IGNORE_INDEX = 255
ODD_SIZES = [(67, 93), (41, 33)]
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def random_batch(
    num_classes: int, batch_size: int = 2, height: int = 64, width: int = 64, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Images (N, 3, H, W) and labels (N, H, W): 8x8 blocks of random classes, each class a colour
    plus noise, the first 4 rows ignored (``IGNORE_INDEX``)."""
    generator = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, num_classes, (batch_size, -(-height // 8), -(-width // 8)), generator=generator)
    target = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, :height, :width].contiguous()
    palette = torch.randn(num_classes, 3, generator=generator)
    images = palette[target].permute(0, 3, 1, 2) + 0.1 * torch.randn(batch_size, 3, height, width, generator=generator)
    target[:, :4] = IGNORE_INDEX
    return images.contiguous(), target


def _matches(name: str, patterns: Mapping[str, str]) -> bool:
    return any(re.fullmatch(pattern, name) for pattern in patterns)


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _batch_norm_buffers(model: nn.Module) -> set[str]:
    """Names of the running statistics (and ``num_batches_tracked``) of every BatchNorm."""
    return {
        f"{module_name}.{buffer_name}" if module_name else buffer_name
        for module_name, module in model.named_modules()
        if isinstance(module, _BATCH_NORMS)
        for buffer_name, _ in module.named_buffers(recurse=False)
    }


class BaseSegmentationModelTester:
    """Checks every closed-set segmentor must pass; subclasses implement :meth:`build`.

    Attributes a subclass sets:
        expected_loss_terms: the keys of the training loss dict (``"loss"`` is their sum).
        inference_keys: the keys of an eval-mode forward without a target.
        head_feature_stride: stride of the decode head features the classifier (or add-on) runs
            on: the last level's for single-level heads, the finest level's (4) for UperNet and
            DeepLabV3+ (see :func:`~seg_pipelines.models.heads.default_feature_strides`).
        params_without_grad: regex (full match on the parameter name) -> why the training loss
            never reaches it; its ``.grad`` must stay ``None``.
        params_with_zero_grad: regex -> why its gradient is exactly zero at initialisation (it
            must still be a finite tensor).
        training_state_buffers: regex -> why a training forward updates this buffer (BatchNorm
            statistics are always allowed); each must match a buffer and change.
    """

    num_classes = 5
    batch_size = 2
    height = 64
    width = 64

    expected_loss_terms: frozenset[str] = frozenset()
    inference_keys: frozenset[str] = frozenset({"logits"})
    head_feature_stride: int = 8
    params_without_grad: Mapping[str, str] = {}
    params_with_zero_grad: Mapping[str, str] = {}
    training_state_buffers: Mapping[str, str] = {}

    # ---- what a subclass provides -------------------------------------------------------------

    def build(self, num_classes: int) -> nn.Module:
        """A tiny model (tiny backbone and widths) with ``num_classes`` outputs."""
        raise NotImplementedError

    # ---- helpers ------------------------------------------------------------------------------

    def make_model(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        model = self.build(self.num_classes)
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            assert tensor.device.type == "cpu", name
            assert not tensor.is_floating_point() or tensor.dtype == torch.float32, (name, tensor.dtype)
        return model

    def make_batch(self, height: int | None = None, width: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
        return random_batch(self.num_classes, self.batch_size, height or self.height, width or self.width, seed)

    def training_losses(self, model: nn.Module, images: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The loss the training loop optimises (``engine.training.default_loss``)."""
        return default_loss(model, {"image": images, "label": target}, 0)

    def training_step(self, model: nn.Module, images: Tensor, target: Tensor) -> None:
        """One SGD step: moves the weights, BatchNorm statistics and any add-on state."""
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        loss = self.training_losses(model, images, target)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def assert_logits_at_input_size(self, outputs: Mapping[str, Any], height: int, width: int) -> None:
        logits = outputs["logits"]
        assert logits.shape == (self.batch_size, self.num_classes, height, width)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()

    # ---- the checks ---------------------------------------------------------------------------

    def test_declarations_match_the_model(self):
        """Every documented exception names something that exists (no stale regexes)."""
        model = self.make_model()
        parameters = [name for name, _ in model.named_parameters()]
        buffers = [name for name, _ in model.named_buffers()]
        for patterns, names in [
            (self.params_without_grad, parameters),
            (self.params_with_zero_grad, parameters),
            (self.training_state_buffers, buffers),
        ]:
            for pattern in patterns:
                assert any(re.fullmatch(pattern, name) for name in names), f"{pattern!r} matches nothing"
        assert "loss" in self.expected_loss_terms

    def test_forward_gives_finite_logits_at_input_size(self):
        model = self.make_model().eval()
        images, _ = self.make_batch()
        with torch.no_grad():
            outputs = model(images)
        assert set(outputs) == self.inference_keys
        self.assert_logits_at_input_size(outputs, self.height, self.width)

    @pytest.mark.parametrize(("height", "width"), [(64, 64), *ODD_SIZES])
    def test_head_features_at_documented_stride(self, height, width):
        """The classifier / add-on runs at ``head_feature_stride`` (ceil division at odd sizes);
        the segmentor upsamples its logits to the input."""
        model = self.make_model().eval()
        images, _ = self.make_batch(height, width)
        with torch.no_grad():
            features, _ = model.decode_head.forward_features_with_extras(model.extract_features(images))
        stride = self.head_feature_stride
        expected = (self.batch_size, model.decode_head.channels, -(-height // stride), -(-width // stride))
        assert features.shape == expected

    def check_gradients(self, model: nn.Module, *, at_init: bool) -> None:
        """Every trainable parameter has a finite gradient, nonzero unless ``at_init`` and
        documented in ``params_with_zero_grad``; ``params_without_grad`` have none."""
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            if _matches(name, self.params_without_grad):
                assert parameter.grad is None, f"{name} is documented as unused but got a gradient"
                continue
            assert parameter.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
            is_zero = bool((parameter.grad == 0).all())
            if at_init and _matches(name, self.params_with_zero_grad):
                assert is_zero, f"{name} is documented to have a zero gradient at init but has a nonzero one"
            else:
                assert not is_zero, f"{name} got an all-zero gradient" + (" after one step" * (not at_init))

    def test_backward_gives_finite_loss_and_gradients(self):
        model = self.make_model().train()
        images, target = self.make_batch()
        outputs = model(images, target)
        self.assert_logits_at_input_size(outputs, self.height, self.width)
        for name, value in outputs.items():  # auxiliary / extra logits are upsampled too
            if name.endswith("logits"):
                assert value.shape == outputs["logits"].shape, name

        losses = self.training_losses(model, images, target)
        assert set(losses) == self.expected_loss_terms
        for name, value in losses.items():
            assert value.ndim == 0 and torch.isfinite(value), name
        terms = [value for name, value in losses.items() if name != "loss"]
        torch.testing.assert_close(losses["loss"], torch.stack(terms).sum())
        losses["loss"].backward()
        self.check_gradients(model, at_init=True)

        # zero-initialised gates (params_with_zero_grad) open after one step: then every
        # parameter the loss reaches gets a nonzero gradient
        torch.optim.SGD(model.parameters(), lr=0.05).step()
        model.zero_grad(set_to_none=True)
        self.training_losses(model, images, target)["loss"].backward()
        self.check_gradients(model, at_init=False)

    @pytest.mark.parametrize(("height", "width"), ODD_SIZES)
    def test_odd_input_size(self, height, width):
        model = self.make_model()
        images, target = self.make_batch(height, width)
        model.train()
        losses = self.training_losses(model, images, target)
        assert all(torch.isfinite(value) for value in losses.values())
        model.eval()
        with torch.no_grad():
            outputs = model(images)
        self.assert_logits_at_input_size(outputs, height, width)

    def test_state_dict_round_trip(self):
        """Weights, BatchNorm statistics and add-on buffers, after a training step, survive
        ``torch.save`` / ``torch.load(weights_only=True)`` into a model built from another seed."""
        model = self.make_model(seed=0)
        images, target = self.make_batch()
        self.training_step(model, images, target)
        model.eval()
        with torch.no_grad():
            expected = model(images)["logits"]

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        restored = self.make_model(seed=1).eval()
        with torch.no_grad():
            assert not torch.equal(restored(images)["logits"], expected)  # the check below is not vacuous
        restored.load_state_dict(torch.load(buffer, weights_only=True))  # strict: same keys and shapes
        with torch.no_grad():
            actual = restored(images)["logits"]
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)

    def test_eval_forward_is_deterministic(self):
        model = self.make_model()
        images, target = self.make_batch()
        self.training_step(model, images, target)  # non-trivial BatchNorm statistics and add-on state
        model.eval()
        with torch.no_grad():
            first = model(images)["logits"]
            second = model(images)["logits"]
        with_grad = model(images)["logits"]
        torch.testing.assert_close(second, first, rtol=0, atol=0)
        torch.testing.assert_close(with_grad.detach(), first, rtol=0, atol=0)

    def test_eval_forward_leaves_state_untouched(self):
        """Neither inference nor a validation forward with labels changes parameters or buffers."""
        model = self.make_model()
        images, target = self.make_batch()
        self.training_step(model, images, target)
        model.eval()
        before = _snapshot(model)
        with torch.no_grad():
            model(images)
            model(images, target)
        after = model.state_dict()
        changed = [name for name, value in before.items() if not torch.equal(value, after[name])]
        assert changed == []

    def test_training_forward_updates_only_expected_state(self):
        """A training forward only moves BatchNorm statistics and the declared
        ``training_state_buffers`` (each of which must move); parameters stay put."""
        model = self.make_model().train()
        images, target = self.make_batch()
        before = _snapshot(model)
        model(images, target)
        after = model.state_dict()
        changed = {name for name, value in before.items() if not torch.equal(value, after[name])}
        allowed = _batch_norm_buffers(model)
        unexpected = sorted(name for name in changed - allowed if not _matches(name, self.training_state_buffers))
        assert unexpected == []
        for pattern in self.training_state_buffers:
            assert any(re.fullmatch(pattern, name) for name in changed), f"{pattern!r} did not change"

    def test_training_forward_repeats_unless_stateful(self):
        """With the same seed, a training forward gives the same logits on a copy of the model;
        on the same model again only if it keeps no training state (``training_state_buffers``)."""
        model = self.make_model().train()
        twin = copy.deepcopy(model)
        images, target = self.make_batch()
        torch.manual_seed(7)
        first = model(images, target)["logits"]
        torch.manual_seed(7)
        on_twin = twin(images, target)["logits"]
        torch.manual_seed(7)
        again = model(images, target)["logits"]
        torch.testing.assert_close(on_twin, first, rtol=0, atol=0)
        if self.training_state_buffers:
            assert not torch.equal(again, first), "declared training state did not change the next forward"
        else:
            torch.testing.assert_close(again, first, rtol=0, atol=0)


__all__ = ["BaseSegmentationModelTester", "IGNORE_INDEX", "ODD_SIZES", "random_batch"]

"""``engine.onnx_export``: dynamic height and width, metadata, and what cannot be exported named by module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from seg_pipelines.engine.onnx_export import (
    OnnxExportError,
    OnnxSegmentor,
    export_onnx,
    locate_unexportable_module,
    read_onnx_metadata,
)


@torch.library.custom_op("seg_pipelines_test::glow", mutates_args=())
def glow(x: torch.Tensor) -> torch.Tensor:
    """An op with no ONNX translation (a custom kernel, as a compiled extension would bring)."""
    return x * 2


@glow.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Glow(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glow(x)


class BrightOnly(nn.Module):
    """A Python branch on a tensor value: the graph's shape and path depend on the data."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0.5:
            return x * 2
        return x


class TinyNet(nn.Module):
    def __init__(self, tail: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(nn.ReLU(), tail)
        self.classifier = nn.Conv2d(4, 5, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(self.stem(images)))


def test_height_and_width_stay_dynamic_and_metadata_is_kept(tmp_path):
    torch.manual_seed(0)
    network = TinyNet(nn.Identity()).eval()
    path = export_onnx(network, torch.rand(1, 3, 20, 30), tmp_path / "net.onnx", metadata={"class_names": '["a"]'})
    assert read_onnx_metadata(path) == {"class_names": '["a"]'}
    runtime = OnnxSegmentor(path, num_threads=1)
    assert runtime.num_classes == 5 and runtime.metadata["class_names"] == '["a"]'
    for height, width in [(67, 93), (5, 3), (128, 40)]:
        images = torch.rand(1, 3, height, width)
        with torch.no_grad():
            expected = network(images)
        got = runtime(images)["logits"]
        assert got.shape == (1, 5, height, width)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    ("tail", "cause"),
    [(Glow(), "No ONNX function found for .*seg_pipelines_test.glow"), (BrightOnly(), "data-dependent")],
)
def test_what_cannot_be_exported_names_the_module(tmp_path, tail, cause):
    network = TinyNet(tail).eval()
    name = type(tail).__name__
    with pytest.raises(
        OnnxExportError, match=rf"tiny net cannot be exported to ONNX: module 'body\.1' \({name}\): .*{cause}"
    ):
        export_onnx(network, torch.rand(1, 3, 20, 30), tmp_path / "bad.onnx", name="tiny net")
    assert not (tmp_path / "bad.onnx").exists()


def test_an_error_outside_any_submodule_is_not_pinned_to_one():
    assert locate_unexportable_module(TinyNet(nn.Identity()), ValueError("elsewhere")) is None


def test_a_size_fixed_by_the_code_is_an_error(tmp_path):
    class FixedSize(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(1, 3, 20, 30) * 2  # the traced size written into the graph

    with pytest.raises(
        OnnxExportError, match=r"does not run at another size 29x41 \(height and width must stay dynamic"
    ):
        export_onnx(FixedSize(), torch.rand(1, 3, 20, 30), tmp_path / "fixed.onnx")

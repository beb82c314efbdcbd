"""Images that are not 8-bit RGB: 16-bit greyscale PNGs are scaled to 8 bits, not clipped to 255."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg_pipelines.datasets.base import DatasetError, read_image_rgb


def test_sixteen_bit_image_is_scaled_not_clipped(tmp_path: Path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    image = read_image_rgb(path)
    assert image.dtype == np.uint8 and image.shape == (1, 4, 3)
    assert image[0, :, 0].tolist() == [0, 1, 128, 255] and (image[..., 0] == image[..., 2]).all()


def test_eight_bit_images_are_unchanged(tmp_path: Path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    assert np.array_equal(read_image_rgb(path), rgb)


def test_thirty_two_bit_values_beyond_sixteen_bits_are_named(tmp_path: Path):
    path = tmp_path / "wide.tif"
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(path)
    with pytest.raises(DatasetError, match="wide.tif"):
        read_image_rgb(path)

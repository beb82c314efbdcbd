"""DataLoader factory: augmentation keeps image and mask aligned, pads with the ignore value."""

import numpy as np
import pytest
import torch
from PIL import Image

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import build_index
from seg_pipelines.datasets.loaders import build_dataloader
from tests.fixtures.layouts import ade_object_info_text

COLOURS = np.array([[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]], dtype=np.uint8)


def _write_colour_coded_ade(root, n=6, size=(40, 56)):
    """Images whose pixel colour tells the class, so alignment can be checked after augmentation."""
    dataset = root / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    for split, folder in (("train", "training"), ("val", "validation")):
        (dataset / "images" / folder).mkdir(parents=True)
        (dataset / "annotations" / folder).mkdir(parents=True)
        for number in range(1, n + 1):
            label = np.zeros(size, np.uint8)
            for _ in range(5):
                y, x = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
                label[y : y + rng.integers(6, 20), x : x + rng.integers(6, 20)] = rng.integers(0, 4)
            stem = f"ADE_{split}_{number:08d}"
            Image.fromarray(COLOURS[label]).save(
                dataset / "images" / folder / f"{stem}.png".replace(".png", ".jpg"), quality=100, subsampling=0
            )
            Image.fromarray(label + 1).save(dataset / "annotations" / folder / f"{stem}.png")
    (dataset / "objectInfo150.txt").write_text(ade_object_info_text(["red", "green", "blue", "yellow"]))
    return root


@pytest.fixture
def prepared(tmp_path):
    root = _write_colour_coded_ade(tmp_path / "ade")
    reader = create_reader("ade20k_150", root)
    index, _ = build_index(reader, ["train", "val"], show_progress=False)
    return index, {"family": "ade20k_150", "root": str(root), "reader_kwargs": {}}


def _decode_colours(images):
    """Nearest palette colour of de-normalised images (B,3,H,W) → class ids (B,H,W)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    rgb = (images * std + mean) * 255
    distances = ((rgb.unsqueeze(1) - torch.tensor(COLOURS, dtype=torch.float32).view(1, 4, 3, 1, 1)) ** 2).sum(2)
    return distances.argmin(1)


def test_training_augmentation_keeps_mask_aligned(prepared):
    index, dataset = prepared
    augmentation = {"crop_size": [48, 48], "base_size": [40, 56], "scale_range": [0.5, 2.0], "photometric": {}}
    loader = build_dataloader(index, dataset, "train", train=True, batch_size=3, augmentation=augmentation, seed=1)
    agreements, padded = [], 0
    torch.manual_seed(0)
    for _ in range(4):
        for batch in loader:
            assert batch["image"].shape == (3, 3, 48, 48) and batch["label"].shape == (3, 48, 48)
            assert batch["label"].dtype == torch.int64
            valid = batch["label"] != 255
            padded += int((~valid).sum())
            decoded = _decode_colours(batch["image"])
            agreements.append(float((decoded[valid] == batch["label"][valid]).float().mean()))
    assert min(agreements) > 0.9, agreements  # only bilinear edge pixels may disagree
    assert padded > 0, "small rescales must pad the crop with the ignore value"


def test_evaluation_loader_is_whole_image_and_exact(prepared):
    index, dataset = prepared
    loader = build_dataloader(index, dataset, "val", train=False, batch_size=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, 40, 56)
    assert float((_decode_colours(batch["image"]) == batch["label"]).float().mean()) > 0.99


def test_label_lookup_remaps_classes(prepared):
    index, dataset = prepared
    lookup = np.full(256, 255, dtype=np.int64)
    lookup[[0, 1, 2, 3]] = [0, 0, 1, 255]  # merge red+green, drop yellow
    loader = build_dataloader(index, dataset, "val", train=False, batch_size=2, label_lookup=lookup)
    labels = next(iter(loader))["label"]
    assert set(labels.unique().tolist()) <= {0, 1, 255}


def test_in_memory_decode_is_exact_and_decodes_each_sample_once(prepared, monkeypatch):
    from seg_pipelines.datasets import loaders
    from seg_pipelines.datasets.base import SegmentationReader

    index, dataset = prepared
    loaders.clear_decoded_cache()
    calls = []
    original = SegmentationReader.load_pair
    monkeypatch.setattr(SegmentationReader, "load_pair", lambda self, s: calls.append(s.sample_id) or original(self, s))

    def items(cache):
        ds = loaders.SegmentationDataset(
            index, "val", dataset["family"], dataset["root"], transform=None, cache_decoded=cache
        )
        return [ds[i] for i in range(len(ds))] * 1, len(ds)

    plain, n = items(False)
    assert len(calls) == n
    first, _ = items(True)
    again, _ = items(True)  # a new dataset object of the same split: read from memory
    assert len(calls) == 2 * n
    for a, b, c in zip(plain, first, again):
        assert torch.equal(a["image"], b["image"]) and torch.equal(b["image"], c["image"])
        assert torch.equal(a["label"], c["label"]) and c["label"].dtype == torch.int64
    c["image"].zero_()  # callers get copies: the cache is untouched
    assert torch.equal(items(True)[0][-1]["image"], plain[-1]["image"])
    loaders.clear_decoded_cache()

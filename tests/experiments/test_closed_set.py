"""The closed-set runs (experiments.closed_set): per-class protocol, metrics and markdown layout,
checkpoints, qualitative sample choice, bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DatasetError

from seg_pipelines.engine.evaluation import scores_from_confusion
from seg_pipelines.engine.training import CheckpointError, save_checkpoint
from seg_pipelines.experiments import closed_set
from seg_pipelines.models.factory import create_model
from seg_pipelines.pipelines.catalog_datasets import TorchCheckpointDataset

TINY_MODEL = {"head": "fcn", "backbone": "resnet_tiny", "channels": 16, "aux_channels": 8}


def hand_made_comparison() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "iou": [0.9, 0.7, np.nan, 0.4, 0.2, 0.0, 0.5],
            "table_4_8_group": ["head", "head", "mid", "mid", "tail", "tail", ""],
        }
    )


def test_group_miou_averages_counted_classes_per_group():
    table = hand_made_comparison()
    groups = closed_set.group_miou(table["iou"], table["table_4_8_group"])
    assert groups["head"] == pytest.approx(80.0)
    assert groups["mid"] == pytest.approx(40.0)  # the NaN class (absent everywhere) is skipped
    assert groups["tail"] == pytest.approx(10.0)  # a 0 IoU counts
    assert np.isnan(closed_set.group_miou([np.nan, 0.3], ["head", "mid"])["head"])
    with pytest.raises(ValueError, match="group labels"):
        closed_set.group_miou([0.1, 0.2], ["head"])


def test_per_class_summary_matches_the_closed_set_protocol():
    generator = np.random.default_rng(0)
    confusion = generator.integers(0, 50, size=(5, 5))
    confusion[3, :] = 0  # class 3: no ground truth, still predicted → IoU 0
    confusion[:, 4] = 0
    confusion[4, :] = 0  # class 4: absent everywhere → NaN, skipped
    table = closed_set.per_class_table(confusion, list("abcde"))
    assert len(table) == 5 and table.loc[3, "iou"] == 0 and np.isnan(table.loc[4, "iou"])
    expected = scores_from_confusion(confusion, "closed_set")
    summary = closed_set.summarize_per_class(table)
    assert summary["mIoU"] == pytest.approx(100 * expected.miou)
    assert summary["mAcc"] == pytest.approx(100 * expected.macc)
    assert summary["aAcc"] == pytest.approx(100 * np.trace(confusion) / confusion.sum())


def test_metrics_and_markdown_follow_the_thesis_layout():
    statistics = pd.DataFrame(
        {
            "class_id": range(4),
            "name": ["sky", "grass", "boat", "kite"],
            "frequency": [0.6, 0.3, 0.07, 0.03],
            "rank": range(4),
            "group": ["head", "head", "mid", "tail"],
            "table_4_8_group": ["head", "mid", "mid", "tail"],
        }
    )
    baseline = closed_set.per_class_table(np.diag([60, 30, 5, 1]) + 1, statistics["name"])
    method = closed_set.per_class_table(np.diag([60, 30, 7, 3]) + 1, statistics["name"])
    comparison = closed_set.compare_per_class(baseline, method, statistics)
    metrics = closed_set.closed_set_metrics(baseline, method, comparison)
    assert set(metrics) == {"baseline", "method", "delta", "chance"}
    pixels = np.array([64, 34, 9, 5], dtype=float)  # ground truth per class: its diagonal + four 1s
    assert metrics["chance"]["mIoU"] == pytest.approx(100 * np.mean(pixels / (pixels.sum() + 3 * pixels)))
    assert set(metrics["method"]) == {"mIoU", "mAcc", "aAcc", "table_4_8_group_mIoU", "tercile_group_mIoU"}
    tail_iou = 4 / (7 + 7 - 4)  # kite: TP 3 + 1, ground-truth and predicted pixels 3 + 4
    assert metrics["method"]["table_4_8_group_mIoU"]["tail"] == pytest.approx(100 * tail_iou)
    assert metrics["delta"]["mIoU"] == pytest.approx(metrics["method"]["mIoU"] - metrics["baseline"]["mIoU"])

    rows = [("FCN", "resnet_tiny", {"synthetic": 30.0}), ("FCN+CAA", "resnet_tiny", {"synthetic": 32.5})]
    text = closed_set.results_markdown(rows, ["synthetic"], comparison, ("FCN", "FCN+CAA"))
    lines = text.splitlines()
    assert lines[0] == "| Method | Backbone | synthetic |"
    assert lines[2] == "| FCN | resnet_tiny | 30.00 |"
    assert lines[3] == "| FCN+CAA | resnet_tiny | 32.50 (+2.50) |"
    assert "| Method (Minor Class) | kite(3.00%) | mIoU(%) |" in lines
    assert f"| FCN+CAA | {100 * tail_iou:.2f} | {100 * tail_iou:.2f} |" in lines


def test_unknown_head_or_backbone_lists_the_valid_names():
    with pytest.raises(KeyError, match="known models: .*'fcn'"):
        create_model("fcnn", num_classes=3)
    with pytest.raises(KeyError, match=r"unknown closed-set head 'fcnn'; known heads: \['fcn', 'pspnet'"):
        closed_set.closed_set_model_config({**TINY_MODEL, "head": "fcnn"}, num_classes=3, ignore_index=255)
    with pytest.raises(KeyError, match="unknown backbone 'resnet_tinyy'; known presets: .*'resnet_tiny'"):
        closed_set.closed_set_model_config({**TINY_MODEL, "backbone": "resnet_tinyy"}, num_classes=3, ignore_index=255)


def test_class_count_mismatches_are_named():
    with pytest.raises(ValueError, match="configured for 5 classes but the dataset has 3"):
        closed_set.closed_set_model_config({**TINY_MODEL, "num_classes": 5}, num_classes=3, ignore_index=255)
    with pytest.raises(ValueError, match="class_statistics has 2 classes but the dataset has 3"):
        closed_set.class_weights_from_statistics(pd.DataFrame({"class_id": [0, 1], "weight": [0.5, 0.5]}), 3)


@pytest.fixture(scope="module")
def tiny_checkpoint() -> dict:
    config = closed_set.closed_set_model_config(
        TINY_MODEL, num_classes=3, ignore_index=255, addon="caa", addon_cfg={"channels": 8, "affinity_channels": 4}
    )
    torch.manual_seed(0)
    model = closed_set.build_segmentor(config)
    return {"model": model.state_dict(), "model_config": config}


def test_checkpoint_round_trip_rebuilds_the_same_model(tiny_checkpoint, tmp_path):
    dataset = TorchCheckpointDataset(str(tmp_path / "sub" / "model.pt"))
    assert not dataset.exists()
    dataset.save(tiny_checkpoint)
    loaded = dataset.load()
    assert loaded["model_config"] == tiny_checkpoint["model_config"]
    images = torch.randn(2, 3, 32, 32)
    first = closed_set.load_segmentor(tiny_checkpoint, num_classes=3)
    second = closed_set.load_segmentor(tmp_path / "sub" / "model.pt", num_classes=3)
    torch.testing.assert_close(first(images)["logits"], second(images)["logits"], rtol=0, atol=0)
    assert first(images)["logits"].shape == (2, 3, 32, 32)


def test_bad_checkpoints_give_clear_errors(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*missing.pt"):
        closed_set.load_segmentor(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="corrupt or unreadable checkpoint .*corrupt.pt"):
        closed_set.load_segmentor(corrupt)
    with pytest.raises(DatasetError, match="corrupt or unreadable checkpoint .*corrupt.pt"):
        TorchCheckpointDataset(str(corrupt)).load()  # Kedro wraps the CheckpointError
    save_checkpoint(tmp_path / "weights_only.pt", {"state_dict": tiny_checkpoint["model"]})
    with pytest.raises(CheckpointError, match="not a segmentor checkpoint: expected keys 'model' and 'model_config'"):
        closed_set.load_segmentor(tmp_path / "weights_only.pt")
    with pytest.raises(ValueError, match="trained for 3 classes but the dataset has 60"):
        closed_set.load_segmentor(tiny_checkpoint, num_classes=60)
    truncated = {**tiny_checkpoint, "model": {k: v for k, v in tiny_checkpoint["model"].items() if "addon" not in k}}
    with pytest.raises(CheckpointError, match="does not match the model: missing"):
        closed_set.load_segmentor(truncated)


def test_qualitative_samples_prefer_tail_classes():
    index = pd.DataFrame(
        {"split": ["val"] * 4 + ["train"], "classes_present": [[0, 1], [0, 2], [0, 1, 3, 4], [2, 5], [5]]}
    )
    statistics = pd.DataFrame({"class_id": range(6), "table_4_8_group": ["head", "head", "mid", "mid", "tail", "tail"]})
    assert closed_set.select_qualitative_samples(index, statistics, "val", 3) == [2, 3, 0]


def test_inference_options_reject_unknown_modes():
    assert closed_set.inference_options({"mode": "slide", "crop_size": [32, 32], "stride": [16, 16]}) == {
        "crop_size": (32, 32),
        "stride": (16, 16),
    }
    with pytest.raises(ValueError, match="unknown inference mode 'sliding'"):
        closed_set.inference_options({"mode": "sliding"})


def test_a_finished_training_is_reused_only_for_the_same_data(tmp_path):
    """Issue 29, item 2: the run folder is keyed on the train split's content, so a re-rendered or
    edited dataset trains afresh instead of reusing the stale model, and a copied one is reused."""
    import shutil

    from PIL import Image

    from seg_pipelines.experiments.data_preparation import build_prepared_index, prepare_raw_dataset
    from tests.fixtures.layouts import write_ade20k_150

    def train(root, checkpoints):
        manifest = prepare_raw_dataset({"family": "ade20k_150", "root": str(root), "splits": ["train", "val"]}, {})
        index, _ = build_prepared_index(manifest, "raise")
        config = closed_set.closed_set_model_config(
            TINY_MODEL, num_classes=manifest["num_classes"], ignore_index=manifest["ignore_index"]
        )
        training = {"iterations": 2, "batch_size": 2, "log_interval": 1, "checkpoint_interval": 2}
        augmentation = {"crop_size": [16, 16], "scale_range": [1.0, 1.0]}
        closed_set.train_segmentor(config, manifest, index, training, augmentation, checkpoints, show_progress=False)
        return sorted(path.name for path in checkpoints.iterdir())

    root = write_ade20k_150(tmp_path / "ade", n_train=4, n_val=2, size=(24, 32), class_names=["sky", "grass", "lime"])
    checkpoints = tmp_path / "checkpoints"
    first = train(root, checkpoints)
    assert len(first) == 1
    assert train(shutil.copytree(root, tmp_path / "copy"), checkpoints) == first  # same content, other place
    image = root / "ADEChallengeData2016" / "images" / "training" / "ADE_train_00000003.jpg"
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    second = train(root, checkpoints)
    assert len(second) == 2 and set(first) < set(second)

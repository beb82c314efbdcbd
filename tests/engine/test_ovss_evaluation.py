"""Open-vocabulary protocol, VOC-21b background rule, CAT-Seg sliding window, report layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.engine.ovss_evaluation import (
    TABLE_5_1_COLUMNS,
    benchmark_spec,
    evaluate_open_vocabulary,
    predict_catseg_slide,
    seen_unseen_table,
    six_column_table,
    sliding_window_positions,
    table_to_markdown,
    validate_class_names,
)


def _one_hot_logits(prediction: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(prediction, num_classes).permute(0, 3, 1, 2).float() * 10


def test_open_vocabulary_miou_counts_only_classes_with_ground_truth_and_own_ignore_value():
    # 3 classes, PC-459-style ignore value = num_classes = 3; class 2 predicted but absent from the GT
    label = torch.tensor([[[0, 0, 1, 3], [1, 1, 3, 3]]])
    prediction = torch.tensor([[[0, 2, 1, 0], [1, 0, 2, 2]]])
    spec = benchmark_spec("synpc459", ["a", "b", "c"], ignore_index=3)
    batches = [{"image": torch.zeros(1, 3, 2, 4), "label": label}]
    scores, confusion = evaluate_open_vocabulary(lambda images: _one_hot_logits(prediction, 3), batches, spec)
    # class a: TP 1, GT 2, predicted 2 → 1/3; class b: TP 2, GT 3, predicted 2 → 2/3; class c has no GT
    assert scores.iou[0] == pytest.approx(1 / 3) and scores.iou[1] == pytest.approx(2 / 3) and np.isnan(scores.iou[2])
    assert scores.miou == pytest.approx(0.5)
    assert confusion.sum() == 5  # the three ignored pixels are not counted


def test_voc21b_maps_predictions_at_or_above_background_to_background():
    names = [f"thing{i}" for i in range(20)] + ["background"]
    spec = benchmark_spec("synvoc21b", names, ignore_index=255)
    assert spec.background_mapping == (20, 20)
    label = torch.tensor([[[20, 20, 3, 255]]])
    # logits with 23 channels: extra "background-like" prompts 21, 22 must count as background
    prediction = torch.tensor([[[21, 22, 3, 5]]])
    batches = [{"image": torch.zeros(1, 3, 1, 4), "label": label}]
    scores, _ = evaluate_open_vocabulary(lambda images: _one_hot_logits(prediction, 23), batches, spec)
    assert scores.iou[20] == 1.0 and scores.iou[3] == 1.0 and scores.miou == 1.0
    assert benchmark_spec("synvoc20", names[:20], 255).background_mapping is None


@pytest.mark.parametrize(
    "names, message",
    [([], "empty"), (["cat", " "], "empty"), (["cat", "dog", "Cat"], "duplicate")],
)
def test_bad_vocabularies_are_rejected(names, message):
    with pytest.raises(ValueError, match=message):
        validate_class_names(names, "test vocabulary")


def test_sliding_window_positions_cover_the_image():
    assert sliding_window_positions(160, 96, 64) == [0, 64]
    assert sliding_window_positions(640, 384, 256) == [0, 256]  # CAT-Seg's 384 windows on 640 px
    assert sliding_window_positions(200, 96, 64) == [0, 64, 104]
    assert sliding_window_positions(80, 96, 64) == [0]


def test_catseg_slide_averages_windows_and_global_view():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 96, 96)
    calls = []

    def identity(batch):  # logits = the image itself: windows are exact crops
        calls.append(tuple(batch.shape[-2:]))
        return batch

    window = 96
    out = predict_catseg_slide(identity, images, window=window, scores=lambda x: x)
    assert calls == [(96, 96)] * 5  # 2×2 windows of a 160 px resize + one global view
    resized = F.interpolate(images, size=(160, 160), mode="bilinear", align_corners=False)
    global_view = F.interpolate(
        F.interpolate(images, size=(96, 96), mode="bilinear", align_corners=False),
        size=(160, 160),
        mode="bilinear",
        align_corners=False,
    )
    expected = F.interpolate(0.5 * (resized + global_view), size=(96, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # constant logits: sigmoid of the constant everywhere
    constant = predict_catseg_slide(lambda b: torch.full((b.shape[0], 4, 24, 24), 2.0), images, window=window)
    torch.testing.assert_close(constant, torch.full((2, 4, 96, 96), float(torch.sigmoid(torch.tensor(2.0)))))


def test_report_layouts():
    table = six_column_table(
        {"CAT-Seg": {"syn847": 0.12, "synvoc21b": 0.773}, "LSMSeg": {b: 0.5 for _, b in TABLE_5_1_COLUMNS}}
    )
    assert list(table.columns)[1:] == [f"{c} ({b})" for c, b in TABLE_5_1_COLUMNS]
    assert table.iloc[0]["A-847 (syn847)"] == 12.0 and np.isnan(table.iloc[0]["VOC (synvoc20)"])
    names = ["car", "lime", "boat", "background"]
    iou = {"baseline": np.array([0.5, 0.2, np.nan, 0.9])}
    per_class = seen_unseen_table(iou, names, unseen_names=["lime"])
    row = per_class.iloc[0]
    assert row["seen mIoU"] == 50.0  # boat has no ground truth: NaN, left out
    assert row["unseen mIoU"] == pytest.approx(55.0) and row["unseen: background"] == 90.0
    markdown = table_to_markdown(table, "Table 5.1")
    assert markdown.startswith("Table 5.1") and "| CAT-Seg | 12.00 |" in markdown and "–" in markdown

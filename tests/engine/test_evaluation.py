"""Evaluation protocols on hand-built predictions, and the inference modes."""

import numpy as np
import pytest
import torch

from seg_pipelines.engine.evaluation import (
    ConfusionMatrix,
    evaluate,
    map_predictions_to_background,
    predict_multi_scale,
    predict_slide,
    scores_from_confusion,
)

IGNORE = 255


def _confusion(prediction, target, num_classes):
    confusion = ConfusionMatrix(num_classes, IGNORE)
    confusion.update(torch.tensor(prediction), torch.tensor(target))
    return confusion.matrix


def test_protocols_differ_on_a_class_absent_from_ground_truth():
    # classes 0,1 in GT; class 2 only predicted (2 pixels); one ignored pixel predicted as 2
    target = [[0, 0, 1, 1], [0, 0, 1, IGNORE]]
    prediction = [[0, 0, 1, 2], [0, 2, 1, 2]]
    matrix = _confusion(prediction, target, num_classes=4)
    assert matrix.sum() == 7, "the ignored pixel is not counted"
    closed = scores_from_confusion(matrix, "closed_set")
    # IoU_0 = 3/(4) ; IoU_1 = 2/3 ; IoU_2 = 0/2 = 0 (predicted, absent: counts 0) ; IoU_3 = NaN
    np.testing.assert_allclose(closed.iou[:3], [3 / 4, 2 / 3, 0.0])
    assert np.isnan(closed.iou[3])
    assert closed.miou == pytest.approx((3 / 4 + 2 / 3 + 0) / 3)
    open_vocab = scores_from_confusion(matrix, "open_vocabulary")
    assert np.isnan(open_vocab.iou[2]), "open-vocabulary mean skips classes without ground truth"
    assert open_vocab.miou == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert closed.aacc == pytest.approx(5 / 7)


def test_chance_iou_matches_a_uniform_random_predictor():
    from seg_pipelines.engine.evaluation import chance_iou

    generator = torch.Generator().manual_seed(0)
    target = torch.cat([torch.zeros(800_000), torch.ones(180_000), torch.full((20_000,), 2.0)]).long()
    counts = np.bincount(target.numpy(), minlength=4)  # class 3 absent
    expected = chance_iou(counts)
    assert np.isnan(expected[3])
    np.testing.assert_allclose(expected[:3], counts[:3] / (counts.sum() + counts[:3] * 3))
    prediction = torch.randint(0, 4, target.shape, generator=generator)
    measured = []
    for c in range(3):
        intersection = ((prediction == c) & (target == c)).sum().item()
        union = ((prediction == c) | (target == c)).sum().item()
        measured.append(intersection / union)
    np.testing.assert_allclose(measured, expected[:3], rtol=0.05)  # ~4,000 expected hits on the rare class
    assert expected[2] < 0.25 / 4  # a rare class's chance IoU is near its pixel share, far below 1/K


def test_confusion_rejects_bad_ids_and_shapes():
    confusion = ConfusionMatrix(3, IGNORE)
    with pytest.raises(ValueError, match="outside"):
        confusion.update(torch.tensor([0, 1]), torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="outside"):
        confusion.update(torch.tensor([0, 5]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        confusion.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="protocol"):
        scores_from_confusion(np.eye(2), "coco")


def test_native_ignore_values_for_large_vocabularies():
    confusion = ConfusionMatrix(847, 65535)
    confusion.update(torch.tensor([3, 3, 800]), torch.tensor([3, 65535, 800]))
    scores = scores_from_confusion(confusion.matrix, "open_vocabulary")
    assert scores.miou == 1.0 and confusion.matrix.sum() == 2


def test_voc21b_background_rule():
    prediction = torch.tensor([0, 19, 20, 21, 25])
    assert map_predictions_to_background(prediction, 20, 20).tolist() == [0, 19, 20, 20, 20]


def _constant_predictor(num_classes=3):
    weight = torch.randn(num_classes, 3, generator=torch.Generator().manual_seed(0))

    def predict(images):  # a per-pixel linear classifier: translation-equivariant, so windows agree
        return torch.einsum("kc,bchw->bkhw", weight, images)

    return predict


def test_sliding_window_equals_whole_image_for_pixelwise_model():
    images = torch.randn(2, 3, 37, 53)
    predict = _constant_predictor()
    whole = predict(images)
    slid = predict_slide(predict, images, crop_size=(16, 20), stride=(10, 12))
    torch.testing.assert_close(slid, whole)


def test_multi_scale_flip_is_a_probability_average():
    images = torch.randn(1, 3, 24, 32)
    predict = _constant_predictor()
    scores = predict_multi_scale(predict, images, scales=(1.0,), flip=True)
    torch.testing.assert_close(scores, predict(images).softmax(1))  # flip-equivariant model
    scores = predict_multi_scale(predict, images, scales=(0.5, 1.0, 1.5), flip=True)
    torch.testing.assert_close(scores.sum(1), torch.ones(1, 24, 32))


def test_evaluate_runs_modes_over_batches():
    predict = _constant_predictor()
    images = torch.randn(2, 3, 16, 16)
    labels = predict(images).argmax(1)
    labels[:, 0, 0] = IGNORE
    batches = [{"image": images, "label": labels}]
    scores, matrix = evaluate(predict, batches, 3, IGNORE)
    assert scores.miou == pytest.approx(1.0)
    scores, _ = evaluate(predict, batches, 3, IGNORE, mode="slide", crop_size=(8, 8), stride=(6, 6))
    assert scores.miou == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mode"):
        evaluate(predict, batches, 3, IGNORE, mode="tiles")


def test_chance_miou_follows_the_protocol():
    from seg_pipelines.engine.evaluation import chance_iou, chance_miou

    counts = np.array([600.0, 300.0, 100.0, 0.0])  # class 3 absent from the ground truth
    per_class = chance_iou(counts)
    # open vocabulary: the mean over classes with ground truth; closed set: the absent class scores 0
    # (a uniform random predictor predicts it on a quarter of the pixels, none of them right)
    assert chance_miou(counts, "open_vocabulary") == pytest.approx(np.mean(per_class[:3]))
    assert chance_miou(counts, "closed_set") == pytest.approx(np.sum(per_class[:3]) / 4)
    with pytest.raises(ValueError, match="protocol"):
        chance_miou(counts, "closed")

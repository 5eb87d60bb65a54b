"""evaluate_model against answers worked out by hand.

The detector here is a real Keras model whose outputs are a known formula of the picture's colour
(score = red / 255; box top-left moved by green and blue), so each flat-colour picture's score and box
are known exactly, and so are TP / FP / FN / TN, precision, recall and mean IoU.
"""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from training.data.dataset import DataError, Sample
from training.evaluation.evaluate import evaluate_model, format_table
from training.inference.detector import Detector


def _colour_model(input_size: int = 32) -> keras.Model:
    """score = R/255; box = [G/510, B/510, G/510 + 0.5, B/510 + 0.5] (R, G, B the picture's mean colour)."""
    inputs = keras.Input((input_size, input_size, 3))
    mean_rgb = keras.layers.GlobalAveragePooling2D()(inputs)
    score_layer = keras.layers.Dense(1, name="class")
    box_layer = keras.layers.Dense(4, name="box")
    model = keras.Model(inputs, [score_layer(mean_rgb), box_layer(mean_rgb)])
    score_layer.set_weights([np.array([[1 / 255], [0], [0]], np.float32), np.zeros(1, np.float32)])
    half = 0.5 / 255
    box_kernel = np.array([[0, 0, 0, 0], [half, 0, half, 0], [0, half, 0, half]], np.float32)
    box_layer.set_weights([box_kernel, np.array([0, 0, 0.5, 0.5], np.float32)])
    return model


@pytest.fixture(scope="module")
def colour_detector() -> Detector:
    return Detector(_colour_model())


FACE, NO_FACE = True, False
HIGH, LOW = 230, 40  # red: score 0.902 or 0.157
# (red, green, has_face, label box): the predicted box is [0, 0, 0.5, 0.5] when green is 0, [0.5, 0, 1, 0.5] at 255.
CASES = [
    (HIGH, 0, FACE, (0.0, 0.0, 0.5, 0.5)),  # detected, IoU 1
    (HIGH, 0, FACE, (0.0, 0.0, 0.5, 0.4)),  # detected, IoU 0.8
    (HIGH, 0, FACE, (0.25, 0.0, 0.75, 0.5)),  # detected, IoU 1/3
    (HIGH, 0, NO_FACE, (0.0, 0.0, 0.0, 0.0)),  # detected, nothing there
    (LOW, 0, FACE, (0.0, 0.0, 0.5, 0.5)),  # missed, IoU 1
    (LOW, 255, FACE, (0.0, 0.0, 0.5, 0.5)),  # missed, IoU 0
    (LOW, 0, NO_FACE, (0.0, 0.0, 0.0, 0.0)),  # rightly nothing
    (LOW, 0, NO_FACE, (0.0, 0.0, 0.0, 0.0)),  # rightly nothing
]
SIZES = [(200, 100), (90, 150)]  # (width, height): not square, and alternating
MEAN_IOU = (1 + 0.8 + 1 / 3 + 1 + 0) / 5


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    folder = tmp_path_factory.mktemp("colours")
    result = []
    for i, (red, green, has_face, box) in enumerate(CASES):
        width, height = SIZES[i % 2]
        image = np.empty((height, width, 3), np.uint8)
        image[:] = (0, green, red)  # BGR
        path = folder / f"picture_{i}.png"  # lossless, so the colour is exact
        assert cv2.imwrite(str(path), image)
        result.append(Sample(path, None, has_face, box, width, height))
    return result


@pytest.mark.parametrize(
    ("threshold", "iou_threshold", "expected"),
    [
        # TP: cases 0, 1.  FP: 2 (box off), 3 (no face).  FN: 2, 4, 5.  TN: 6, 7.
        (0.5, 0.5, dict(detected=4, true_positives=2, false_positives=2, false_negatives=3, true_negatives=2,
                        precision=2 / 4, recall=2 / 5, class_accuracy=5 / 8)),
        # A looser overlap rule makes case 2 a hit.
        (0.5, 0.3, dict(detected=4, true_positives=3, false_positives=1, false_negatives=2, true_negatives=2,
                        precision=3 / 4, recall=3 / 5, class_accuracy=5 / 8)),
        # Nothing passes a 0.95 score: no detections at all, precision counts as 0.
        (0.95, 0.5, dict(detected=0, true_positives=0, false_positives=0, false_negatives=5, true_negatives=3,
                         precision=0.0, recall=0.0, class_accuracy=3 / 8)),
    ],
)
def test_counts_and_ratios_match_the_hand_worked_answer(colour_detector, samples, threshold, iou_threshold, expected):
    metrics = evaluate_model(colour_detector, samples, threshold=threshold, iou_threshold=iou_threshold)
    assert metrics["images"] == 8
    assert metrics["faces"] == 5
    assert metrics["no_faces"] == 3
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key
    p, r = expected["precision"], expected["recall"]
    assert metrics["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0, abs=1e-6)
    assert metrics["mean_iou"] == pytest.approx(MEAN_IOU, abs=1e-4)  # whatever the score
    assert metrics["threshold"] == threshold
    assert metrics["iou_threshold"] == iou_threshold


def test_the_colour_detector_really_gives_the_planned_outputs(colour_detector, samples):
    """Guards the test's own premise: the scores and boxes are the ones the cases above assume."""
    from training.data.pictures import load_image

    detections = colour_detector.detect_batch([load_image(s.image_path) for s in samples])
    for (red, green, _, _), sample, detection in zip(CASES, samples, detections, strict=True):
        assert detection.score == pytest.approx(red / 255, abs=1e-5)
        x1 = 0.5 if green == 255 else 0.0
        expected = (x1 * sample.width, 0.0, (x1 + 0.5) * sample.width, 0.5 * sample.height)
        assert np.allclose(detection.box, expected, atol=1e-3)


def test_metrics_are_json_serialisable_and_the_table_shows_them(colour_detector, samples):
    import json

    metrics = evaluate_model(colour_detector, samples)
    assert json.loads(json.dumps(metrics)) == metrics
    table = format_table(metrics)
    assert "precision          0.500" in table
    assert "recall             0.400" in table
    assert "2 / 2 / 3 / 2" in table
    assert f"{MEAN_IOU:.3f}" in table


def test_no_samples_is_a_value_error(colour_detector):
    with pytest.raises(ValueError, match="no pictures"):
        evaluate_model(colour_detector, [])


def test_an_unreadable_picture_is_a_data_error_naming_it(colour_detector, samples, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    bad = Sample(broken, None, False, (0.0, 0.0, 0.0, 0.0), 10, 10)
    with pytest.raises(DataError, match="broken.png"):
        evaluate_model(colour_detector, [*samples[:2], bad])


def test_large_sets_are_evaluated_in_chunks_with_the_same_result(colour_detector, samples, monkeypatch):
    import training.evaluation.validator as validator

    whole = evaluate_model(colour_detector, samples)
    monkeypatch.setattr(validator, "EVAL_CHUNK", 3)
    chunked = evaluate_model(colour_detector, samples)
    assert chunked.pop("ms_per_picture") > 0 and whole.pop("ms_per_picture") > 0  # timings differ run to run
    assert chunked == pytest.approx(whole)


def test_the_detectors_own_threshold_is_the_default(colour_detector, samples):
    colour_detector.threshold = 0.45
    try:
        by_default = evaluate_model(colour_detector, samples)
        explicit = evaluate_model(colour_detector, samples, threshold=0.45)
    finally:
        colour_detector.threshold = 0.5
    assert by_default == {**explicit, "ms_per_picture": by_default["ms_per_picture"]}
    assert by_default["threshold"] == 0.45


def test_a_finder_is_measured_like_a_model(samples):
    """evaluate_finder: a finder answering None counts as score 0 (no face), boxes are judged the same way."""
    from training.core.detection import Detection
    from training.evaluation.evaluate import evaluate_finder

    class AlwaysTopLeft:
        def detect(self, frame):
            if frame[..., 2].mean() < 100:  # dark-red pictures: "no face"
                return None
            return Detection(1.0, (0.0, 0.0, frame.shape[1] / 2, frame.shape[0] / 2))

    metrics = evaluate_finder(AlwaysTopLeft(), samples)
    truth = [s for s in samples if s.has_face]
    assert metrics["images"] == len(samples) and metrics["faces"] == len(truth)
    assert metrics["ms_per_picture"] >= 0 and 0 <= metrics["mean_iou"] <= 1
    assert metrics["true_positives"] + metrics["false_negatives"] == len(truth)
    assert metrics["false_alarms"] <= metrics["no_faces"]


def test_verdict_says_where_the_model_stands():
    from training.evaluation.evaluate import verdict

    model = {"f1": 0.94, "mean_iou": 0.81, "images": 200, "faces": 110, "no_faces": 90, "false_alarms": 0}
    classic = {"f1": 0.88, "mean_iou": 0.67}
    assert verdict(model, classic) == ("Your model: F1 0.94, mean IoU 0.81 on 200 test pictures; classic finder: "
                                       "F1 0.88, mean IoU 0.67. Your model does better than the classic finder.")
    worse = verdict({**model, "f1": 0.29, "false_alarms": 7}, classic)
    assert "worse than the classic finder" in worse and "more pictures of your face" in worse
    assert "more pictures without a face" in worse and "more epochs" in worse
    assert verdict(model, None).endswith("on 200 test pictures.")


@pytest.mark.parametrize("multi_face", [False, True])
def test_a_model_is_only_called_better_when_real_photographs_agree(multi_face):
    """Honest verdicts: a model that beats the classic finder on its (pasted) test pictures but finds
    fewer faces in real photographs is told so, not congratulated."""
    from training.evaluation.evaluate import verdict

    model = {"f1": 0.97, "mean_iou": 0.8, "images": 150, "faces": 219, "no_faces": 68, "false_alarms": 0,
             "ap50": 0.98, "multi_face": multi_face}
    classic = {"f1": 0.86, "mean_iou": 0.7, "ap50": 0.74}
    real_classic = {"ap50": 0.57, "faces": 148, "frames": 105}
    behind = verdict(model, classic, {"ap50": 0.34, "faces": 148, "frames": 105}, real_classic)
    assert "does better than the classic finder on your test pictures, but not on real photographs" in behind
    assert "AP50 0.34 (classic finder 0.57)" in behind and "Your model does better" not in behind
    assert "backbone blazeface" in behind
    assert "your own webcam" in verdict(model, classic, {"ap50": 0.34, "faces": 148, "frames": 105}, real_classic,
                                        pretrained_start=True)
    ahead = verdict(model, classic, {"ap50": 0.97, "faces": 148, "frames": 105}, real_classic)
    assert ahead.endswith("Your model does better than the classic finder. On real photographs no one trained on "
                          "(148 faces in 105 frames): AP50 0.97 (classic finder 0.57).")
    assert verdict(model, classic).endswith("Your model does better than the classic finder.")


def test_the_single_face_figures_are_the_every_face_matching_with_one_box_a_picture():
    """The one path: a single-face model's picture rule (a confident box in the wrong place is a false positive
    and a false negative) comes out of the every-face matching with one box and one face a picture, on random
    cases with ties, pictures the model found nothing in, and scores exactly on the threshold."""
    from training.core.boxes import box_iou
    from training.core.detection import Detection
    from training.evaluation.validator import Predictions, measure

    rng = np.random.default_rng(7)
    for case in range(100):
        n = int(rng.integers(1, 40))
        has_face = rng.random(n) < rng.random()
        corner = rng.random((n, 2)) * 50
        truth = np.concatenate([corner, corner + 10 + rng.random((n, 2)) * 20], axis=1)
        box = truth + rng.normal(0, rng.choice([1.0, 5.0, 15.0]), (n, 4))
        found_any = rng.random(n) > 0.1
        scores = np.where(found_any, np.round(rng.random(n), 1), 0.0)
        threshold = float(np.round(rng.random(), 1))
        predictions = Predictions(
            [[Detection(float(scores[i]), tuple(box[i]))] if found_any[i] else [] for i in range(n)],
            [truth[i : i + 1] if has_face[i] else np.zeros((0, 4)) for i in range(n)], every_face=False)
        figures = measure(predictions, threshold).as_dict()
        # the picture rule, worked out directly
        ious = np.where(has_face & found_any, box_iou(box, truth), 0.0)
        detected, placed = scores > threshold, ious >= 0.5
        tp = int(np.sum(has_face & detected & placed))
        assert figures["true_positives"] == tp, case
        assert figures["false_positives"] == int(np.sum(detected & ~(has_face & placed))), case
        assert figures["false_negatives"] == int(np.sum(has_face & ~(detected & placed))), case
        assert figures["true_negatives"] == int(np.sum(~has_face & ~detected)), case
        assert figures["false_alarms"] == int(np.sum(detected & ~has_face)), case
        assert figures["class_accuracy"] == pytest.approx(float(np.mean(detected == has_face))), case
        assert figures["mean_iou"] == pytest.approx(float(ious[has_face].mean()) if has_face.any() else 0.0), case
        assert "ap50" not in figures and "multi_face" not in figures  # a single-face result keeps its keys


def test_the_threshold_chosen_by_the_validator_has_the_best_f1():
    """measure() without a threshold picks the best-F1 one (what training stores with the model): no other
    threshold between the scores does better, and for every face it is never below AP_MIN_SCORE."""
    from training.core.detection import Detection
    from training.evaluation.metrics import AP_MIN_SCORE
    from training.evaluation.validator import Predictions, measure

    face, off = (0.0, 0.0, 10.0, 10.0), (50.0, 50.0, 60.0, 60.0)
    found = [[Detection(0.9, face)], [Detection(0.8, off)], [Detection(0.6, face)], [Detection(0.3, face)],
             [Detection(0.2, off)]]
    truths = [np.array([face]), np.zeros((0, 4)), np.array([face]), np.array([face]), np.zeros((0, 4))]
    one_box = Predictions(found, truths, every_face=False)
    best = measure(one_box)
    # above 0.25 all three faces are found with one false box: F1 = 2 * 0.75 * 1 / 1.75
    assert best.f1 == pytest.approx(2 * 0.75 / 1.75) and 0.2 < best.threshold < 0.3
    for threshold in np.linspace(0.0, 0.99, 100):
        assert measure(one_box, float(threshold)).f1 <= best.f1 + 1e-12
    tiny = Predictions([[Detection(0.004, face)], []], [np.array([face]), np.zeros((0, 4))], every_face=True)
    assert measure(tiny).threshold == AP_MIN_SCORE

"""Detection quality on labelled pictures: the accuracy figures the tutorial never showed.

A picture counts as a correct detection (true positive) when it has a face, the score is above the
threshold and the predicted box overlaps the labelled one by at least ``iou_threshold`` (IoU). A
confident box in the wrong place is both a false positive and a false negative, as in the usual
object-detection convention.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from training.data import Sample, load_image
from training.detection import Detection
from training.inference import Detector
from training.metrics import box_iou, detection_counts
from training.preprocess import box_to_pixels

# Pictures decoded and sent through the network at once.
_EVAL_CHUNK = 32


def evaluate_model(
    detector: Detector,
    samples: Sequence[Sample],
    *,
    threshold: float | None = None,
    iou_threshold: float = 0.5,
) -> dict:
    """Run ``detector`` on every sample's picture and measure how well it finds the labelled faces.

    Returns a JSON-serialisable dict: ``images``, ``faces``, ``no_faces``, ``detected`` (score above
    the threshold), ``true_positives``, ``false_positives``, ``false_negatives``, ``true_negatives``,
    ``precision``, ``recall``, ``f1``, ``class_accuracy`` (face / no face right, ignoring the box),
    ``mean_iou`` (over the pictures with a face, of the predicted box whatever its score),
    ``false_alarms`` (pictures without a face where one was reported), ``ms_per_picture``,
    ``threshold`` (the detector's own, stored with the model, unless given) and ``iou_threshold``.
    Ratios with nothing to count are 0.0.

    Raises:
        ValueError: no samples.
        training.data.DataError: a picture cannot be read.
    """
    return _evaluate(detector.detect_batch, samples, detector.threshold if threshold is None else threshold,
                     iou_threshold, chunk=_EVAL_CHUNK)


def evaluate_finder(
    finder: object,
    samples: Sequence[Sample],
    *,
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict:
    """:func:`evaluate_model` for a finder whose ``detect(frame)`` gives a Detection or None (no face):
    the classic finder, a pretrained detector. Same figures, so they compare side by side."""

    def detect_all(frames: list[np.ndarray]) -> list[Detection | None]:
        return [finder.detect(frame) for frame in frames]

    return _evaluate(detect_all, samples, threshold, iou_threshold, chunk=1)


@dataclass
class Predictions:
    """One pass of a detector over labelled pictures, picture by picture: what the figures of
    :func:`evaluate_model` and the result pictures of :mod:`training.report` are both made from."""

    samples: list[Sample]
    has_face: np.ndarray  # (N,) bool: the label shows a face
    scores: np.ndarray  # (N,) face score (0 where the finder found nothing)
    ious: np.ndarray  # (N,) IoU of the predicted box with the labelled one (0 without a face or a box)
    boxes: np.ndarray  # (N, 4) predicted [x1, y1, x2, y2] in the picture's pixels; NaN where no box
    seconds: float  # time spent in the detector itself


def predict_samples(detector: Detector, samples: Sequence[Sample]) -> Predictions:
    """Run ``detector`` once over ``samples`` and keep every picture's score, box and IoU.

    Raises:
        ValueError: no samples.
        training.data.DataError: a picture cannot be read.
    """
    return _predict(detector.detect_batch, samples, chunk=_EVAL_CHUNK)


def _predict(
    detect_all: Callable[[list[np.ndarray]], list[Detection | None]],
    samples: Sequence[Sample],
    chunk: int,
) -> Predictions:
    samples = list(samples)
    if not samples:
        raise ValueError("no pictures to evaluate")

    has_face = np.array([s.has_face for s in samples], dtype=bool)
    scores = np.zeros(len(samples), dtype=np.float64)
    ious = np.zeros(len(samples), dtype=np.float64)
    boxes = np.full((len(samples), 4), np.nan, dtype=np.float64)
    seconds = 0.0
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        images = [load_image(s.image_path) for s in part]
        began = time.perf_counter()
        detections = detect_all(images)
        seconds += time.perf_counter() - began
        for offset, (sample, image, detection) in enumerate(zip(part, images, detections, strict=True)):
            if detection is None:
                continue  # no face found: score 0, no box
            scores[start + offset] = detection.score
            boxes[start + offset] = detection.box
            if sample.has_face:
                height, width = image.shape[:2]
                label_px = box_to_pixels(sample.box, width, height)
                ious[start + offset] = box_iou(np.array([detection.box]), np.array([label_px]))[0]
    return Predictions(samples, has_face, scores, ious, boxes, seconds)


def summarize(predictions: Predictions, threshold: float, iou_threshold: float = 0.5) -> dict:
    """:func:`evaluate_model`'s figures from a pass already made (see there for the keys)."""
    has_face, scores, ious = predictions.has_face, predictions.scores, predictions.ious
    counts = detection_counts(has_face, scores, ious, threshold, iou_threshold)
    detected = scores > threshold
    faces = int(has_face.sum())
    images = len(predictions.samples)
    return {
        "images": images,
        "faces": faces,
        "no_faces": images - faces,
        **counts,
        "class_accuracy": float(np.mean(detected == has_face)),
        "mean_iou": float(ious[has_face].mean()) if faces else 0.0,
        "false_alarms": int(np.sum(detected & ~has_face)),
        "ms_per_picture": 1000 * predictions.seconds / images,
        "threshold": float(threshold),
        "iou_threshold": float(iou_threshold),
    }


def _evaluate(
    detect_all: Callable[[list[np.ndarray]], list[Detection | None]],
    samples: Sequence[Sample],
    threshold: float,
    iou_threshold: float,
    chunk: int,
) -> dict:
    return summarize(_predict(detect_all, samples, chunk), threshold, iou_threshold)


def format_table(metrics: dict) -> str:
    """A short human-readable table of :func:`evaluate_model`'s result."""
    rows = [
        ("pictures", f"{metrics['images']}  ({metrics['faces']} with a face, {metrics['no_faces']} without)"),
        ("class accuracy", f"{metrics['class_accuracy']:.3f}  (face / no face right)"),
        ("precision", f"{metrics['precision']:.3f}"),
        ("recall", f"{metrics['recall']:.3f}"),
        ("F1", f"{metrics['f1']:.3f}"),
        ("mean IoU", f"{metrics['mean_iou']:.3f}  (pictures with a face, whatever the score)"),
        (
            "TP / FP / FN / TN",
            f"{metrics['true_positives']} / {metrics['false_positives']} / "
            f"{metrics['false_negatives']} / {metrics['true_negatives']}",
        ),
        ("rule", f"face when score > {metrics['threshold']:.3g}; box right when IoU >= {metrics['iou_threshold']:g}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def verdict(model: dict, classic: dict | None) -> str:
    """Where a freshly trained model stands, in words: its test figures beside the classic finder's
    on the same pictures, and what usually helps when it is behind."""
    line = f"Your model: F1 {model['f1']:.2f}, mean IoU {model['mean_iou']:.2f} on {model['images']} test pictures"
    if not classic or "f1" not in classic:
        return line + "."
    line += f"; classic finder: F1 {classic['f1']:.2f}, mean IoU {classic['mean_iou']:.2f}."
    if model["f1"] >= classic["f1"]:
        return line + " Your model does better than the classic finder."
    advice = []
    if model["faces"] < 300:
        advice.append("more pictures of your face (move, turn, change the light)")
    if model["no_faces"] < model["faces"] / 2 or model.get("false_alarms", 0):
        advice.append("more pictures without a face")
    advice.append("more epochs")
    return line + " Your model is worse than the classic finder; what usually helps: " + ", ".join(advice) + "."

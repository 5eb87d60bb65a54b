"""Detection quality on labelled pictures: the accuracy figures the tutorial never showed.

A picture counts as a correct detection (true positive) when it has a face, the score is above the
threshold and the predicted box overlaps the labelled one by at least ``iou_threshold`` (IoU). A
confident box in the wrong place is both a false positive and a false negative, as in the usual
object-detection convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.data import Sample, load_image
from training.inference import Detector
from training.metrics import box_iou
from training.preprocess import box_to_pixels

# Pictures decoded and sent through the network at once.
_EVAL_CHUNK = 32


def _ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, 0.0 when nothing was counted (scikit-learn's zero_division=0)."""
    return numerator / denominator if denominator else 0.0


def evaluate_model(
    detector: Detector,
    samples: Sequence[Sample],
    *,
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict:
    """Run ``detector`` on every sample's picture and measure how well it finds the labelled faces.

    Returns a JSON-serialisable dict: ``images``, ``faces``, ``no_faces``, ``detected`` (score above
    the threshold), ``true_positives``, ``false_positives``, ``false_negatives``, ``true_negatives``,
    ``precision``, ``recall``, ``f1``, ``class_accuracy`` (face / no face right, ignoring the box),
    ``mean_iou`` (over the pictures with a face, of the predicted box whatever its score),
    ``threshold`` and ``iou_threshold``. Ratios with nothing to count are 0.0.

    Raises:
        ValueError: no samples.
        training.data.DataError: a picture cannot be read.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("no pictures to evaluate")

    has_face = np.array([s.has_face for s in samples], dtype=bool)
    scores = np.empty(len(samples), dtype=np.float64)
    ious = np.zeros(len(samples), dtype=np.float64)
    for start in range(0, len(samples), _EVAL_CHUNK):
        chunk = samples[start : start + _EVAL_CHUNK]
        images = [load_image(s.image_path) for s in chunk]
        detections = detector.detect_batch(images)
        for offset, (sample, image, detection) in enumerate(zip(chunk, images, detections, strict=True)):
            scores[start + offset] = detection.score
            if sample.has_face:
                height, width = image.shape[:2]
                label_px = box_to_pixels(sample.box, width, height)
                ious[start + offset] = box_iou(np.array([detection.box]), np.array([label_px]))[0]

    detected = scores > threshold
    well_placed = ious >= iou_threshold
    true_positives = int(np.sum(has_face & detected & well_placed))
    false_positives = int(np.sum(detected & ~(has_face & well_placed)))
    false_negatives = int(np.sum(has_face & ~(detected & well_placed)))
    true_negatives = int(np.sum(~has_face & ~detected))
    precision = _ratio(true_positives, true_positives + false_positives)
    recall = _ratio(true_positives, true_positives + false_negatives)
    faces = int(has_face.sum())
    return {
        "images": len(samples),
        "faces": faces,
        "no_faces": len(samples) - faces,
        "detected": int(detected.sum()),
        "true_positives": true_positives,
        "false_positives": false_positives,
        "false_negatives": false_negatives,
        "true_negatives": true_negatives,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "class_accuracy": float(np.mean(detected == has_face)),
        "mean_iou": float(ious[has_face].mean()) if faces else 0.0,
        "threshold": float(threshold),
        "iou_threshold": float(iou_threshold),
    }


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
        ("rule", f"face when score > {metrics['threshold']:g}; box right when IoU >= {metrics['iou_threshold']:g}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

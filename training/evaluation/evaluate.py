"""Detection quality on labelled pictures: the accuracy figures the tutorial never showed.

A picture counts as a correct detection (true positive) when it has a face, the score is above the
threshold and the predicted box overlaps the labelled one by at least ``iou_threshold`` (IoU). A
confident box in the wrong place is both a false positive and a false negative, as in the usual
object-detection convention.

A multi-face model (and the classic finder asked for every face) is measured over every labelled
face instead: AP50 (average precision at IoU 0.5, as PASCAL VOC / WIDER FACE compute it, from every
box it gives), and precision, recall and F1 over the faces at its score threshold
(:func:`summarize_faces`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.core.detection import Detection
from training.core.preprocess import box_to_pixels
from training.data.dataset import Sample
from training.data.pictures import load_image
from training.evaluation.metrics import AP_MIN_SCORE, FaceMatches, box_iou, detection_counts
from training.inference.detector import Detector

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

    A multi-face model (``detector.multi_face``) is measured over every face: see :func:`summarize_faces`.

    Raises:
        ValueError: no samples.
        training.data.dataset.DataError: a picture cannot be read.
    """
    threshold = detector.threshold if threshold is None else threshold
    if detector.multi_face:
        return summarize_faces(predict_faces(detector, samples), threshold, iou_threshold)
    return _evaluate(detector.detect_batch, samples, threshold, iou_threshold, chunk=_EVAL_CHUNK)


def evaluate_finder(
    finder: object,
    samples: Sequence[Sample],
    *,
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
    every_face: bool = False,
) -> dict:
    """:func:`evaluate_model` for a finder whose ``detect(frame)`` gives a Detection or None (no face):
    the classic finder, a pretrained detector. Same figures, so they compare side by side.

    ``every_face``: measure every face its ``detect_all(frame)`` finds, as a multi-face model is
    (:func:`summarize_faces`: AP50 and F1 over faces).
    """
    if every_face:
        found = _predict_faces(lambda frames: [finder.detect_all(frame) for frame in frames], samples, chunk=1)
        return summarize_faces(found, threshold, iou_threshold)

    def detect_all(frames: list[np.ndarray]) -> list[Detection | None]:
        return [finder.detect(frame) for frame in frames]

    return _evaluate(detect_all, samples, threshold, iou_threshold, chunk=1)


@dataclass
class Predictions:
    """One pass of a detector over labelled pictures, picture by picture: what the figures of
    :func:`evaluate_model` and the result pictures of :mod:`training.evaluation.report` are both made from."""

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
        training.data.dataset.DataError: a picture cannot be read.
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
    clock = [0.0]
    for index, (sample, image, detection) in enumerate(_timed_chunks(detect_all, samples, chunk, clock)):
        if detection is None:
            continue  # no face found: score 0, no box
        scores[index] = detection.score
        boxes[index] = detection.box
        if sample.has_face:
            height, width = image.shape[:2]
            label_px = box_to_pixels(sample.box, width, height)
            ious[index] = box_iou(np.array([detection.box]), np.array([label_px]))[0]
    return Predictions(samples, has_face, scores, ious, boxes, clock[0])


def _timed_chunks(detect: Callable[[list[np.ndarray]], list], samples: list[Sample], chunk: int,
                  clock: list[float]) -> Iterator[tuple[Sample, np.ndarray, Any]]:
    """``(sample, picture, answer)`` for every sample, pictures read and detected ``chunk`` at a time (a
    whole split never sits in memory); ``clock[0]`` adds up the time spent in ``detect`` alone."""
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        images = [load_image(s.image_path) for s in part]
        began = time.perf_counter()
        detections = detect(images)
        clock[0] += time.perf_counter() - began
        yield from zip(part, images, detections, strict=True)


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


@dataclass
class FacePredictions:
    """One pass of a detector over labelled pictures, every face: what :func:`summarize_faces` and the
    multi-face result pictures of :mod:`training.evaluation.report` are made from."""

    samples: list[Sample]
    found: list[list[Detection]]  # per picture, every box scoring at least AP_MIN_SCORE, best first (pixels)
    truths: list[np.ndarray]  # per picture, (F, 4) the labelled faces in pixels
    seconds: float  # time spent in the detector itself

    def matches(self, iou_threshold: float = 0.5) -> FaceMatches:
        """Every box matched to the labelled faces (see :class:`training.evaluation.metrics.FaceMatches`)."""
        return FaceMatches([[(d.score, d.box) for d in boxes] for boxes in self.found], self.truths, iou_threshold)


def predict_faces(detector: Detector, samples: Sequence[Sample]) -> FacePredictions:
    """Run a multi-face ``detector`` once over ``samples``, keeping every box that scores at least
    :data:`~training.evaluation.metrics.AP_MIN_SCORE` (AP needs the whole curve, not only the boxes above the
    model's threshold; the boxes kept above it are the ones ``detect_all`` gives).

    Raises:
        ValueError: no samples.
        training.data.dataset.DataError: a picture cannot be read.
    """
    def detect_all(frames: list[np.ndarray]) -> list[list[Detection]]:
        return detector.detect_all_batch(frames, threshold=AP_MIN_SCORE)

    return _predict_faces(detect_all, samples, chunk=_EVAL_CHUNK)


def _predict_faces(detect_all: Callable[[list[np.ndarray]], list[list[Detection]]], samples: Sequence[Sample],
                   chunk: int) -> FacePredictions:
    samples = list(samples)
    if not samples:
        raise ValueError("no pictures to evaluate")
    found: list[list[Detection]] = []
    truths: list[np.ndarray] = []
    clock = [0.0]
    for sample, image, boxes in _timed_chunks(detect_all, samples, chunk, clock):
        height, width = image.shape[:2]
        found.append(sorted(boxes, key=lambda d: -d.score))
        faces = sample.boxes if sample.has_face else ()
        truths.append(np.array([box_to_pixels(box, width, height) for box in faces], np.float64).reshape(-1, 4))
    return FacePredictions(samples, found, truths, clock[0])


def summarize_faces(predictions: FacePredictions, threshold: float, iou_threshold: float = 0.5) -> dict:
    """Figures over every labelled face: ``ap50`` (AP at ``iou_threshold``, every box counts, whatever
    its score), and at the score threshold: ``precision``, ``recall`` and ``f1`` over faces,
    ``true_positives`` (faces found), ``false_positives`` (boxes on no face, or a second box on one),
    ``false_negatives`` (faces missed), ``detected`` (boxes kept), ``mean_iou`` (of the faces found),
    ``false_alarms`` (pictures without a face where a box was kept), ``class_accuracy`` (pictures
    where "some face / none" is right), ``true_negatives`` (pictures rightly left empty); also
    ``images``, ``faces`` (labelled faces), ``face_pictures``, ``no_faces`` (pictures),
    ``ms_per_picture``, ``threshold``, ``iou_threshold`` and ``multi_face`` (True)."""
    matches = predictions.matches(iou_threshold)
    counts = matches.counts(threshold)
    images = len(predictions.samples)
    kept = matches.scores > threshold
    found = matches.true_positive & kept
    has_face = np.array([len(t) > 0 for t in predictions.truths], bool)
    reported = np.zeros(images, bool)
    reported[matches.picture[kept]] = True
    return {
        "images": images,
        "faces": int(sum(len(t) for t in predictions.truths)),
        "face_pictures": int(has_face.sum()),
        "no_faces": int((~has_face).sum()),
        "ap50" if iou_threshold == 0.5 else "ap": matches.average_precision(),
        **counts,
        "class_accuracy": float(np.mean(reported == has_face)),
        "mean_iou": float(matches.ious[found].mean()) if found.any() else 0.0,
        "false_alarms": int(np.sum(reported & ~has_face)),
        "true_negatives": int(np.sum(~reported & ~has_face)),
        "ms_per_picture": 1000 * predictions.seconds / images,
        "threshold": float(threshold),
        "iou_threshold": float(iou_threshold),
        "multi_face": True,
    }


def format_table(metrics: dict) -> str:
    """A short human-readable table of :func:`evaluate_model`'s result."""
    if metrics.get("multi_face"):
        return _format_faces_table(metrics)
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
    return _table(rows)


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def ap_key(metrics: dict) -> str:
    """The key of a multi-face result's AP: ``ap50`` at IoU 0.5, ``ap`` at any other."""
    return "ap50" if "ap50" in metrics else "ap"


def _format_faces_table(metrics: dict) -> str:
    """:func:`format_table` for figures over every face (:func:`summarize_faces`)."""
    iou = metrics["iou_threshold"]
    return _table([
        ("pictures", f"{metrics['images']}  ({metrics['faces']} faces in {metrics['face_pictures']} pictures, "
                     f"{metrics['no_faces']} without a face)"),
        (f"AP{round(iou * 100)}" if iou * 100 == round(iou * 100) else f"AP@{iou:g}",
         f"{metrics[ap_key(metrics)]:.3f}  (every face, every box: PASCAL VOC / WIDER FACE)"),
        ("precision", f"{metrics['precision']:.3f}  (boxes on a face)"),
        ("recall", f"{metrics['recall']:.3f}  (faces found)"),
        ("F1", f"{metrics['f1']:.3f}"),
        ("mean IoU", f"{metrics['mean_iou']:.3f}  (of the faces found)"),
        ("found / false / missed",
         f"{metrics['true_positives']} / {metrics['false_positives']} / {metrics['false_negatives']}"),
        ("false alarms", f"{metrics['false_alarms']} of {metrics['no_faces']} pictures without a face"),
        ("rule", f"a face when score > {metrics['threshold']:.3g}; box right when IoU >= {iou:g}, one box a face"),
    ])


def verdict(model: dict, classic: dict | None, real: dict | None = None, real_classic: dict | None = None,
            pretrained_start: bool = False) -> str:
    """Where a freshly trained model stands, in words: its test figures beside the classic finder's
    on the same pictures, and what usually helps when it is behind. A multi-face model is compared by AP50.

    ``real`` / ``real_classic``: both on real photographs no training set uses (training.evaluation.realphotos). A
    model is only called better than the classic finder when it is on those too: the test split shows
    the training pictures' look, and a model can learn that look instead of faces. ``pretrained_start``:
    the model started from the pretrained face detector (the advice then is about the pictures)."""
    if model.get("multi_face"):
        return _faces_verdict(model, classic, real, real_classic, pretrained_start)
    line = f"Your model: F1 {model['f1']:.2f}, mean IoU {model['mean_iou']:.2f} on {model['images']} test pictures"
    if not classic or "f1" not in classic:
        return line + "." + _real_photos_verdict(real, real_classic)
    line += f"; classic finder: F1 {classic['f1']:.2f}, mean IoU {classic['mean_iou']:.2f}."
    if model["f1"] >= classic["f1"]:
        return line + _better_or_only_on_test(real, real_classic, pretrained_start)
    return line + _advice(model, "more pictures of your face (move, turn, change the light)",
                          model["no_faces"] < model["faces"] / 2) + _real_photos_verdict(real, real_classic)


def _real_photos_verdict(real: dict | None, real_classic: dict | None) -> str:
    """The sentence on real photographs: AP50 over every face, beside the classic finder's."""
    if not real or "ap50" not in real:
        return ""
    text = (f" On real photographs no one trained on ({real['faces']} faces in {real['frames']} frames): "
            f"AP50 {real['ap50']:.2f}")
    return text + (f" (classic finder {real_classic['ap50']:.2f})." if real_classic else ".")


def _better_or_only_on_test(real: dict | None, real_classic: dict | None, pretrained_start: bool = False) -> str:
    """"Better than the classic finder", unless real photographs say otherwise."""
    if real and real_classic and "ap50" in real and real["ap50"] < real_classic["ap50"]:
        helps = ("add pictures from your own webcam (your room, near and far, several people) and fewer pasted "
                 "or look-alike ones" if pretrained_start else
                 "train from the pretrained face detector (backbone blazeface) and add pictures from your own webcam")
        return (" It does better than the classic finder on your test pictures, but not on real photographs"
                + _real_photos_verdict(real, real_classic).replace(" On real photographs", "") +
                f" It has learned the look of your training pictures more than faces: {helps}.")
    return " Your model does better than the classic finder." + _real_photos_verdict(real, real_classic)


def _advice(model: dict, more_faces: str, few_no_faces: bool) -> str:
    """What usually helps a model that is behind the classic finder."""
    advice = []
    if model["faces"] < 300:
        advice.append(more_faces)
    if few_no_faces or model.get("false_alarms", 0):
        advice.append("more pictures without a face")
    advice.append("more epochs")
    return " Your model is worse than the classic finder; what usually helps: " + ", ".join(advice) + "."


def _faces_verdict(model: dict, classic: dict | None, real: dict | None, real_classic: dict | None,
                   pretrained_start: bool) -> str:
    """:func:`verdict` for figures over every face (the classic finder measured on every face it finds)."""
    ap = ap_key(model)
    line = (f"Your model: AP50 {model[ap]:.2f}, F1 {model['f1']:.2f} over {model['faces']} faces in "
            f"{model['images']} test pictures")
    if not classic or ap not in classic:
        return line + "." + _real_photos_verdict(real, real_classic)
    line += f"; classic finder: AP50 {classic[ap]:.2f}, F1 {classic['f1']:.2f}."
    if model[ap] >= classic[ap]:
        return line + _better_or_only_on_test(real, real_classic, pretrained_start)
    return line + _advice(model, "more labelled faces (several people, moving, in changing light)",
                          model["no_faces"] < model["images"] / 5) + _real_photos_verdict(real, real_classic)

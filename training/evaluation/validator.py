"""One evaluation path for every model, as Ultralytics' ``BaseValidator`` serves both training and ``val``.

Every model gives a list of faces per picture: a multi-face model every box it finds (down to
:data:`~training.evaluation.metrics.AP_MIN_SCORE`, so AP sees the whole curve), a single-face model
its one box (whatever the score), the classic finder what it finds. :class:`Predictions` holds one
such pass over labelled pictures; :func:`measure` matches it once
(:class:`~training.evaluation.metrics.FaceMatches`) and gives one :class:`Result` whose columns are
F1, AP50, mean IoU, class accuracy, false alarms and the counts. The trainer's validation every
epoch (:func:`predict_network`), ``evaluate`` (:func:`predict_model`, :func:`predict_finder`), the
result pictures of :mod:`training.evaluation.report` and the benchmarks all go through here.

A single-face model is "every face, one box per picture": its picture-level figures are these
matches with one box and one face (the largest) per picture. Only its mean IoU keeps its own
definition (each face picture's box whatever its score, so a model that places boxes well but
scores them low still shows it), and its ``metrics.json`` keys stay those it always had.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from keras import ops

from training.core.boxes import faces_from_cells
from training.core.detection import Detection, FaceDetector
from training.core.preprocess import box_to_pixels
from training.data.dataset import Sample
from training.data.pictures import load_image
from training.evaluation.metrics import AP_MIN_SCORE, FaceMatches

if TYPE_CHECKING:  # the type only: the detector module is imported by whoever made the detector
    from training.inference.detector import Detector

#: Pictures decoded and sent through the network at once.
EVAL_CHUNK = 32


@dataclass
class Predictions:
    """One pass of a detector over labelled pictures: what :func:`measure` and the result pictures are made from."""

    found: list[list[Detection]]  # per picture, every box it gave, best first (pixels, or [0, 1] in training)
    truths: list[np.ndarray]  # per picture, (F, 4) the labelled faces in the same units
    every_face: bool  # False: a single-face model, one box per picture and its largest face the truth
    seconds: float = 0.0  # time spent in the detector itself
    samples: list[Sample] = field(default_factory=list)  # the pictures (empty for the trainer's batches)
    _matches: dict[float, FaceMatches] = field(default_factory=dict, repr=False, compare=False)

    @property
    def images(self) -> int:
        return len(self.found)

    def matches(self, iou_threshold: float = 0.5) -> FaceMatches:
        """Every box matched to the labelled faces (once per IoU threshold)."""
        if iou_threshold not in self._matches:
            self._matches[iou_threshold] = FaceMatches([[(d.score, d.box) for d in boxes] for boxes in self.found],
                                                       self.truths, iou_threshold)
        return self._matches[iou_threshold]

    def top_ious(self, iou_threshold: float = 0.5) -> np.ndarray:
        """(N,) each picture's best-scoring box's IoU with the face it overlaps most (0: no box or no face)."""
        matches = self.matches(iou_threshold)
        result = np.zeros(self.images)
        first = np.unique(matches.picture, return_index=True)[1] if len(matches.picture) else np.zeros(0, int)
        result[matches.picture[first]] = matches.best_ious[first]
        return result


@dataclass(frozen=True)
class Result:
    """Every figure of one :class:`Predictions` at one threshold: the columns of ``metrics.json``'s ``test``."""

    every_face: bool
    images: int
    faces: int  # labelled faces
    face_pictures: int
    ap: float  # AP at iou_threshold (every box counts, whatever its score)
    true_positives: int  # faces found
    false_positives: int  # boxes on no face (or a second box on one)
    false_negatives: int  # faces missed
    true_negatives: int  # pictures without a face rightly left empty
    detected: int  # boxes kept at the threshold
    precision: float
    recall: float
    f1: float
    class_accuracy: float  # pictures where "some face / none" is right
    mean_iou: float  # see the module: of the faces found, or (one box a picture) of each face picture's box
    false_alarms: int  # pictures without a face where a box was kept
    ms_per_picture: float
    threshold: float
    iou_threshold: float

    @property
    def no_faces(self) -> int:
        return self.images - self.face_pictures

    def as_dict(self) -> dict:
        """The JSON figures, with the keys each kind of model always had (the Train tab and the docs read them):
        a single-face model no ``ap50``/``face_pictures``/``multi_face``."""
        counts = {"true_positives": self.true_positives, "false_positives": self.false_positives,
                  "false_negatives": self.false_negatives}
        rest = {"precision": self.precision, "recall": self.recall, "f1": self.f1}
        timing = {"ms_per_picture": self.ms_per_picture, "threshold": float(self.threshold),
                  "iou_threshold": float(self.iou_threshold)}
        if not self.every_face:
            return {"images": self.images, "faces": self.faces, "no_faces": self.no_faces, **counts,
                    "true_negatives": self.true_negatives, "detected": self.detected, **rest,
                    "class_accuracy": self.class_accuracy, "mean_iou": self.mean_iou,
                    "false_alarms": self.false_alarms, **timing}
        return {"images": self.images, "faces": self.faces, "face_pictures": self.face_pictures,
                "no_faces": self.no_faces, ap_name(self.iou_threshold): self.ap, **counts, "detected": self.detected,
                **rest, "class_accuracy": self.class_accuracy, "mean_iou": self.mean_iou,
                "false_alarms": self.false_alarms, "true_negatives": self.true_negatives, **timing, "multi_face": True}


def ap_name(iou_threshold: float) -> str:
    """``ap50`` at IoU 0.5, ``ap`` at any other."""
    return "ap50" if iou_threshold == 0.5 else "ap"


def measure(predictions: Predictions, threshold: float | None = None, iou_threshold: float = 0.5) -> Result:
    """Match ``predictions`` once and read every figure at ``threshold`` (a box counts above it).

    ``threshold`` None: the one with the best F1 (ties: the middle of the best run), what training
    stores with the model; for every face not below the lowest score kept (:data:`AP_MIN_SCORE`).
    """
    matches = predictions.matches(iou_threshold)
    if threshold is None:
        best, _ = matches.best_threshold()
        threshold = max(best, AP_MIN_SCORE) if predictions.every_face else best
    counts = matches.counts(threshold)
    images = predictions.images
    kept = matches.scores > threshold
    found = matches.true_positive & kept
    has_face = matches.faces_per_picture > 0
    reported = np.zeros(images, bool)
    reported[matches.picture[kept]] = True
    if predictions.every_face:
        mean_iou = float(matches.ious[found].mean()) if found.any() else 0.0
    else:  # each face picture's box, whatever its score
        mean_iou = float(predictions.top_ious(iou_threshold)[has_face].mean()) if has_face.any() else 0.0
    return Result(
        every_face=predictions.every_face, images=images, faces=matches.faces, face_pictures=int(has_face.sum()),
        ap=matches.average_precision(), true_positives=counts["true_positives"],
        false_positives=counts["false_positives"], false_negatives=counts["false_negatives"],
        true_negatives=int(np.sum(~reported & ~has_face)), detected=counts["detected"],
        precision=counts["precision"], recall=counts["recall"], f1=counts["f1"],
        class_accuracy=float(np.mean(reported == has_face)) if images else 0.0, mean_iou=mean_iou,
        false_alarms=int(np.sum(reported & ~has_face)),
        ms_per_picture=1000 * predictions.seconds / images if images else 0.0,
        threshold=float(threshold), iou_threshold=float(iou_threshold),
    )


# ---------------------------------------------------------------------------------------------- passes


def predict(detect: Callable[[list[np.ndarray]], list], samples: Sequence[Sample], *, every_face: bool,
            chunk: int | None = None) -> Predictions:
    """Run ``detect`` (pictures -> per picture a list of Detections, one Detection, or None) over ``samples``,
    ``chunk`` pictures at a time (default :data:`EVAL_CHUNK`: a whole split never sits in memory).

    Raises:
        ValueError: no samples.
        training.data.dataset.DataError: a picture cannot be read.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("no pictures to evaluate")
    found: list[list[Detection]] = []
    truths: list[np.ndarray] = []
    clock = [0.0]
    for sample, image, answer in _timed_chunks(detect, samples, chunk or EVAL_CHUNK, clock):
        height, width = image.shape[:2]
        boxes = [] if answer is None else [answer] if isinstance(answer, Detection) else list(answer)
        found.append(sorted(boxes, key=lambda d: -d.score))
        faces = (sample.boxes if every_face else (sample.box,)) if sample.has_face else ()
        truths.append(np.array([box_to_pixels(box, width, height) for box in faces], np.float64).reshape(-1, 4))
    return Predictions(found, truths, every_face, clock[0], samples)


def predict_model(detector: Detector, samples: Sequence[Sample]) -> Predictions:
    """A trained model's pass (a :class:`training.inference.detector.Detector`): a multi-face model keeps
    every box scoring at least :data:`AP_MIN_SCORE` (AP needs the whole curve; the boxes above its threshold
    are the ones ``detect_all`` gives), a single-face model its one box."""
    if detector.multi_face:
        return predict(lambda frames: detector.detect_all_batch(frames, threshold=AP_MIN_SCORE), samples,
                       every_face=True)
    return predict(detector.detect_batch, samples, every_face=False)


def predict_finder(finder: FaceDetector, samples: Sequence[Sample], every_face: bool = False) -> Predictions:
    """A finder's pass, one picture at a time: ``detect(frame)`` (a Detection or None), or with
    ``every_face`` every face its ``detect_all(frame)`` finds."""
    if every_face:
        return predict(lambda frames: [finder.detect_all(frame) for frame in frames], samples, every_face=True,
                       chunk=1)
    return predict(lambda frames: [finder.detect(frame) for frame in frames], samples, every_face=False, chunk=1)


def predict_network(network: Any, batches: Any, every_face: bool) -> tuple[Predictions, np.ndarray] | None:
    """The trainer's pass over its validation batches (boxes in [0, 1]): the predictions, and every
    picture's face score (the first output); None when an output is NaN or infinite (the losses clip
    them, so a finite loss does not prove finite outputs).

    A multi-face network's faces are its cells thinned by NMS as ``detect_all`` does; its batches carry
    every face and their mask (``targets[2]``, ``targets[3]``).
    """
    found: list[list[Detection]] = []
    truths: list[np.ndarray] = []
    scores = []
    for index in range(len(batches)):
        x, targets = batches[index]
        outputs = [ops.convert_to_numpy(out) for out in network(x, training=False)]
        if not all(np.isfinite(out).all() for out in outputs):
            return None
        class_pred, box_pred = outputs[0][:, 0], outputs[1]
        scores.append(class_pred)
        if every_face:
            found.extend([Detection(s, b) for s, b in faces_from_cells(cell_scores, cell_boxes, AP_MIN_SCORE)]
                         for cell_scores, cell_boxes in zip(outputs[2], outputs[3], strict=True))
            faces, mask = np.asarray(targets[2]), np.asarray(targets[3])
            truths.extend(picture[picture_mask > 0] for picture, picture_mask in zip(faces, mask, strict=True))
        else:
            found.extend([Detection(float(s), tuple(b))] for s, b in zip(class_pred, box_pred, strict=True))
            has_face = np.asarray(targets[0])[:, 0] > 0.5
            truths.extend(np.asarray(box, np.float64).reshape(-1, 4)[:int(face)]
                          for box, face in zip(np.asarray(targets[1]), has_face, strict=True))
    return Predictions(found, truths, every_face), np.concatenate(scores) if scores else np.zeros(0)


def _timed_chunks(detect: Callable[[list[np.ndarray]], list], samples: list[Sample], chunk: int,
                  clock: list[float]) -> Iterator[tuple[Sample, np.ndarray, Any]]:
    """``(sample, picture, answer)`` for every sample, pictures read and detected ``chunk`` at a time;
    ``clock[0]`` adds up the time spent in ``detect`` alone."""
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        images = [load_image(s.image_path) for s in part]
        began = time.perf_counter()
        detections = detect(images)
        clock[0] += time.perf_counter() - began
        yield from zip(part, images, detections, strict=True)

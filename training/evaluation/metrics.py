"""Matching detections to labelled faces, once, for every model: AP50, and precision, recall and F1 at
any threshold (:class:`FaceMatches`); and the ``keras.ops`` IoU the training losses and metrics use.

A single-face model is "every face, one box per picture": its picture-level figures (a confident box
in the wrong place is both a false positive and a false negative) are the same matches with one box
and at most one face per picture, so it is measured here too."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import ops

from training.core.boxes import box_iou  # noqa: F401  (the one array IoU; re-exported for old imports)


def box_iou_tensor(y_true, y_pred):
    """``keras.ops`` form of :func:`training.core.boxes.box_iou` for the losses and the IoU metric inside
    training; returns (N,) for (N, 4) boxes (any shapes that broadcast, boxes on the last axis)."""
    t = ops.cast(y_true, "float32")
    p = ops.cast(y_pred, "float32")
    tx1, tx2 = ops.minimum(t[..., 0], t[..., 2]), ops.maximum(t[..., 0], t[..., 2])
    ty1, ty2 = ops.minimum(t[..., 1], t[..., 3]), ops.maximum(t[..., 1], t[..., 3])
    px1, px2 = ops.minimum(p[..., 0], p[..., 2]), ops.maximum(p[..., 0], p[..., 2])
    py1, py2 = ops.minimum(p[..., 1], p[..., 3]), ops.maximum(p[..., 1], p[..., 3])
    iw = ops.maximum(ops.minimum(tx2, px2) - ops.maximum(tx1, px1), 0.0)
    ih = ops.maximum(ops.minimum(ty2, py2) - ops.maximum(ty1, py1), 0.0)
    inter = iw * ih
    union = (tx2 - tx1) * (ty2 - ty1) + (px2 - px1) * (py2 - py1) - inter
    return ops.where(union > 0, inter / ops.maximum(union, 1e-12), 0.0)


#: The lowest score a detection needs to enter an AP figure: AP is the area under the whole
#: precision-recall curve, so every box counts (WIDER FACE's and Ultralytics' evaluations also keep
#: the lowest-scoring boxes); below this a cell is noise that only costs time to match.
AP_MIN_SCORE = 0.01

#: One detection: (score, [x1, y1, x2, y2]).
FaceDetection = tuple[float, Sequence[float]]


class FaceMatches:
    """Every detection of every picture matched to the labelled faces, as PASCAL VOC / WIDER FACE do.

    All detections are sorted by score (highest first); each in turn is matched to the unmatched
    labelled face of its own picture that it overlaps most, when that overlap is at least
    ``iou_threshold``: a true positive. A detection with no such face (a second box on a face
    already found included) is a false positive. Because detections are taken best first, the
    matches of the detections above any score threshold are the same as those of a pass over those
    detections alone: one pass gives the figures at every threshold (:meth:`counts`,
    :meth:`best_threshold`) and the area under the curve (:meth:`average_precision`).

    Boxes may be in pixels or normalised (IoU does not change when both axes are scaled), but the
    detections and the faces of one picture must use the same units.
    """

    def __init__(self, detections: Sequence[Sequence[FaceDetection]], truths: Sequence[Sequence],
                 iou_threshold: float = 0.5) -> None:
        if len(detections) != len(truths):
            raise ValueError(f"detections for {len(detections)} pictures but faces for {len(truths)}")
        self.iou_threshold = float(iou_threshold)
        self.faces = sum(len(t) for t in truths)
        picture, scores, boxes = [], [], []
        for index, found in enumerate(detections):
            for score, box in found:
                picture.append(index)
                scores.append(float(score))
                boxes.append(np.asarray(box, np.float64).reshape(4))
        scores_array = np.asarray(scores, np.float64)
        order = np.argsort(-scores_array, kind="stable")  # equal scores keep their given order
        #: (M,) every detection's score, highest first.
        self.scores = scores_array[order]
        #: (M,) whether that detection found a face (True) or is a false positive.
        self.true_positive = np.zeros(len(order), bool)
        #: (M,) the IoU with the face it was matched to (0 for a false positive).
        self.ious = np.zeros(len(order), np.float64)
        #: (M,) the index of that face among its picture's faces (-1 for a false positive).
        self.face = np.full(len(order), -1, np.int64)
        #: (M,) the IoU with the face of its picture it overlaps most, matched or not (0 without a face).
        self.best_ious = np.zeros(len(order), np.float64)
        truth_arrays = [np.asarray(t, np.float64).reshape(-1, 4) for t in truths]
        sorted_boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[order]
        where = np.asarray(picture, np.int64)[order]
        # A detection can only find a face of its own picture: each picture's detections (best first) against
        # its faces, their overlaps computed at once.
        grouped = np.argsort(where, kind="stable")
        starts = np.searchsorted(where[grouped], np.arange(len(truth_arrays) + 1))
        for index, faces in enumerate(truth_arrays):
            ranks = grouped[starts[index] : starts[index + 1]]
            if not len(faces) or not len(ranks):
                continue
            overlap = box_iou(sorted_boxes[ranks][:, None, :], faces[None, :, :])
            self.best_ious[ranks] = overlap.max(axis=1)
            free = np.ones(len(faces), bool)
            for rank, row in zip(ranks, overlap, strict=True):
                row = np.where(free, row, -1.0)  # a face already found cannot be found twice
                best = int(np.argmax(row))
                if row[best] >= self.iou_threshold:
                    free[best] = False
                    self.true_positive[rank] = True
                    self.ious[rank] = row[best]
                    self.face[rank] = best
                    if not free.any():
                        break  # the rest of this picture's boxes find nothing
        #: (M, 4) every detection's box, in the same order.
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[order]
        #: (M,) each detection's place among all the detections as given (pictures one after another).
        self.given = order.astype(np.int64)
        #: (M,) the picture of each detection, in the same order.
        self.picture = np.asarray(picture, np.int64)[order] if picture else np.zeros(0, np.int64)
        #: (N,) how many faces each picture has.
        self.faces_per_picture = np.array([len(t) for t in truth_arrays], np.int64)

    def _steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, true positives, false positives) at the end of each run of equal scores: detections
        of equal score are kept or dropped together by any threshold, so they make one step."""
        tp = np.cumsum(self.true_positive)
        fp = np.cumsum(~self.true_positive)
        last = np.flatnonzero(np.r_[self.scores[1:] != self.scores[:-1], True]) if len(self.scores) else []
        return self.scores[last], tp[last], fp[last]

    def average_precision(self) -> float:
        """Area under the precision-recall curve, all-point interpolated (PASCAL VOC since 2010, WIDER
        FACE): precision made monotone (the best precision at this recall or more), summed over the
        recall steps. 0.0 without a labelled face."""
        if not self.faces:
            return 0.0
        _, tp, fp = self._steps()
        recall = np.concatenate([[0.0], tp / self.faces, [1.0]])
        precision = np.concatenate([[0.0], tp / np.maximum(tp + fp, 1), [0.0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        changes = np.flatnonzero(recall[1:] != recall[:-1])
        return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))

    def counts(self, threshold: float) -> dict:
        """Faces found, missed and false boxes when a detection counts above ``threshold``: precision,
        recall and F1 over the faces (``detected`` is the number of boxes kept)."""
        kept = self.scores > threshold
        tp = int(np.sum(self.true_positive & kept))
        fp = int(np.sum(kept)) - tp
        fn = self.faces - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / self.faces if self.faces else 0.0
        return {"true_positives": tp, "false_positives": fp, "false_negatives": fn, "detected": tp + fp,
                "precision": precision, "recall": recall,
                "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}

    def sweep(self, extra: Sequence[float] = ()) -> dict[str, np.ndarray]:
        """Precision, recall and F1 at every threshold that changes them (midpoints between neighbouring
        distinct scores, so a threshold sits between the pictures it separates), and at the ``extra`` ones (for a plot), ascending."""
        distinct = np.unique(np.concatenate([[0.0, 1.0], np.clip(self.scores, 0.0, 1.0)]))
        candidates = (distinct[:-1] + distinct[1:]) / 2
        if len(extra):
            candidates = np.unique(np.concatenate([candidates, np.asarray(extra, np.float64)]))
        # Kept at threshold t: the detections scoring above it; scores are sorted highest first.
        kept = np.searchsorted(-self.scores, -candidates, side="left")
        tp_cum = np.concatenate([[0], np.cumsum(self.true_positive)])
        tp, detected = tp_cum[kept], kept
        precision = np.where(detected > 0, tp / np.maximum(detected, 1), 0.0)
        recall = tp / self.faces if self.faces else np.zeros(len(candidates))
        total = precision + recall
        f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1.0), 0.0)
        return {"threshold": candidates, "precision": precision, "recall": recall, "f1": f1,
                "detected": detected.astype(np.int64)}

    def best_threshold(self) -> tuple[float, float]:
        """The score threshold with the highest F1 over all faces (ties: the middle of the best run), and
        that F1: what a trained model stores as its threshold."""
        swept = self.sweep()
        f1s = swept["f1"]
        best = np.flatnonzero(f1s == f1s.max())
        return float(swept["threshold"][best[len(best) // 2]]), float(f1s.max())


def average_precision(detections: Sequence[Sequence[FaceDetection]], truths: Sequence[Sequence],
                      iou_threshold: float = 0.5) -> float:
    """AP at ``iou_threshold`` (AP50 by default) as PASCAL VOC and WIDER FACE compute it: every face of
    every picture counts (see :class:`FaceMatches` for the matching and the curve).

    Args:
        detections: per picture, a list of ``(score, [x1, y1, x2, y2])``.
        truths: per picture, a list of labelled boxes ``[x1, y1, x2, y2]`` (same units as its detections).

    Returns 0.0 when there is no labelled face (nothing to find). Detections of equal score make one
    step of the curve, so their order does not change the result.
    """
    return FaceMatches(detections, truths, iou_threshold).average_precision()

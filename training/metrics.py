"""Box overlap (IoU), the accuracy measure the tutorial lacks, in NumPy and in ``keras.ops``."""

from __future__ import annotations

import numpy as np
from keras import ops


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (N, 4) arrays of ``[x1, y1, x2, y2]`` boxes (corners in any order)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    ax1, ax2 = np.minimum(a[:, 0], a[:, 2]), np.maximum(a[:, 0], a[:, 2])
    ay1, ay2 = np.minimum(a[:, 1], a[:, 3]), np.maximum(a[:, 1], a[:, 3])
    bx1, bx2 = np.minimum(b[:, 0], b[:, 2]), np.maximum(b[:, 0], b[:, 2])
    by1, by2 = np.minimum(b[:, 1], b[:, 3]), np.maximum(b[:, 1], b[:, 3])
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou_tensor(y_true, y_pred):
    """``keras.ops`` form of :func:`box_iou` for use inside training; returns (N,)."""
    t = ops.cast(y_true, "float32")
    p = ops.cast(y_pred, "float32")
    tx1, tx2 = ops.minimum(t[:, 0], t[:, 2]), ops.maximum(t[:, 0], t[:, 2])
    ty1, ty2 = ops.minimum(t[:, 1], t[:, 3]), ops.maximum(t[:, 1], t[:, 3])
    px1, px2 = ops.minimum(p[:, 0], p[:, 2]), ops.maximum(p[:, 0], p[:, 2])
    py1, py2 = ops.minimum(p[:, 1], p[:, 3]), ops.maximum(p[:, 1], p[:, 3])
    iw = ops.maximum(ops.minimum(tx2, px2) - ops.maximum(tx1, px1), 0.0)
    ih = ops.maximum(ops.minimum(ty2, py2) - ops.maximum(ty1, py1), 0.0)
    inter = iw * ih
    union = (tx2 - tx1) * (ty2 - ty1) + (px2 - px1) * (py2 - py1) - inter
    return ops.where(union > 0, inter / ops.maximum(union, 1e-12), 0.0)


def detection_counts(has_face: np.ndarray, scores: np.ndarray, ious: np.ndarray, threshold: float,
                     iou_threshold: float = 0.5) -> dict:
    """Precision, recall and F1 of one-face-per-picture detections at a score threshold.

    A picture is a true positive when it has a face, the score is above ``threshold`` and the box
    overlaps the face by at least ``iou_threshold``; a confident box in the wrong place is both a
    false positive and a false negative (the usual object-detection convention).
    """
    has_face = np.asarray(has_face, bool)
    detected = np.asarray(scores) > threshold
    well_placed = np.asarray(ious) >= iou_threshold
    tp = int(np.sum(has_face & detected & well_placed))
    fp = int(np.sum(detected & ~(has_face & well_placed)))
    fn = int(np.sum(has_face & ~(detected & well_placed)))
    tn = int(np.sum(~has_face & ~detected))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "true_positives": tp, "false_positives": fp, "false_negatives": fn, "true_negatives": tn,
        "detected": int(detected.sum()), "precision": precision, "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def best_f1_threshold(has_face: np.ndarray, scores: np.ndarray, ious: np.ndarray,
                      iou_threshold: float = 0.5) -> tuple[float, float]:
    """The score threshold with the highest F1 (ties: the middle of the best run) and that F1.

    Candidates are the midpoints between neighbouring distinct scores, so the threshold sits
    between the pictures it separates rather than on one of them.
    """
    scores = np.asarray(scores, np.float64)
    distinct = np.unique(np.concatenate([[0.0, 1.0], np.clip(scores, 0.0, 1.0)]))
    candidates = (distinct[:-1] + distinct[1:]) / 2
    f1s = np.array([detection_counts(has_face, scores, ious, t, iou_threshold)["f1"] for t in candidates])
    best = np.flatnonzero(f1s == f1s.max())
    return float(candidates[best[len(best) // 2]]), float(f1s.max())

"""Box corners in pixels: one way to order them and keep them inside a picture.

A rectangle may be dragged (in labelme, in the Label tab) from any corner, and a detector's box may
reach past the picture's edge; every reader and writer of boxes orders and clips them here, so a box
means the same thing wherever it comes from. Free of Qt and TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]

#: Non-maximum suppression's overlap: a box that overlaps a better one by more (IoU) is the same face.
#: Cells around a face box it with IoU 0.6-0.9; two people side by side overlap far less.
NMS_IOU = 0.4


def ordered(box: Sequence[float]) -> Box:
    """``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``, whichever corners were given first."""
    x1, x2 = sorted((float(box[0]), float(box[2])))
    y1, y2 = sorted((float(box[1]), float(box[3])))
    return (x1, y1, x2, y2)


def clipped(box: Sequence[float], width: float, height: float) -> Box:
    """The box ordered and cut to the ``width`` x ``height`` picture (it may come out empty)."""
    x1, y1, x2, y2 = ordered(box)
    return (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))


def clamp_box(box: Sequence[float], width: float, height: float, min_size: float = 1.0) -> Box | None:
    """The box ordered and clipped to the picture; None when less than ``min_size`` pixels wide or high
    is left (a click rather than a drag, or a box beside the picture)."""
    x1, y1, x2, y2 = clipped(box, width, height)
    if x2 - x1 < min_size or y2 - y1 < min_size:
        return None
    return (x1, y1, x2, y2)


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of ``[x1, y1, x2, y2]`` boxes (corners in any order), broadcast over the
    leading axes: (N, 4) with (N, 4) gives (N,) row by row, (M, 1, 4) with (1, P, 4) gives (M, P); 0 where
    both are empty. The one IoU for arrays (``training.evaluation.metrics.box_iou_tensor`` is its
    ``keras.ops`` twin for losses), so a match, a track and an NMS mean the same overlap."""
    a = np.atleast_2d(np.asarray(boxes_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(boxes_b, dtype=np.float64))
    ax1, ax2 = np.minimum(a[..., 0], a[..., 2]), np.maximum(a[..., 0], a[..., 2])
    ay1, ay2 = np.minimum(a[..., 1], a[..., 3]), np.maximum(a[..., 1], a[..., 3])
    bx1, bx2 = np.minimum(b[..., 0], b[..., 2]), np.maximum(b[..., 0], b[..., 2])
    by1, by2 = np.minimum(b[..., 1], b[..., 3]), np.maximum(b[..., 1], b[..., 3])
    inter = (np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
             * np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """:func:`box_iou` of every box in ``boxes_a`` (M, 4) with every box in ``boxes_b`` (P, 4): (M, P)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    return box_iou(a[:, None, :], b[None, :, :])


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> np.ndarray:
    """Greedy non-maximum suppression: the indices of the boxes kept, best score first.

    The best box is kept and every box overlapping it by more than ``iou_threshold`` (IoU) is
    dropped as the same face; then the best of the rest, and so on. ``boxes`` (M, 4), ``scores`` (M,).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"got {len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    overlaps = iou_matrix(boxes[order], boxes[order])
    alive = np.ones(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if alive[i]:
            kept.append(order[i])
            alive &= overlaps[i] <= iou_threshold
    return np.asarray(kept, dtype=np.int64)


def faces_from_cells(scores: np.ndarray, cell_boxes: np.ndarray, threshold: float,
                     iou_threshold: float = NMS_IOU, merge: bool = True) -> list[tuple[float, Box]]:
    """Every face in a multi-face model's per-cell answer: ``[(score, box), ...]``, best first.

    Cells scoring above ``threshold`` are candidates; non-maximum suppression keeps one per face,
    with the best cell's score. With ``merge`` each kept box becomes the score-weighted mean of every
    cell box overlapping it by more than ``iou_threshold`` (itself included; those below the threshold
    too, and none a better face took), as the grid model's best box averages its best cell's block:
    the cells around a face all box it, and their mean evens out each one's error (a trained grid
    model, 176 real faces: IoU 0.671 against 0.649 for the kept cell's own box at threshold 0.5;
    0.663 when only the cells above the threshold are averaged). ``scores`` (G*G,), ``cell_boxes``
    (G*G, 4) in any unit; boxes come back in that unit.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    cell_boxes = np.asarray(cell_boxes, dtype=np.float64).reshape(-1, 4)
    if len(scores) != len(cell_boxes):
        raise ValueError(f"got {len(cell_boxes)} cell boxes but {len(scores)} scores")
    candidates = np.flatnonzero(scores > threshold)
    if len(candidates) == 0:
        return []
    kept = candidates[non_max_suppression(cell_boxes[candidates], scores[candidates], iou_threshold)]
    if not merge:
        return [(float(scores[k]), tuple(float(v) for v in cell_boxes[k])) for k in kept]
    overlaps = iou_matrix(cell_boxes[kept], cell_boxes)  # (kept, every cell)
    taken = np.zeros(len(scores), dtype=bool)
    faces: list[tuple[float, Box]] = []
    for row, k in zip(overlaps, kept, strict=True):
        members = (row > iou_threshold) & ~taken
        members[k] = True
        taken |= members
        weights = scores[members]
        total = weights.sum()
        box = (weights[:, None] * cell_boxes[members]).sum(axis=0) / total if total > 0 else cell_boxes[k]
        faces.append((float(scores[k]), tuple(float(v) for v in box)))
    return faces

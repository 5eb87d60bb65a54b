"""Box corners in pixels: one way to order them and keep them inside a picture.

A rectangle may be dragged (in labelme, in the Label tab) from any corner, and a detector's box may
reach past the picture's edge; every reader and writer of boxes orders and clips them here, so a box
means the same thing wherever it comes from. Free of Qt and TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]


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

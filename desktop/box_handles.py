"""Which part of a face box is under the pointer, and where a drag of that part takes the box.

The Label tab's canvas (``desktop.label_tab.BoxCanvas``) asks here; this module knows no Qt, so the
geometry is tested with plain numbers (labelme keeps its shape hit-testing apart from its canvas too).
Points and boxes are plain tuples: ``(x, y)`` and ``(x1, y1, x2, y2)``.
"""

from __future__ import annotations

from enum import Enum

from training.core import Box, ordered


class Handle(Enum):
    """What a press at a point grabs: a new box, the box's inside, or one or two of its edges."""

    NEW = "new"
    MOVE = "move"
    LEFT = "l"
    RIGHT = "r"
    TOP = "t"
    BOTTOM = "b"
    LEFT_TOP = "lt"
    RIGHT_TOP = "rt"
    LEFT_BOTTOM = "lb"
    RIGHT_BOTTOM = "rb"

    @property
    def edges(self) -> str:
        """The edges a drag of this handle moves ("l", "t", "rb"...); empty for NEW and MOVE."""
        return "" if self in (Handle.NEW, Handle.MOVE) else self.value


def hit_test(box: Box | None, point: tuple[float, float], reach: float) -> Handle:
    """The handle under ``point``: an edge within ``reach`` of it (a corner where two are), else the
    inside (MOVE), else NEW. ``box`` and ``point`` are in the same units (the canvas' pixels)."""
    if box is None:
        return Handle.NEW
    left, top, right, bottom = box
    x, y = point
    within_y = top - reach <= y <= bottom + reach
    within_x = left - reach <= x <= right + reach
    edges = ""
    if within_y and abs(x - left) <= reach:
        edges += "l"
    elif within_y and abs(x - right) <= reach:
        edges += "r"
    if within_x and abs(y - top) <= reach:
        edges += "t"
    elif within_x and abs(y - bottom) <= reach:
        edges += "b"
    if edges:
        return Handle(edges)
    return Handle.MOVE if left <= x <= right and top <= y <= bottom else Handle.NEW


def dragged_box(
    handle: Handle,
    start: tuple[float, float],
    start_box: Box | None,
    point: tuple[float, float],
    size: tuple[float, float],
) -> Box:
    """The box after dragging ``handle`` from ``start`` to ``point`` (picture pixels, already inside the
    ``size`` = (width, height) picture): a new box spans the two points; a moved box keeps its size and
    stays inside the picture; a dragged edge or corner moves as far as the pointer did (so grabbing it a
    few pixels off and letting go changes nothing), inside the picture, corners kept in order."""
    sx, sy = start
    x, y = point
    if handle is Handle.NEW or start_box is None:
        return ordered((sx, sy, x, y))
    x1, y1, x2, y2 = start_box
    if handle is Handle.MOVE:
        width, height = size
        dx = min(max(x - sx, -x1), width - x2)
        dy = min(max(y - sy, -y1), height - y2)
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
    width, height = size
    dx, dy = x - sx, y - sy
    edges = handle.edges
    if "l" in edges:
        x1 = min(max(x1 + dx, 0.0), width)
    if "r" in edges:
        x2 = min(max(x2 + dx, 0.0), width)
    if "t" in edges:
        y1 = min(max(y1 + dy, 0.0), height)
    if "b" in edges:
        y2 = min(max(y2 + dy, 0.0), height)
    return ordered((x1, y1, x2, y2))

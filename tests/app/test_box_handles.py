"""Box geometry without Qt: which handle a press grabs, where a drag takes the box, and how corners are
ordered and kept inside the picture (``desktop.box_handles``, ``training.core.boxes``)."""

from __future__ import annotations

import pytest

from desktop.box_handles import Handle, dragged_box, hit_test
from training.core.boxes import clamp_box, clipped, ordered

BOX = (100.0, 50.0, 200.0, 150.0)  # left, top, right, bottom
REACH = 8.0
SIZE = (320.0, 240.0)


@pytest.mark.parametrize(
    ("point", "handle"),
    [
        ((100, 100), Handle.LEFT),
        ((205, 100), Handle.RIGHT),
        ((150, 45), Handle.TOP),
        ((150, 157), Handle.BOTTOM),
        ((97, 53), Handle.LEFT_TOP),
        ((203, 52), Handle.RIGHT_TOP),
        ((104, 148), Handle.LEFT_BOTTOM),
        ((200, 150), Handle.RIGHT_BOTTOM),
        ((150, 100), Handle.MOVE),
        ((300, 200), Handle.NEW),
        ((100, 170), Handle.NEW),  # on the left edge's line, but beyond the box's reach
    ],
)
def test_hit_test_names_the_handle_under_the_point(point, handle):
    assert hit_test(BOX, point, REACH) is handle


def test_without_a_box_every_press_starts_a_new_one():
    assert hit_test(None, (150, 100), REACH) is Handle.NEW


def test_handles_name_their_edges():
    assert Handle.RIGHT_BOTTOM.edges == "rb" and Handle.LEFT.edges == "l"
    assert Handle.MOVE.edges == "" and Handle.NEW.edges == ""


def test_a_new_box_spans_the_two_points_in_order():
    assert dragged_box(Handle.NEW, (120, 90), BOX, (40, 30), SIZE) == (40, 30, 120, 90)
    assert dragged_box(Handle.MOVE, (120, 90), None, (40, 30), SIZE) == (40, 30, 120, 90)  # nothing to move


def test_moving_keeps_the_size_and_stays_inside_the_picture():
    assert dragged_box(Handle.MOVE, (150, 100), BOX, (160, 90), SIZE) == (110, 40, 210, 140)
    assert dragged_box(Handle.MOVE, (150, 100), BOX, (0, 0), SIZE) == (0, 0, 100, 100)  # stops at the corner
    assert dragged_box(Handle.MOVE, (150, 100), BOX, (320, 240), SIZE) == (220, 140, 320, 240)


def test_dragging_an_edge_or_corner_moves_only_that_part():
    assert dragged_box(Handle.RIGHT_BOTTOM, (200, 150), BOX, (230, 170), SIZE) == (100, 50, 230, 170)
    assert dragged_box(Handle.LEFT, (100, 100), BOX, (90, 10), SIZE) == (90, 50, 200, 150)
    assert dragged_box(Handle.TOP, (150, 50), BOX, (10, 20), SIZE) == (100, 20, 200, 150)


def test_an_edge_follows_the_pointer_from_where_it_was_grabbed_and_stays_inside():
    # Grabbed 4 pixels right of the left edge: a click changes nothing, a drag moves it as far as the pointer.
    assert dragged_box(Handle.LEFT, (104, 100), BOX, (104, 100), SIZE) == BOX
    assert dragged_box(Handle.LEFT, (104, 100), BOX, (94, 100), SIZE) == (90, 50, 200, 150)
    assert dragged_box(Handle.RIGHT_BOTTOM, (196, 153), BOX, (320, 240), SIZE) == (100, 50, 320, 237)


def test_an_edge_dragged_past_the_other_one_keeps_the_corners_in_order():
    assert dragged_box(Handle.LEFT, (100, 100), BOX, (250, 100), SIZE) == (200, 50, 250, 150)
    assert dragged_box(Handle.LEFT_TOP, (100, 50), BOX, (260, 180), SIZE) == (200, 150, 260, 180)


def test_ordered_clipped_and_clamped_boxes():
    assert ordered((50, 40, -5, 130)) == (-5.0, 40.0, 50.0, 130.0)
    assert clipped((50, 40, -5, 130), 160, 120) == (0.0, 40.0, 50.0, 120.0)
    assert clamp_box((50, 40, -5, 130), 160, 120) == (0.0, 40.0, 50.0, 120.0)
    assert clamp_box((10, 10, 11, 50), 160, 120, min_size=2) is None  # a click, not a drag
    assert clamp_box((10, 10, 11, 50), 160, 120) == (10.0, 10.0, 11.0, 50.0)  # one pixel wide is a box
    assert clamp_box((170, 10, 200, 50), 160, 120) is None  # beside the picture

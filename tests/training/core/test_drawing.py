"""The one way a detection is drawn (``training.core.drawing``: the app's live view, snapshots, recordings and
``facetracker-train predict``), the channel helpers it and the models share, and shared wordings."""

from __future__ import annotations

import numpy as np
import pytest

from training.core.detection import Detection
from training.core.drawing import (
    BOX_COLOUR_BGR,
    CLASSIC_BOX_COLOUR_BGR,
    NO_FACE_COLOUR_BGR,
    draw_detection,
    draw_detections,
)
from training.core.preprocess import as_bgr, as_rgb, as_uint8
from training.core.text import format_duration

FRAME = np.full((240, 320, 3), 100, np.uint8)


def pixels_of(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """(row, column) of every pixel of exactly ``colour``."""
    return np.argwhere((image == np.array(colour, np.uint8)).all(axis=2))


def test_a_face_gets_its_box_and_a_tag_in_the_colour_asked_for():
    face = Detection(0.93, (100.0, 80.0, 200.0, 200.0))
    drawn = draw_detection(FRAME, face, 0.5)
    assert (FRAME == 100).all()  # the frame itself is left alone
    green = pixels_of(drawn, BOX_COLOUR_BGR)
    assert abs(green[:, 1].min() - 100) <= 2 and green[:, 1].max() >= 199  # the box's edges (2 px thick)
    assert green[:, 0].max() >= 199 and green[:, 0].min() < 80  # the tag sits above the box
    classic = draw_detection(FRAME, face, 0.5, label="face (classic)", colour=CLASSIC_BOX_COLOUR_BGR)
    assert len(pixels_of(classic, CLASSIC_BOX_COLOUR_BGR)) and not len(pixels_of(classic, BOX_COLOUR_BGR))
    assert len(pixels_of(classic, CLASSIC_BOX_COLOUR_BGR)) > len(green)  # a longer tag: "face (classic) 0.93"


def test_under_the_threshold_nothing_is_drawn_unless_the_score_is_asked_for():
    weak = Detection(0.2, (100.0, 80.0, 200.0, 200.0))
    assert (draw_detection(FRAME, weak, 0.5) == FRAME).all()
    assert (draw_detection(FRAME, None, 0.5, tag_no_face=True) == FRAME).all()
    tagged = draw_detection(FRAME, weak, 0.5, tag_no_face=True)  # predict's pictures say their score
    tag = pixels_of(tagged, NO_FACE_COLOUR_BGR)
    assert len(tag) and tag[:, 0].max() < 40 and tag[:, 1].min() == 0  # in the top-left corner
    assert not len(pixels_of(tagged, BOX_COLOUR_BGR))


def test_a_box_past_the_frame_is_drawn_at_its_edge():
    drawn = draw_detection(FRAME, Detection(0.9, (-50.0, -20.0, 500.0, 400.0)), 0.5)
    green = pixels_of(drawn, BOX_COLOUR_BGR)
    assert green[:, 0].min() == 0 and green[:, 0].max() == 239
    right_edge = green[green[:, 1] == 319][:, 0]  # the right edge, drawn on the last column, top to bottom
    assert len(set(right_edge.tolist())) > 200


def test_every_face_above_the_threshold_gets_its_box_and_score_tag():
    faces = [Detection(0.91, (20.0, 60.0, 80.0, 120.0)), Detection(0.7, (130.0, 100.0, 190.0, 160.0)),
             Detection(0.3, (230.0, 60.0, 290.0, 120.0)), Detection(0.8, (235.0, 150.0, 295.0, 210.0))]
    drawn = draw_detections(FRAME, faces, 0.5)
    assert (FRAME == 100).all()
    green = pixels_of(drawn, BOX_COLOUR_BGR)
    for x1, y1, x2, y2 in ((20, 60, 80, 120), (130, 100, 190, 160), (235, 150, 295, 210)):
        left_edge = green[(abs(green[:, 1] - x1) <= 1) & (green[:, 0] > y1 + 5) & (green[:, 0] < y2 - 5)]
        right_edge = green[(abs(green[:, 1] - x2) <= 1) & (green[:, 0] > y1 + 5) & (green[:, 0] < y2 - 5)]
        assert len(left_edge) >= y2 - y1 - 12 and len(right_edge) >= y2 - y1 - 12, (x1, y1)
        assert len(green[(green[:, 0] < y1 - 3) & (green[:, 0] > y1 - 25) & (abs(green[:, 1] - x1 - 20) < 15)]), \
            "a score tag above the box"
    weak = green[(green[:, 1] >= 228) & (green[:, 1] <= 232) & (green[:, 0] > 70) & (green[:, 0] < 115)]
    assert not len(weak), "the 0.30 face is under the threshold: no box"
    single = draw_detection(FRAME, faces[0], 0.5)  # one face: the same pixels as a list of one
    assert np.array_equal(single, draw_detections(FRAME, faces[:1], 0.5))
    assert (draw_detections(FRAME, [], 0.5) == FRAME).all()


def test_channel_helpers():
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    assert as_bgr(bgr) is bgr
    assert (as_rgb(bgr)[..., 2] == 255).all() and (as_rgb(bgr)[..., 0] == 0).all()
    grey = np.full((4, 6), 7, np.uint8)
    assert as_bgr(grey).shape == (4, 6, 3) and (as_rgb(grey) == 7).all()
    bgra = np.dstack([bgr, np.full((4, 6), 128, np.uint8)])
    assert (as_rgb(bgra) == as_rgb(bgr)).all()
    assert as_uint8(np.array([-5.0, 12.6, 300.0])).tolist() == [0, 12, 255]
    with pytest.raises(ValueError, match=r"\(H, W\), \(H, W, 3\) or \(H, W, 4\)"):
        as_bgr(np.zeros((4, 6, 2), np.uint8))


def test_durations_read_alike_in_the_cli_and_the_app():
    import training.cli

    assert training.cli.format_duration is format_duration
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05" and format_duration(-3) == "0:00"

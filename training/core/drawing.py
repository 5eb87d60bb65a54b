"""Drawing detections on a picture: the one way the app's live view, its snapshots and recordings,
and ``facetracker-train predict`` mark a face (or every face, ``draw_detections``).

OpenCV does the pixel work (fast, and it releases the GIL, so the app draws in a worker thread). Free
of Qt and TensorFlow; the app turns the result into a ``QImage`` itself (``desktop.imaging``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from training.core.detection import Detection

BOX_COLOUR_BGR = (80, 220, 60)  # green, like the tutorial's box
CLASSIC_BOX_COLOUR_BGR = (0, 200, 255)  # amber: the classic face finder, not a trained model
PRETRAINED_BOX_COLOUR_BGR = (250, 170, 40)  # blue: the pretrained face detector, not yet the user's model
NO_FACE_COLOUR_BGR = (200, 200, 200)  # the "no face 0.12" tag of predict's pictures
TEXT_COLOUR_BGR = (20, 20, 20)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PAD = 3


def draw_detection(
    frame_bgr: np.ndarray,
    detection: Detection | None,
    threshold: float,
    label: str | None = None,
    colour: tuple[int, int, int] = BOX_COLOUR_BGR,
    *,
    tag_no_face: bool = False,
) -> np.ndarray:
    """A copy of the frame with the box and a "face 0.93" tag drawn; nothing under the threshold, or
    with ``tag_no_face`` a "no face 0.12" tag in the top-left corner (so every picture says its score)."""
    if detection is None or not detection.is_face(threshold):
        out = frame_bgr.copy()
        if tag_no_face and detection is not None:
            height, width = out.shape[:2]
            _tag(out, f"no face {detection.score:.2f}", 0, 0, NO_FACE_COLOUR_BGR, _scale(width, height), above=False)
        return out
    return draw_detections(frame_bgr, [detection], threshold, label=label, colour=colour)


def draw_detections(
    frame_bgr: np.ndarray,
    detections: Sequence[Detection],
    threshold: float,
    label: str | None = None,
    colour: tuple[int, int, int] = BOX_COLOUR_BGR,
) -> np.ndarray:
    """A copy of the frame with every face above the threshold boxed and tagged ("face 0.93").

    One copy and one pass whatever the number of faces (the live view draws every frame). The tags
    are drawn after all the boxes, so a neighbour's box never hides a face's score.
    """
    out = frame_bgr.copy()
    height, width = out.shape[:2]
    scale = _scale(width, height)
    thickness = max(2, round(min(width, height) / 240))
    corners = []
    for detection in detections:
        if not detection.is_face(threshold):
            continue
        x1, y1, x2, y2 = detection.box
        left = int(round(min(max(x1, 0.0), width - 1)))
        top = int(round(min(max(y1, 0.0), height - 1)))
        right = int(round(min(max(x2, 0.0), width - 1)))
        bottom = int(round(min(max(y2, 0.0), height - 1)))
        cv2.rectangle(out, (left, top), (right, bottom), colour, thickness, cv2.LINE_AA)
        corners.append((detection.score, left, top))
    for score, left, top in corners:
        _tag(out, f"{label or 'face'} {score:.2f}", left, top, colour, scale, above=True)
    return out


def _scale(width: int, height: int) -> float:
    """The tag's font scale for a picture of this size."""
    return max(0.45, min(width, height) / 800)


def _tag(out: np.ndarray, text: str, left: int, top: int, colour: tuple[int, int, int], scale: float,
         above: bool) -> None:
    """A filled label with dark text at (left, top): above that point when there is room, else below it."""
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, 1)
    label_top = top - text_h - baseline - 2 * _PAD if above else top
    if label_top < 0:  # no room above the box: put the label inside it
        label_top = top
    cv2.rectangle(out, (left, label_top), (left + text_w + 2 * _PAD, label_top + text_h + baseline + 2 * _PAD),
                  colour, cv2.FILLED)
    cv2.putText(out, text, (left + _PAD, label_top + _PAD + text_h), _FONT, scale, TEXT_COLOUR_BGR, 1, cv2.LINE_AA)

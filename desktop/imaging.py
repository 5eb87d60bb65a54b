"""Frame pictures for the window: draw a detection on a frame and hand it to Qt.

OpenCV does the pixel work (it is fast and releases the GIL, so it can run in a worker
thread); Qt only receives a finished ``QImage``.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage

from training.detection import Detection

BOX_COLOUR_BGR = (80, 220, 60)  # green, like the tutorial's box
CLASSIC_BOX_COLOUR_BGR = (0, 200, 255)  # amber: the classic face finder, not a trained model
TEXT_COLOUR_BGR = (20, 20, 20)


def bgr_to_qimage(frame_bgr: np.ndarray) -> QImage:
    """Return a QImage that owns a copy of the frame's pixels (so the array may be reused)."""
    frame = frame_bgr
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    frame = np.ascontiguousarray(frame)
    height, width = frame.shape[:2]
    image = QImage(frame.data, width, height, frame.strides[0], QImage.Format.Format_BGR888)
    return image.copy()  # deep copy: the QImage above only borrows the numpy buffer


def draw_detection(
    frame_bgr: np.ndarray,
    detection: Detection | None,
    threshold: float,
    label: str | None = None,
    colour: tuple[int, int, int] = BOX_COLOUR_BGR,
) -> np.ndarray:
    """Return a copy of the frame with the box and score drawn; nothing is drawn under the threshold."""
    out = frame_bgr.copy()
    if detection is None or not detection.is_face(threshold):
        return out
    height, width = out.shape[:2]
    x1, y1, x2, y2 = detection.box
    left = int(round(min(max(x1, 0.0), width - 1)))
    top = int(round(min(max(y1, 0.0), height - 1)))
    right = int(round(min(max(x2, 0.0), width - 1)))
    bottom = int(round(min(max(y2, 0.0), height - 1)))
    thickness = max(2, round(min(width, height) / 240))
    cv2.rectangle(out, (left, top), (right, bottom), colour, thickness, cv2.LINE_AA)

    text = f"{label or 'face'} {detection.score:.2f}"
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.45, min(width, height) / 800)
    (text_w, text_h), baseline = cv2.getTextSize(text, font, scale, 1)
    pad = 3
    label_top = top - text_h - baseline - 2 * pad
    if label_top < 0:  # no room above the box: put the label inside it
        label_top = top
    cv2.rectangle(out, (left, label_top), (left + text_w + 2 * pad, label_top + text_h + baseline + 2 * pad),
                  colour, cv2.FILLED)
    cv2.putText(out, text, (left + pad, label_top + pad + text_h), font, scale, TEXT_COLOUR_BGR, 1, cv2.LINE_AA)
    return out

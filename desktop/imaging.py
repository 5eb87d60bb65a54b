"""Frame pictures for the window: hand a finished OpenCV frame to Qt.

The pixel work (drawing the box, channel conversion) is ``training``'s, Qt-free and shared with the
command line (``training.core.drawing``, ``training.core.preprocess``); Qt only receives a finished ``QImage``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from training.core import as_bgr, as_uint8


def bgr_to_qimage(frame_bgr: np.ndarray) -> QImage:
    """Return a QImage that owns a copy of the frame's pixels (so the array may be reused)."""
    frame = np.ascontiguousarray(as_uint8(as_bgr(frame_bgr)))
    height, width = frame.shape[:2]
    image = QImage(frame.data, width, height, frame.strides[0], QImage.Format.Format_BGR888)
    return image.copy()  # deep copy: the QImage above only borrows the numpy buffer

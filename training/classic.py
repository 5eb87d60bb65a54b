"""The classic face finder: scikit-image's LBP cascade, the live stand-in until the user has a model,
and the yardstick a trained model is measured against.

It needs no training and no TensorFlow, so the Detect tab shows faces on the very first start.
It is marked as "classic" wherever it is shown: it is a stand-in, not the user's model.
(opencv-python-headless 5 has no ``CascadeClassifier``; scikit-image ships an LBP cascade.)
"""

from __future__ import annotations

import cv2
import numpy as np

from training.detection import Detection

CLASSIC_LABEL = "face (classic)"
CLASSIC_DEVICE = "CPU (classic face finder)"


class ClassicFaceFinder:
    """Find the biggest frontal face in a frame with an LBP cascade, on a downscaled gray copy.

    Args:
        work_width: the frame is shrunk to this width first; the cascade's cost grows with the
            pixel count, and 240 pixels still finds a face a tenth of the frame wide.
        scale_factor: step between the cascade's window sizes.
        min_neighbours: how many overlapping windows must agree (fewer false faces when higher).
    """

    label = CLASSIC_LABEL
    device = CLASSIC_DEVICE
    path = None

    def __init__(self, work_width: int = 240, scale_factor: float = 1.3, min_neighbours: int = 2) -> None:
        # Imported here: scikit-image's feature module loads in the worker that builds the finder.
        import skimage.data
        from skimage.feature import Cascade

        self._cascade = Cascade(skimage.data.lbp_frontal_face_cascade_filename())
        self.work_width = int(work_width)
        self.scale_factor = float(scale_factor)
        self.min_neighbours = int(min_neighbours)

    def detect(self, frame_bgr: np.ndarray) -> Detection | None:
        """Return the biggest face as a Detection (score 1.0, box in the frame's pixels), or None."""
        height, width = frame_bgr.shape[:2]
        scale = min(1.0, self.work_width / width)
        small = frame_bgr if scale == 1.0 else cv2.resize(
            frame_bgr, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        gray = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        min_side = max(20, min(gray.shape) // 10)  # the cascade's 24-pixel window, roughly
        faces = self._cascade.detect_multi_scale(
            img=gray,
            scale_factor=self.scale_factor,
            step_ratio=1,
            min_size=(min_side, min_side),
            max_size=(gray.shape[1], gray.shape[0]),
            min_neighbor_number=self.min_neighbours,
        )
        if not faces:
            return None
        biggest = max(faces, key=lambda face: face["width"] * face["height"])
        x1, y1 = biggest["c"] / scale, biggest["r"] / scale
        x2, y2 = x1 + biggest["width"] / scale, y1 + biggest["height"] / scale
        return Detection(score=1.0, box=(float(x1), float(y1), float(x2), float(y2)))

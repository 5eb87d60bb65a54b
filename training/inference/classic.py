"""The classic face finder: scikit-image's LBP cascade, the live stand-in until the user has a model,
and the yardstick a trained model is measured against.

It needs no training and no TensorFlow, so the Detect tab shows faces on the very first start.
It is marked as "classic" wherever it is shown: it is a stand-in, not the user's model.
(opencv-python-headless 5 has no ``CascadeClassifier``; scikit-image ships an LBP cascade.)
"""

from __future__ import annotations

import cv2
import numpy as np

from training.core.detection import DEFAULT_SCORE_THRESHOLD, Detection

CLASSIC_LABEL = "face (classic)"
CLASSIC_DEVICE = "CPU (classic face finder)"


#: Two of the cascade's faces are one when the smaller lies this much (its area's share) inside the bigger:
#: the cascade groups only windows of about the same size, and a face often also fires a window a scale
#: step away, overlapping most of it.
SAME_FACE_OVERLAP = 0.5


class ClassicFaceFinder:
    """Find frontal faces in a frame with an LBP cascade, on a downscaled gray copy: the biggest
    (:meth:`detect`) or every one (:meth:`detect_all`): a :class:`~training.core.detection.FaceDetector`,
    every face scoring 1.0.

    Args:
        work_width: the frame is shrunk to this width first; the cascade's cost grows with the
            pixel count, and 240 pixels still finds a face a tenth of the frame wide.
        scale_factor: step between the cascade's window sizes.
        min_neighbours: how many overlapping windows must agree (fewer false faces when higher).
    """

    label = CLASSIC_LABEL
    name = "the classic finder"
    device = CLASSIC_DEVICE
    multi_face = True
    threshold = DEFAULT_SCORE_THRESHOLD  # its faces all score 1.0: any threshold below 1 keeps them
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
        faces = self._faces(frame_bgr)
        return faces[0] if faces else None

    def detect_all(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Every face the cascade finds (score 1.0, boxes in the frame's pixels), biggest first; with a
        ``threshold`` of 1 or more, none.

        A window lying mostly (:data:`SAME_FACE_OVERLAP` of its area) inside a bigger one is the
        same face seen a scale step away, and is dropped.
        """
        faces = merge_same_faces(self._faces(frame_bgr))
        return faces if threshold is None else [face for face in faces if face.is_face(threshold)]

    def _faces(self, frame_bgr: np.ndarray) -> list[Detection]:
        """The cascade's faces (windows grouped by the cascade), biggest first, in the frame's pixels."""
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
        found = []
        for face in sorted(faces, key=lambda face: face["width"] * face["height"], reverse=True):
            x1, y1 = face["c"] / scale, face["r"] / scale
            x2, y2 = x1 + face["width"] / scale, y1 + face["height"] / scale
            found.append(Detection(score=1.0, box=(float(x1), float(y1), float(x2), float(y2))))
        return found


def merge_same_faces(faces: list[Detection]) -> list[Detection]:
    """``faces`` (biggest first) without those lying mostly (:data:`SAME_FACE_OVERLAP` of their area)
    inside a bigger one kept before them: the same face, seen by the cascade a scale step away."""
    kept: list[Detection] = []
    for face in faces:
        if all(_inside_share(face.box, bigger.box) <= SAME_FACE_OVERLAP for bigger in kept):
            kept.append(face)
    return kept


def _inside_share(box: tuple[float, ...], bigger: tuple[float, ...]) -> float:
    """How much of ``box``'s area lies inside ``bigger`` (0..1)."""
    width = max(0.0, min(box[2], bigger[2]) - max(box[0], bigger[0]))
    height = max(0.0, min(box[3], bigger[3]) - max(box[1], bigger[1]))
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    return width * height / area if area > 0 else 1.0

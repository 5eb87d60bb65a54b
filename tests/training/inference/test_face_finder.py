"""The classic face finder on a real photograph: scikit-image's astronaut (Eileen Collins)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from training.evaluation.metrics import box_iou
from training.inference.classic import ClassicFaceFinder
from training.inference.detector import Detection

# Where the face is in skimage.data.astronaut() (512x512), measured by eye: forehead to chin, ear to ear.
ASTRONAUT_FACE = (170.0, 60.0, 280.0, 175.0)


@pytest.fixture(scope="module")
def finder() -> ClassicFaceFinder:
    return ClassicFaceFinder()


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def iou(a: tuple, b: tuple) -> float:
    return float(box_iou(np.array([a], dtype=np.float64), np.array([b], dtype=np.float64))[0])


def test_finds_the_astronauts_face(finder: ClassicFaceFinder, astronaut_bgr: np.ndarray) -> None:
    detection = finder.detect(astronaut_bgr)
    assert isinstance(detection, Detection)
    assert detection.score == 1.0
    assert iou(detection.box, ASTRONAUT_FACE) > 0.5, detection.box


def test_box_is_in_the_frames_pixels_whatever_its_size(finder: ClassicFaceFinder, astronaut_bgr: np.ndarray) -> None:
    """The photo pasted at (200, 100) of a 960x720 frame: the box moves with it (not the work size)."""
    frame = np.full((720, 960, 3), 90, dtype=np.uint8)
    frame[100:612, 200:712] = astronaut_bgr
    detection = finder.detect(frame)
    assert detection is not None
    x1, y1, x2, y2 = ASTRONAUT_FACE
    assert iou(detection.box, (x1 + 200, y1 + 100, x2 + 200, y2 + 100)) > 0.4, detection.box


@pytest.mark.parametrize("frame", [np.full((480, 640, 3), 128, np.uint8), np.zeros((240, 320, 3), np.uint8)])
def test_no_face_gives_none(finder: ClassicFaceFinder, frame: np.ndarray) -> None:
    assert finder.detect(frame) is None


def test_grayscale_frames_work(finder: ClassicFaceFinder, astronaut_bgr: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    detection = finder.detect(gray)
    assert detection is not None and iou(detection.box, ASTRONAUT_FACE) > 0.5


def test_it_is_a_face_detector_answering_every_face(finder: ClassicFaceFinder, astronaut_bgr: np.ndarray) -> None:
    """The FaceDetector shape the live view and the Label tab take, declared rather than guessed."""
    from training.core.detection import FaceDetector

    assert isinstance(finder, FaceDetector) and finder.multi_face and finder.label == "face (classic)"
    assert [d.box for d in finder.detect_all(astronaut_bgr, threshold=0.5)] == [d.box for d in finder.detect_all(astronaut_bgr)]
    assert finder.detect_all(astronaut_bgr, threshold=1.0) == []  # its faces all score 1.0

"""Real faces in 640x480 frames, shared by the autolabel and Label-tab tests: scikit-image's astronaut and
matplotlib's Grace Hopper pasted at known places and sizes, some mirrored, over real textures; the truth
boxes were read off the photos by eye (forehead to chin, cheek to cheek, as a person labels in labelme)."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.image as mpimg
import numpy as np
import skimage.data
from matplotlib import cbook

from training.evaluation.metrics import box_iou

FRAME_W, FRAME_H = 640, 480


def _bgr(rgb: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(rgb)
    return cv2.cvtColor(np.stack([rgb] * 3, -1) if rgb.ndim == 2 else rgb, cv2.COLOR_RGB2BGR)


def _grace_hopper() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        return _bgr(mpimg.imread(file))


# Photo, and its face (x1, y1, x2, y2) in the photo's pixels, read by eye off a 10-pixel grid.
PHOTOS = {
    "astronaut": (lambda: _bgr(skimage.data.astronaut()), (180, 72, 270, 176)),  # 512x512
    "grace_hopper": (_grace_hopper, (183, 135, 353, 328)),  # 512x600, glasses, cap above the brow
}
# (photo, x, y, pasted height, background, mirrored): faces from 50 to 160 pixels wide, all over the frame.
FACE_FRAMES = [
    ("astronaut", 20, 10, 300, "brick", False),
    ("astronaut", 330, 150, 320, "grass", True),
    ("astronaut", 200, 170, 300, "coffee", False),
    ("grace_hopper", 0, 0, 480, "rocket", False),
    ("grace_hopper", 380, 120, 300, "brick", True),
    ("grace_hopper", 250, 280, 200, "gravel", False),
]
# Real photos and textures without a face. Grass and gravel hold small face-like patterns (MTCNN: about
# 20 pixels, scores 0.8 to 0.91 depending on the JPEG quality), which the finder ignores as too small.
NO_FACE_FRAMES = ["coffee", "chelsea", "rocket", "hubble_deep_field", "grass", "gravel"]


def background(name: str) -> np.ndarray:
    return cv2.resize(_bgr(getattr(skimage.data, name)()), (FRAME_W, FRAME_H), interpolation=cv2.INTER_AREA)


def compose_frame(photo: str, x: int, y: int, height: int, backdrop: str, mirrored: bool = False):
    """A 640x480 BGR frame with ``photo`` pasted at (x, y), ``height`` pixels tall; and its face box."""
    load, (fx1, fy1, fx2, fy2) = PHOTOS[photo]
    image = load()
    scale = height / image.shape[0]
    width = round(image.shape[1] * scale)
    pasted = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    fx1, fy1, fx2, fy2 = fx1 * scale, fy1 * scale, fx2 * scale, fy2 * scale
    if mirrored:
        pasted = pasted[:, ::-1]
        fx1, fx2 = width - fx2, width - fx1
    frame = background(backdrop).copy()
    frame[y : y + height, x : x + width] = pasted[: FRAME_H - y, : FRAME_W - x]
    return frame, (x + fx1, y + fy1, min(FRAME_W, x + fx2), min(FRAME_H, y + fy2))


def write_pictures(folder: Path, count_faces: int = len(FACE_FRAMES), count_empty: int = len(NO_FACE_FRAMES)):
    """JPEGs of the face and no-face frames in ``folder``; returns {file name: face box or None}."""
    folder.mkdir(parents=True, exist_ok=True)
    truth: dict[str, tuple | None] = {}
    for i, case in enumerate(FACE_FRAMES[:count_faces]):
        frame, box = compose_frame(*case)
        name = f"face_{i}_{case[0]}.jpg"
        assert cv2.imwrite(str(folder / name), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
        truth[name] = box
    for name in NO_FACE_FRAMES[:count_empty]:
        assert cv2.imwrite(str(folder / f"empty_{name}.jpg"), background(name), [cv2.IMWRITE_JPEG_QUALITY, 92])
        truth[f"empty_{name}.jpg"] = None
    return truth


# Three faces in one frame (photo, x, y, face width in pixels, mirrored): each photo cropped around its face.
THREE_FACES = [("astronaut", 10, 60, 90, False), ("grace_hopper", 225, 120, 100, False), ("astronaut", 440, 40, 80, True)]


def face_crop(photo: str, face_width: float, mirrored: bool = False):
    """The photo cropped around its face (hair, shoulders) and scaled so the face is ``face_width`` wide;
    and the face box in the crop."""
    load, (fx1, fy1, fx2, fy2) = PHOTOS[photo]
    image = load()
    w, h = fx2 - fx1, fy2 - fy1
    x1, y1 = max(0, int(fx1 - 0.8 * w)), max(0, int(fy1 - 0.6 * h))
    x2, y2 = min(image.shape[1], int(fx2 + 0.8 * w)), min(image.shape[0], int(fy2 + 0.8 * h))
    scale = face_width / w
    crop = cv2.resize(image[y1:y2, x1:x2], (round((x2 - x1) * scale), round((y2 - y1) * scale)),
                      interpolation=cv2.INTER_AREA)
    box = ((fx1 - x1) * scale, (fy1 - y1) * scale, (fx2 - x1) * scale, (fy2 - y1) * scale)
    if mirrored:
        crop = np.ascontiguousarray(crop[:, ::-1])
        box = (crop.shape[1] - box[2], box[1], crop.shape[1] - box[0], box[3])
    return crop, box


def compose_faces_frame(faces=THREE_FACES, backdrop: str = "brick"):
    """A 640x480 BGR frame with several real faces (see THREE_FACES); and their boxes, left to right."""
    frame = background(backdrop).copy()
    boxes = []
    for photo, x, y, face_width, mirrored in faces:
        crop, (bx1, by1, bx2, by2) = face_crop(photo, face_width, mirrored)
        h, w = min(crop.shape[0], FRAME_H - y), min(crop.shape[1], FRAME_W - x)
        frame[y : y + h, x : x + w] = crop[:h, :w]
        boxes.append((x + bx1, y + by1, x + bx2, y + by2))
    return frame, boxes


def iou(a, b) -> float:
    return float(box_iou(np.array([a]), np.array([b]))[0])


def matched(found, truths, min_iou: float = 0.6) -> bool:
    """Each truth box has its own found box overlapping it at least ``min_iou``, and nothing else was found."""
    found = [tuple(b) for b in found]
    if len(found) != len(truths):
        return False
    return all(max(iou(b, t) for b in found) >= min_iou for t in truths) and \
        all(max(iou(b, t) for t in truths) >= min_iou for b in found)

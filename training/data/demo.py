"""A synthetic labelled dataset, so the whole pipeline can be tried (and tested) without a webcam.

Each picture is a cartoon face (skin-toned ellipse, eyes, brows, nose, mouth, often hair and
shoulders) over a busy background (gradient, noise, shapes in colours far from skin), or, in about
20 % of pictures, the background alone. Faces take 15-45 % of the frame width at random places. The
look is simple on purpose: a small CNN learns it in a few CPU minutes, which is what a demo needs.
Written like a real capture: JPEGs plus labelme JSON in the tutorial layout, 70/15/15.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.data.dataset import SPLITS, DataError, label_path_for
from training.data.formats.labelme import write_labelme

NO_FACE_FRACTION = 0.2
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}  # the rest is train

# BGR skin tones, light to dark.
SKIN_TONES = np.array(
    [[189, 224, 255], [160, 200, 240], [130, 180, 230], [110, 160, 205], [80, 125, 175], [60, 90, 140], [45, 65, 100]],
    np.float32,
)
# BGR black, dark brown, auburn, grey: all far from every skin tone, so the hairline is a clear edge
# (blond or mid-brown hair matched some skin tones and blurred where the face box starts).
HAIR_COLOURS = np.array([[20, 20, 25], [10, 20, 45], [30, 45, 170], [150, 150, 155]], np.float32)


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A colour far from every skin tone, so background shapes never pass for a face."""
    while True:
        colour = rng.integers(0, 256, 3).astype(np.float32)
        if np.min(np.linalg.norm(SKIN_TONES - colour, axis=1)) > 90:
            return tuple(int(c) for c in colour)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    start, end = (np.array(_random_colour(rng), np.float32) for _ in range(2))
    horizontal = rng.random() < 0.5
    ramp = np.linspace(0.0, 1.0, width if horizontal else height, dtype=np.float32)[:, None]
    line = (start + (end - start) * ramp).astype(np.int16)  # one row (or column) of the gradient
    gradient = line[None, :, :] if horizontal else line[:, None, :]
    spread = int(rng.integers(3, 16))
    noise = rng.integers(-spread, spread + 1, (height, width, 1), dtype=np.int16)  # camera-like grain
    image = np.clip(gradient + noise, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 8))):
        colour = _random_colour(rng)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(min(width, height) // 20, min(width, height) // 4))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), colour, -1)
        else:
            cv2.circle(image, (x, y), size // 2, colour, -1, cv2.LINE_AA)
    return image


def _draw_face(rng: np.random.Generator, image: np.ndarray) -> tuple[float, float, float, float]:
    """Draw a face (plus shoulders) somewhere in the image; return its box in pixels."""
    height, width = image.shape[:2]
    face_w = rng.uniform(0.15, 0.45) * width
    face_h = min(face_w * rng.uniform(1.15, 1.35), 0.9 * height)
    face_w = min(face_w, face_h / 1.15)
    cx = rng.uniform(face_w / 2, width - face_w / 2)
    cy = rng.uniform(face_h / 2, height - face_h / 2)
    ax, ay = face_w / 2, face_h / 2
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] + rng.normal(0, 8, 3)
    skin_colour = tuple(float(c) for c in np.clip(skin, 0, 255))
    shade = tuple(float(c) * 0.6 for c in skin_colour)  # neck and nose: darker, so the chin is an edge

    def point(fx: float, fy: float) -> tuple[int, int]:  # a point in face coordinates, -1..1
        return round(cx + fx * ax), round(cy + fy * ay)

    def axes(fx: float, fy: float) -> tuple[int, int]:
        return max(1, round(fx * ax)), max(1, round(fy * ay))

    if rng.random() < 0.8:  # shoulders below the face, cut off by the frame
        shirt = _random_colour(rng)
        cv2.ellipse(image, point(0, 1.0 + 1.6), axes(2.2, 1.8), 0, 0, 360, shirt, -1, cv2.LINE_AA)
        cv2.rectangle(image, point(-0.35, 0.6), point(0.35, 1.25), shade, -1)  # neck
    cv2.ellipse(image, point(0, 0), axes(1, 1), 0, 0, 360, skin_colour, -1, cv2.LINE_AA)
    if rng.random() < 0.75:  # hair: a cap over the top of the head, inside the face box
        hair = tuple(float(c) for c in HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))])
        cv2.ellipse(image, point(0, -0.45), axes(1.0, 0.55), 0, 180, 360, hair, -1, cv2.LINE_AA)
    for side in (-1, 1):
        cv2.ellipse(image, point(side * 0.38, -0.12), axes(0.2, 0.1), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        cv2.circle(image, point(side * 0.38, -0.12), max(1, round(0.08 * ax)), (40, 30, 20), -1, cv2.LINE_AA)
        cv2.line(image, point(side * 0.55, -0.32), point(side * 0.2, -0.36), (30, 30, 40),
                 max(1, round(0.05 * ax)), cv2.LINE_AA)
    cv2.line(image, point(0, -0.05), point(0.06, 0.25), shade, max(1, round(0.05 * ax)), cv2.LINE_AA)
    cv2.ellipse(image, point(0, 0.45), axes(0.35, 0.13), 0, 0, 180, (60, 60, 170), max(1, round(0.06 * ax)),
                cv2.LINE_AA)
    return (cx - ax, cy - ay, cx + ax, cy + ay)


def refuse_folder_with_pictures(out: Path) -> None:
    """DataError when ``out`` already holds pictures in the tutorial layout: two datasets never mix."""
    for name in SPLITS:
        images = out / name / "images"
        if images.is_dir() and any(images.iterdir()):
            raise DataError(images, "already holds pictures: choose a new folder for the demo data")


def _no_face_pictures(count: int, seed: int, split_of: np.ndarray) -> np.ndarray:
    """Which pictures show no face: about NO_FACE_FRACTION of them, at random, but every split of two
    or more pictures gets both kinds (training refuses a split with one kind only)."""
    no_face = np.random.default_rng([seed, count]).random(count) < NO_FACE_FRACTION
    for name in SPLITS:
        members = np.flatnonzero(split_of == name)
        if len(members) >= 2 and len(set(no_face[members])) == 1:
            no_face[members[0]] = not no_face[members[0]]
    return no_face


def make_demo_data(out: Path | str, *, count: int = 120, width: int = 640, height: int = 480, seed: int = 0) -> Path:
    """Write ``count`` synthetic labelled pictures to ``out/{train,val,test}/{images,labels}``; return ``out``.

    The same seed gives the same files. No-face pictures get no JSON, as in the tutorial. Refuses a
    folder that already holds pictures, so two datasets never mix.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if width < 32 or height < 32:
        raise ValueError(f"pictures must be at least 32x32 pixels, got {width}x{height}")
    out = Path(out)
    refuse_folder_with_pictures(out)
    rng = np.random.default_rng(seed)
    n_val = round(count * SPLIT_FRACTIONS["val"])
    n_test = round(count * SPLIT_FRACTIONS["test"])
    split_of = np.array(["train"] * (count - n_val - n_test) + ["val"] * n_val + ["test"] * n_test)
    split_of = split_of[rng.permutation(count)]
    for name in SPLITS:
        (out / name / "images").mkdir(parents=True, exist_ok=True)
        (out / name / "labels").mkdir(parents=True, exist_ok=True)
    no_face = _no_face_pictures(count, seed, split_of)
    for i in range(count):
        picture_rng = np.random.default_rng([seed, i])
        image = _background(picture_rng, width, height)
        box = None if no_face[i] else _draw_face(picture_rng, image)
        image = cv2.GaussianBlur(image, (3, 3), 0)
        write_demo_picture(out / str(split_of[i]) / "images" / f"demo_{i:04d}.jpg", image, box)
    return out


def write_demo_picture(image_path: Path, image: np.ndarray, box, quality: int = 90) -> None:
    """One generated picture as a JPEG (``quality``: the real-face set imitates cheap webcams with it) and,
    when it shows a face, its labelme label."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError(f"{image_path}: could not encode the picture")
    encoded.tofile(image_path)
    if box is not None:
        write_labelme(label_path_for(image_path), image_path, box, image.shape[1], image.shape[0])

"""A labelled set of REAL faces that looks like webcam frames, built offline from photos that ship inside
installed packages.

Why it looks like this: a detector trained on face crops pasted into scenes (faces 60-180 px) learned
"pasted grey patch", not "face": it found almost nothing on real photographs and nothing selfie-sized
(issue 18). So the frames imitate what a webcam shows:

* Faces in context. ``PHOTO_SHARE`` of the face pictures are a WHOLE photograph (the face with its
  hair, body and background) scaled and shifted in the frame, the rest of the frame filled with a
  scene or with the photo's own border (mirrored only where no mirrored face can appear), so the
  face's edges are real, not a pasted rectangle's. The others paste face photos into scenes:
  scikit-image's ``lfw_subset`` (100 grey 25x25 face crops, then 100 non-face crops), the astronaut
  (Eileen Collins), the cameraman and matplotlib's Grace Hopper. ``PHOTO_NO_FACE_SHARE`` of the
  no-face pictures are a face photo's surroundings without its face (a body, a flag), so "a
  photograph" never means "a face" either.
* Webcam sizes. Face boxes are ``FACE_WIDTH_PX`` wide (40-320 px in 640x480, scaled with the frame);
  in ``SELFIE_SHARE`` of the face pictures the main face is selfie-sized (``SELFIE_WIDTH_PX`` or more:
  a user at a desk). Several faces fit because a big face leaves room for fewer others.
* A cheap camera. Colour and grey both ways (colour faces in grey scenes, grey faces tinted or in
  colour scenes, whole frames grey), brightness and contrast, defocus or motion blur, sensor noise,
  and a JPEG quality from ``JPEG_QUALITY``; ``sources.json`` records each picture's.
* Every picture also gets face-sized *non-face* patches pasted the same way as faces (LFW non-faces,
  parts of the cat, textures, the face photos' surroundings), so "a pasted patch" never means "a face".

Honest by identity: the face photos of the test split are never seen in train or val (see POOLS;
Grace Hopper is the test split's only whole photograph and never appears in train or val, so a
real-photograph benchmark on her measures a face no training picture holds), and the manifest
``OUT/sources.json`` records the sources of every picture so that this can be checked. ``lfw_subset``
carries no names, so one person photographed twice could sit on both sides; no crop of one side is a
near-copy of a crop of the other (pixel correlation at most 0.84, as between strangers). Files are
read straight from the package folders, so nothing is ever downloaded.

``max_faces`` > 1 makes the multi-face set: frames with 0 to ``max_faces`` faces (of different
people, none pasted over another), built the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import skimage
from matplotlib import cbook
from PIL import Image

from training.data.dataset import SPLITS
from training.data.demo import refuse_folder_with_pictures, write_demo_picture

SPLIT_FRACTIONS = {"train": 0.60, "val": 0.15, "test": 0.25}
NO_FACE_FRACTION = 0.45
FACE_WIDTH_PX = (40.0, 320.0)  # face box width in a 640x480 frame (scaled with the frame): far away to a selfie
SELFIE_WIDTH_PX = 200.0  # from here up, a face as big as a webcam user's at a desk
# Face pictures whose main face is selfie-sized: common enough to learn. With several faces a selfie frame
# holds at most two, so more selfie frames keep selfie faces near a quarter of all faces there too.
SELFIE_SHARE = 0.3
SELFIE_SHARE_SEVERAL = 0.45
MAX_FACES_PER_FRAME = 4
PHOTO_SHARE = 0.45  # of face pictures: a whole photograph (the face in its real surroundings), else pasted faces
PHOTO_NO_FACE_SHARE = 0.3  # of no-face pictures: a face photograph's surroundings without its face
BIG_PHOTO_SHARE = 0.25  # of pasted faces: one of the big photos, else an LFW crop
BIG_PHOTO_SHARE_SELFIE = 0.5  # the same for selfie-sized pasted faces (a 25 px LFW crop blown up 10x is a blur)
GREY_SCENE_P = 0.3  # a grey scene (under pasted faces, around a photo): colour faces in grey frames
GREY_CAMERA_P = 0.15  # the whole frame grey, as from a grey camera
BLUR_P = 0.35  # defocus or motion blur of the whole frame, half each
JPEG_QUALITY = (30, 95)  # each picture's JPEG quality, drawn from this range
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"

# Face boxes (x1, y1, x2, y2) in pixels, read by hand off the photos (drawn and checked once):
# hairline or hat brim to chin, cheek to cheek, as a person labels a face in labelme.
ASTRONAUT_FACE = (180, 72, 272, 177)  # astronaut.png 512x512: frontal, smiling
CAMERA_FACE = (180, 122, 255, 192)  # camera.png 512x512: profile, ear to nose tip, brow to chin
GRACE_HOPPER_FACE = (168, 135, 365, 330)  # grace_hopper.jpg 512x600: frontal, glasses, ear to ear

# lfw_subset: 0-99 are tight face crops (brows to chin, the cheeks at the crop's sides: the labelled box
# is the whole 25x25 crop); 100-199 are non-faces. These non-faces still show an eye, a mouth or half a
# face, so they are left out (a "no face" label on them would be a lie).
LFW_PARTIAL_FACES = frozenset({114, 125, 126, 130, 180})
# Identity split: faces (and non-face crops) of the test split are never used in train or val.
POOLS = {
    # The test split's big photo is a frontal face, as a webcam sees its user; the cameraman's profile
    # trains (with it as the only test photo, a quarter of the test faces were a pose no training
    # face had, which measured the pose, not the detector).
    "trainval": {"lfw_faces": range(0, 70), "photos": ("astronaut", "camera"), "lfw_non_faces": range(100, 170)},
    "test": {"lfw_faces": range(70, 100), "photos": ("grace_hopper",), "lfw_non_faces": range(170, 200)},
}
BACKGROUNDS = ("coffee.png", "chelsea.png", "rocket.jpg", "brick.png", "grass.png", "gravel.png", "coins.png",
               "hubble_deep_field.jpg", "motorcycle_left.png", "motorcycle_right.png", "ihc.png", "page.png",
               "text.png", "moon.png", "retina.jpg", "cell.png", "clock_motion.png")
SKIN_TINTS = np.array([[0.80, 0.95, 1.18], [0.78, 0.97, 1.15], [0.85, 0.98, 1.10], [0.75, 0.92, 1.25]], np.float32)


@dataclass(frozen=True)
class Source:
    """One photo to cut patches from; ``box`` is its face (None: a non-face photo)."""

    name: str
    image: np.ndarray  # BGR uint8
    box: tuple[int, int, int, int] | None
    grey: bool


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return cv2.cvtColor(np.asarray(picture.convert("RGB")), cv2.COLOR_RGB2BGR)


@lru_cache(maxsize=1)
def _photos() -> dict[str, Source]:
    lfw = (np.load(SKIMAGE_DATA / "lfw_subset.npy") * 255).round().astype(np.uint8)
    sources = {f"lfw_{i:03d}": Source(f"lfw_{i:03d}", cv2.cvtColor(lfw[i], cv2.COLOR_GRAY2BGR),
                                      (0, 0, 25, 25) if i < 100 else None, True) for i in range(200)}
    grace = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    for name, path, box, grey in (("astronaut", SKIMAGE_DATA / "astronaut.png", ASTRONAUT_FACE, False),
                                  ("camera", SKIMAGE_DATA / "camera.png", CAMERA_FACE, True),
                                  ("grace_hopper", grace, GRACE_HOPPER_FACE, False)):
        sources[name] = Source(name, _read(path), box, grey)
    for name in BACKGROUNDS:
        image = _read(SKIMAGE_DATA / name)
        sources[name] = Source(name, image, None, bool(np.ptp(image.astype(np.int16), axis=2).max() == 0))
    for source in sources.values():
        source.image.flags.writeable = False  # shared by every picture: cut from, never drawn on
    return sources


def real_face_sources() -> dict[str, dict[str, list[str]]]:
    """Which face photos and non-face crops each split may use: train and val share, test stands apart."""
    result = {}
    for pool, spec in POOLS.items():
        faces = [f"lfw_{i:03d}" for i in spec["lfw_faces"]] + list(spec["photos"])
        non_faces = [f"lfw_{i:03d}" for i in spec["lfw_non_faces"] if i not in LFW_PARTIAL_FACES]
        for split in ("train", "val") if pool == "trainval" else ("test",):
            result[split] = {"faces": list(faces), "non_faces": list(non_faces)}
    return result


def _margins(rng: np.random.Generator) -> np.ndarray:
    """Surroundings kept around a face (left, top, right, bottom) as a fraction of its size."""
    return rng.uniform(0.0, 0.35, 4) * (rng.random() < 0.7)


def _look(rng: np.random.Generator, patch: np.ndarray, grey: bool) -> tuple[np.ndarray, bool]:
    """Tint (grey sources) or desaturate (colour ones), then brightness, contrast, gamma and sometimes
    blur: faces, photos and non-faces alike, so none of these tells them apart. Returns the picture
    (float32) and whether it is in colour."""
    image = patch.astype(np.float32)
    colour = not grey
    if grey and rng.random() < 0.6:
        tint = SKIN_TINTS[rng.integers(len(SKIN_TINTS))] * rng.uniform(0.95, 1.05, 3).astype(np.float32)
        image = image * (1 + rng.uniform(0.5, 1.0) * (tint - 1))
        colour = True
    elif not grey and rng.random() < 0.25:
        image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
        colour = False
    image = np.clip((image - 128) * rng.uniform(0.7, 1.3) + 128 + rng.uniform(-30, 30), 0, 255)
    image = 255 * (image / 255) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    return image, colour


def _soft_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Alpha that fades to 0 at the patch edge (a rectangle or an ellipse), so no hard seam shows."""
    feather = max(1.0, rng.uniform(0.05, 0.15) * min(h, w))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    if rng.random() < 0.35:
        r = np.sqrt(((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2)
        alpha = (1 - r) * min(h, w) / 2 / feather
    else:
        alpha = np.minimum(np.minimum(x, w - x), np.minimum(y, h - y)) / feather
    return np.clip(alpha, 0, 1)[..., None]


def _paste(frame: np.ndarray, patch: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape[:2]
    fx1, fy1, fx2, fy2 = max(x, 0), max(y, 0), min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    if fx1 >= fx2 or fy1 >= fy2:
        return
    p, a = patch[fy1 - y : fy2 - y, fx1 - x : fx2 - x], alpha[fy1 - y : fy2 - y, fx1 - x : fx2 - x]
    frame[fy1:fy2, fx1:fx2] = a * p + (1 - a) * frame[fy1:fy2, fx1:fx2]


def _face_width(rng: np.random.Generator, scale: float, selfie_share: float) -> float:
    """A face box width: selfie-sized (``SELFIE_WIDTH_PX`` up) with ``selfie_share``, else uniform from the
    smallest up to selfie size (as many faces 40-80 px as 160-200 px: most faces a webcam sees are not
    tiny), scaled with the frame."""
    lo, selfie, hi = FACE_WIDTH_PX[0] * scale, SELFIE_WIDTH_PX * scale, FACE_WIDTH_PX[1] * scale
    if rng.random() < selfie_share:
        return float(rng.uniform(selfie, hi))
    return float(rng.uniform(lo, selfie))


def _face_widths(rng: np.random.Generator, scale: float, width: int, max_faces: int) -> list[float]:
    """The widths of one picture's faces, the main face first: the main one from the whole range, the
    others (``max_faces`` > 1) no wider than the room the main one leaves; a selfie-sized face shares
    its frame with one other face at most, so several faces still fit."""
    if max_faces == 1:
        return [_face_width(rng, scale, SELFIE_SHARE)]
    selfie = SELFIE_WIDTH_PX * scale
    main = _face_width(rng, scale, SELFIE_SHARE_SEVERAL)
    count = int(rng.integers(1, max_faces + 1))
    if main >= selfie:
        count = min(count, 2)
    room = max(FACE_WIDTH_PX[0] * scale, 0.85 * (width - main) / max(1.0, np.sqrt(count - 1)))
    if count > 2:
        room = min(room, 0.99 * selfie)
    others = []
    for _ in range(count - 1):
        w = _face_width(rng, scale, SELFIE_SHARE_SEVERAL)
        others.append(w if w <= room else float(rng.uniform(0.6, 1.0)) * room)
    return [main, *sorted(others, reverse=True)]


def _face_patch(rng: np.random.Generator, source: Source, face_width: float, max_height: float):
    """A face cut (with some surroundings for the big photos), resized so that its box is about
    ``face_width`` wide (and at most ``max_height`` high); returns the patch and the face box in patch pixels."""
    bx1, by1, bx2, by2 = source.box
    bw, bh = bx2 - bx1, by2 - by1
    m = _margins(rng) * np.array([bw, bh, bw, bh])
    ih, iw = source.image.shape[:2]
    cx1, cy1 = max(0, round(bx1 - m[0])), max(0, round(by1 - m[1]))
    cx2, cy2 = min(iw, round(bx2 + m[2])), min(ih, round(by2 + m[3]))
    cut = source.image[cy1:cy2, cx1:cx2]
    w = face_width
    h = min(w * bh / bw * rng.uniform(0.92, 1.08), max_height)
    size = (max(1, round(cut.shape[1] * w / bw)), max(1, round(cut.shape[0] * h / bh)))
    patch = cv2.resize(cut, size, interpolation=cv2.INTER_CUBIC if w > bw else cv2.INTER_AREA)
    sx, sy = size[0] / cut.shape[1], size[1] / cut.shape[0]
    box = ((bx1 - cx1) * sx, (by1 - cy1) * sy, (bx2 - cx1) * sx, (by2 - cy1) * sy)
    return patch, box


def _non_face_patch(rng: np.random.Generator, source: Source, side: tuple[float, float]) -> np.ndarray:
    """A face-sized cut with no human face: a whole LFW non-face crop, or a square-ish piece of a photo
    (clear of its face, if it has one)."""
    ih, iw = source.image.shape[:2]
    cut = source.image
    if not source.name.startswith("lfw_"):
        if source.box is not None:
            cut = source.image[source.box[3] + 10 :]  # fallback if no random cut clears the face
        for _ in range(20):
            cw = int(rng.uniform(0.15, 0.6) * min(ih, iw))
            ch = min(ih, int(cw * rng.uniform(0.8, 1.25)))
            x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
            if source.box is None or _apart((x, y, x + cw, y + ch), source.box, gap=10):
                cut = source.image[y : y + ch, x : x + cw]
                break
    grow = 1 + _margins(rng)  # as big as a face patch with its surroundings
    w = rng.uniform(*side) * (grow[0] + grow[2] - 1)
    h = float(np.clip(w * rng.uniform(0.85, 1.2), side[0], side[1] * (grow[1] + grow[3] - 1)))
    size = (max(1, round(w)), max(1, round(h)))
    return cv2.resize(cut, size, interpolation=cv2.INTER_CUBIC if w > cut.shape[1] else cv2.INTER_AREA)


def _apart(a, b, gap: float = 0.0) -> bool:
    """Whether boxes ``a`` and ``b`` (x1, y1, x2, y2) are at least ``gap`` pixels apart."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _background(rng: np.random.Generator, width: int, height: int, grey: bool) -> tuple[np.ndarray, str, bool]:
    """A random crop of a scene, flipped and lit at random: the frame (float32), the scene's name and
    whether it is grey. ``grey`` asks for any scene made grey, else a colour one (webcams see colour),
    so that grey faces meet colour scenes as often as colour faces meet grey ones."""
    photos = _photos()
    names = BACKGROUNDS if grey else [name for name in BACKGROUNDS if not photos[name].grey]
    source = photos[names[rng.integers(len(names))]]
    ih, iw = source.image.shape[:2]
    scale = rng.uniform(0.45, 1.0) * min(iw / width, ih / height)  # a random crop of the frame's shape
    cw, ch = max(8, round(width * scale)), max(8, round(height * scale))
    x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    frame = cv2.resize(source.image[y : y + ch, x : x + cw], (width, height), interpolation=cv2.INTER_LINEAR)
    frame = frame[:, ::-1] if rng.random() < 0.5 else frame
    gains = rng.uniform(0.9, 1.1, 3) * rng.uniform(0.7, 1.2)
    if grey:
        frame = cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        gains = np.full(3, gains.mean())
    frame = frame.astype(np.float32) * gains.astype(np.float32)
    return np.clip(frame, 0, 255), source.name, grey


def _scaled(image: np.ndarray, s: float) -> tuple[np.ndarray, float, float, float]:
    """A photo about to be scaled by ``s``: shrunk here first when ``s`` < 1 (INTER_AREA, no aliasing);
    returns it, the exact x and y scales from the original, and the scale still left for the warp."""
    if s >= 1:
        return image, s, s, s
    ih, iw = image.shape[:2]
    size = (max(1, round(iw * s)), max(1, round(ih * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / iw, size[1] / ih, 1.0


def _warp(image: np.ndarray, m: float, tx: float, ty: float, width: int, height: int, border: int,
          under: np.ndarray | None = None) -> np.ndarray:
    """``image`` scaled by ``m`` and shifted by (tx, ty) into a width x height frame, in pixel-edge
    coordinates (a point u of the image lands at m * u + t: boxes move exactly as the pixels do). Outside
    the image: ``border`` (cv2.BORDER_*), or the pixels of ``under`` when given."""
    matrix = np.float32([[m, 0, tx + 0.5 * m - 0.5], [0, m, ty + 0.5 * m - 0.5]])
    image = np.ascontiguousarray(image)
    if under is not None:
        return cv2.warpAffine(image, matrix, (width, height), dst=under, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_TRANSPARENT)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border)


def _photo_look(rng: np.random.Generator, source: Source):
    """A face photograph's look for one frame (colour or grey, see _look), mirrored half the time: the
    picture, whether it is in colour, its face box (mirrored along) and whether it was mirrored."""
    image, colour = _look(rng, source.image, source.grey)
    iw = image.shape[1]
    bx1, by1, bx2, by2 = source.box
    flipped = bool(rng.random() < 0.5)
    if flipped:
        image, bx1, bx2 = image[:, ::-1], iw - bx2, iw - bx1
    return image, colour, (bx1, by1, bx2, by2), flipped


def _photo_face_frame(rng: np.random.Generator, source: Source, face_width: float, width: int,
                      height: int) -> tuple[np.ndarray, tuple[float, float, float, float], dict]:
    """The WHOLE photograph scaled so that its face is ``face_width`` wide and shifted to a random place
    with the face inside the frame: the face keeps its real hair, body and background. What the photo
    leaves of the frame is its own border, mirrored (only where no mirrored face can show) or repeated,
    or a scene. Returns the frame (float32), the face box and a record."""
    image, colour, (bx1, by1, bx2, by2), flipped = _photo_look(rng, source)
    ih, iw = image.shape[:2]
    image, sx, sy, m = _scaled(image, min(face_width / (bx2 - bx1), (height - 1) / (by2 - by1)))
    fx1, fy1, fx2, fy2 = bx1 * sx, by1 * sy, bx2 * sx, by2 * sy
    tx, ty = float(rng.uniform(-fx1, width - fx2)), float(rng.uniform(-fy1, height - fy2))
    box = (fx1 + tx, fy1 + ty, fx2 + tx, fy2 + ty)
    rect = (tx, ty, tx + iw * sx, ty + ih * sy)
    fill, background, grey_scene = None, None, True
    if not (rect[0] <= 0 and rect[1] <= 0 and rect[2] >= width and rect[3] >= height):
        gap = 0.25 * (box[2] - box[0])  # a mirrored ear or hair is fine, a mirrored face is not
        mirror_safe = (max(0.0, rect[0]) <= box[0] - rect[0] - gap and max(0.0, rect[1]) <= box[1] - rect[1] - gap
                       and max(0.0, width - rect[2]) <= rect[2] - box[2] - gap
                       and max(0.0, height - rect[3]) <= rect[3] - box[3] - gap)
        draw = rng.random()
        fill = "mirror" if draw < 0.3 and mirror_safe else "repeat" if 0.3 <= draw < 0.4 else "scene"
    if fill == "scene":
        under, background, grey_scene = _background(rng, width, height, bool(rng.random() < GREY_SCENE_P))
        frame = _warp(image, m, tx, ty, width, height, cv2.BORDER_TRANSPARENT, under=under)
    else:
        frame = _warp(image, m, tx, ty, width, height, cv2.BORDER_REPLICATE if fill == "repeat" else cv2.BORDER_REFLECT_101)
    record = {"flipped": flipped, "colour": colour, "fill": fill, "background": background,
              "grey_surroundings": not colour and grey_scene, "rect": [round(v, 3) for v in rect]}
    return frame, box, record


def _photo_surroundings_frame(rng: np.random.Generator, source: Source, width: int,
                              height: int) -> tuple[np.ndarray | None, dict]:
    """A face photograph zoomed in on its surroundings, its face wholly outside the frame: a body and a
    background with no face (None when 30 tries found no such view)."""
    image, colour, (bx1, by1, bx2, by2), flipped = _photo_look(rng, source)
    ih, iw = image.shape[:2]
    cover = max(width / iw, height / ih)
    for _ in range(30):
        s = cover * float(rng.uniform(1.0, 3.0))
        tx, ty = float(rng.uniform(width - s * iw, 0)), float(rng.uniform(height - s * ih, 0))
        face = (bx1 * s + tx, by1 * s + ty, bx2 * s + tx, by2 * s + ty)
        if _apart(face, (0, 0, width, height), gap=0.15 * s * (bx2 - bx1)):
            frame = _warp(image, s, tx, ty, width, height, cv2.BORDER_REFLECT_101)
            return frame, {"flipped": flipped, "colour": colour}
    return None, {}


def _distractor_name(rng: np.random.Generator, pool: dict[str, list[str]]) -> str:
    """LFW non-faces, the cat, textures, or the face photos' surroundings (which come without a face)."""
    kind = rng.choice(4, p=[0.4, 0.2, 0.25, 0.15])
    if kind == 0:
        return str(rng.choice(pool["non_faces"]))
    if kind == 1:
        return "chelsea.png"
    if kind == 2:
        return str(rng.choice([n for n in BACKGROUNDS if n != "chelsea.png"]))
    return str(rng.choice([n for n in pool["faces"] if not n.startswith("lfw_")]))


def _distractors(rng: np.random.Generator, frame: np.ndarray, pool: dict[str, list[str]], boxes: list,
                 scale: float, most: int) -> list[str]:
    """Paste 0 to ``most`` face-sized non-face patches (sized as faces are), none over a face; their names."""
    photos = _photos()
    height, width = frame.shape[:2]
    names = []
    for _ in range(int(rng.integers(0, most + 1))):
        name = _distractor_name(rng, pool)
        side = _face_width(rng, scale, SELFIE_SHARE)
        patch = _non_face_patch(rng, photos[name], (0.9 * side, 1.1 * side))
        patch = patch[:, ::-1] if rng.random() < 0.5 else patch
        h, w = patch.shape[:2]
        for _ in range(10):  # never over a face: each face stays whole, as labelled
            x, y = int(rng.integers(-w // 4, width - 3 * w // 4)), int(rng.integers(-h // 4, height - 3 * h // 4))
            if all(_apart((x, y, x + w, y + h), box) for box in boxes):
                _paste(frame, _look(rng, patch, photos[name].grey)[0], _soft_mask(rng, h, w), x, y)
                names.append(name)
                break
    return names


def _place_face(rng: np.random.Generator, pool: dict[str, list[str]], face_width: float, scale: float,
                width: int, height: int, placed: list[dict]) -> dict | None:
    """One face patch at a place where it covers no face already placed and its box lies inside the frame
    and under no other face's patch; None when 50 places were tried in vain. The first face of a frame
    takes the first place drawn."""
    photos = _photos()
    used = {face["face"] for face in placed}  # one photo once per frame: several faces are several people
    lfw = [n for n in pool["faces"] if n.startswith("lfw_") and n not in used]
    big = [n for n in pool["faces"] if not n.startswith("lfw_") and n not in used]
    share = BIG_PHOTO_SHARE_SELFIE if face_width >= SELFIE_WIDTH_PX * scale else BIG_PHOTO_SHARE
    name = str(rng.choice(big if rng.random() < share and big else lfw))
    patch, (px1, py1, px2, py2) = _face_patch(rng, photos[name], face_width, height - 1)
    flipped = bool(rng.random() < 0.5)
    if flipped:
        patch = patch[:, ::-1]
        px1, px2 = patch.shape[1] - px2, patch.shape[1] - px1
    ph, pw = patch.shape[:2]
    for _ in range(50 if placed else 1):
        # Whole-pixel offsets that keep the box fully inside the frame.
        x = int(rng.integers(int(np.ceil(-px1)), int(np.floor(width - px2)) + 1))
        y = int(rng.integers(int(np.ceil(-py1)), int(np.floor(height - py2)) + 1))
        box = (x + px1, y + py1, x + px2, y + py2)
        if all(_apart((x, y, x + pw, y + ph), face["box"]) and _apart(face["rect"], box) for face in placed):
            image, colour = _look(rng, patch, photos[name].grey)
            return {"face": name, "flipped": flipped, "box": box, "rect": (x, y, x + pw, y + ph), "kind": "pasted",
                    "colour": colour, "image": image, "x": x, "y": y}
    return None


def _camera(rng: np.random.Generator, frame: np.ndarray, scale: float) -> tuple[np.ndarray, dict]:
    """What a cheap webcam does to the whole frame: sometimes grey, brightness and contrast, defocus or
    motion blur (symmetric kernels: the faces do not move), sensor noise; the JPEG quality to save it at
    is drawn here too. Returns the frame (uint8) and a record."""
    grey = bool(rng.random() < GREY_CAMERA_P)
    if grey:
        frame = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.5:
        frame = (frame - 128) * rng.uniform(0.75, 1.25) + 128 + rng.uniform(-25, 25)
    blur, draw = None, rng.random()
    if draw < BLUR_P / 2:
        blur = "defocus"
        frame = cv2.GaussianBlur(frame, (0, 0), max(0.3, rng.uniform(0.6, 2.0) * scale))
    elif draw < BLUR_P:
        blur = "motion"
        half = max(1, round(rng.uniform(1, 6) * scale))  # a streak of 3-13 px at 640x480
        angle = rng.uniform(0, np.pi)
        dx, dy = round(np.cos(angle) * half), round(np.sin(angle) * half)
        kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
        cv2.line(kernel, (half - dx, half - dy), (half + dx, half + dy), 1.0, 1)
        frame = cv2.filter2D(frame, -1, kernel / kernel.sum())
    noise = float(rng.uniform(0, 6))
    frame = frame + noise * rng.standard_normal((*frame.shape[:2], 1), dtype=np.float32)  # sensor grain
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    record = {"grey": grey, "blur": blur, "noise": round(noise, 2), "jpeg_quality": quality}
    return np.clip(frame, 0, 255).round().astype(np.uint8), record


def _frame(rng: np.random.Generator, pool: dict[str, list[str]], has_face: bool, width: int, height: int,
           max_faces: int = 1):
    """One picture, its face boxes and a record.

    With a face: a whole photograph with its face (``PHOTO_SHARE``) or faces pasted into a scene, and
    with ``max_faces`` > 1 more faces pasted apart from each other. Without: a scene, or a face
    photograph's surroundings (``PHOTO_NO_FACE_SHARE``). Then 0-3 non-face patches (0-2 over a
    photograph) and what a cheap camera does.
    """
    photos = _photos()
    scale = min(width / 640, height / 480)
    big = [n for n in pool["faces"] if not n.startswith("lfw_")]
    widths = _face_widths(rng, scale, width, max_faces) if has_face else []
    faces: list[dict] = []
    frame, record = None, {}
    if big and rng.random() < (PHOTO_SHARE if has_face else PHOTO_NO_FACE_SHARE):
        name = str(rng.choice(big))
        if has_face:
            frame, box, photo = _photo_face_frame(rng, photos[name], widths.pop(0), width, height)
            faces.append({"face": name, "flipped": photo["flipped"], "box": box, "rect": box, "kind": "photo",
                          "colour": photo["colour"], "patch": photo["rect"]})
            record = {"kind": "photo", "photo": name, "photo_rect": photo["rect"], "fill": photo["fill"],
                      "background": photo["background"], "grey_surroundings": photo["grey_surroundings"]}
        else:
            frame, photo = _photo_surroundings_frame(rng, photos[name], width, height)
            record = {"kind": "surroundings", "photo": name, "background": None,
                      "grey_surroundings": not photo.get("colour", True)}
    if frame is None:
        frame, background, grey = _background(rng, width, height, bool(rng.random() < GREY_SCENE_P))
        record = {"kind": "pasted" if has_face else "scene", "background": background, "grey_surroundings": grey}
    for face_width in widths:
        face = _place_face(rng, pool, face_width, scale, width, height, faces)
        if face is not None:
            faces.append(face)
    boxes = [face["box"] for face in faces]
    distractors = _distractors(rng, frame, pool, boxes, scale, 2 if record["kind"] in ("photo", "surroundings") else 3)
    for face in faces:
        if face["kind"] == "pasted":
            _paste(frame, face["image"], _soft_mask(rng, *face["image"].shape[:2]), face["x"], face["y"])
    image, camera = _camera(rng, frame, scale)
    record["grey_surroundings"] = record["grey_surroundings"] or camera["grey"]
    described = [{"face": f["face"], "flipped": f["flipped"], "box": [round(v, 3) for v in f["box"]],
                  "colour": f["colour"] and not camera["grey"], "kind": f["kind"]} for f in faces]
    if max_faces == 1:  # one face at most: its photo, box and look at the top of the record
        face = described[0] if described else {"face": None, "flipped": False, "box": None, "colour": None}
        record = {**record, **{k: face[k] for k in ("face", "flipped", "box", "colour")}}
    else:  # with where each face's patch (the face and its surroundings, or the whole photo) lies
        record["faces"] = [{**d, "patch": [round(float(v), 3) for v in f.get("patch", f["rect"])]}
                           for d, f in zip(described, faces, strict=True)]
    record.update(distractors=distractors, camera=camera)
    return image, boxes, record


def _split_counts(count: int, fractions: dict[str, float]) -> dict[str, int]:
    exact = {name: count * fractions.get(name, 0.0) for name in SPLITS}
    counts = {name: int(np.floor(v)) for name, v in exact.items()}
    for name in sorted(SPLITS, key=lambda n: (counts[n] - exact[n], SPLITS.index(n)))[: count - sum(counts.values())]:
        counts[name] += 1  # largest remainders first
    return counts


def make_real_demo_data(out: str | Path, count: int = 600, *, seed: int = 0, width: int = 640, height: int = 480,
                        no_face_fraction: float = NO_FACE_FRACTION,
                        split_fractions: dict[str, float] | None = None, test_people: str = "new",
                        max_faces: int = 1) -> Path:
    """Write ``count`` pictures of real faces (and no-face pictures) to ``out/{train,val,test}/{images,labels}``.

    A benchmark, not a toy: test faces come from other photos than train/val faces, and ``out/sources.json``
    records where every picture came from. Each split gets ``round(n * no_face_fraction)`` no-face
    pictures, which have no JSON (as in the tutorial and training.data.demo). The same seed gives the same
    bytes. Refuses a folder that already holds pictures, so two datasets never mix.

    ``test_people="seen"`` draws the test split from the train/val people instead (new pictures of
    the same people): what a user who trains on their own face meets, where "new" (the default)
    asks the harder question of faces never seen.

    Frames look like a webcam's (see the module docstring): whole photographs and pasted faces, face
    boxes 40-320 px wide at 640x480 (scaled with the frame), colour and grey both ways, blur, noise and
    JPEG quality 30-95. Each frame's record in the manifest says its ``kind`` ("photo": a whole photograph
    with its face; "pasted": faces pasted into a scene; "surroundings": a face photograph without its
    face; "scene": no face), whether each face is in ``colour``, whether its surroundings are grey, and
    what the ``camera`` did (grey, blur, noise, JPEG quality).

    ``max_faces`` above 1 (at most 4) makes a multi-face set: each face picture holds 1 to ``max_faces``
    faces of different people (fewer when one is selfie-sized), no face's patch over another face, one
    labelme rectangle each; the manifest lists them under ``faces`` (photo, flipped, box, colour, kind,
    and ``patch``: where the face and its surroundings, or its whole photograph, lie in the frame).
    """
    if not 1 <= max_faces <= MAX_FACES_PER_FRAME:
        raise ValueError(f"max_faces must be 1 to {MAX_FACES_PER_FRAME}, got {max_faces}")
    if test_people not in ("new", "seen"):
        raise ValueError(f"test_people must be 'new' or 'seen', got {test_people!r}")
    fractions = dict(SPLIT_FRACTIONS if split_fractions is None else split_fractions)
    if set(fractions) - set(SPLITS) or min(fractions.values(), default=-1) < 0 or abs(sum(fractions.values()) - 1) > 1e-6:
        raise ValueError(f"split_fractions must give {', '.join(SPLITS)} shares >= 0 that sum to 1, got {fractions}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if width < 64 or height < 64:
        raise ValueError(f"pictures must be at least 64x64 pixels, got {width}x{height}")
    if not 0 <= no_face_fraction <= 1:
        raise ValueError(f"no_face_fraction must be in [0, 1], got {no_face_fraction}")
    out = Path(out)
    refuse_folder_with_pictures(out)
    rng = np.random.default_rng(seed)
    counts = _split_counts(count, fractions)
    split_of = np.array([name for name in SPLITS for _ in range(counts[name])])[rng.permutation(count)]
    no_face = np.zeros(count, bool)
    for name in SPLITS:
        members = np.flatnonzero(split_of == name)
        no_face[rng.permutation(members)[: round(len(members) * no_face_fraction)]] = True
    pools = real_face_sources()
    if test_people == "seen":
        pools["test"] = pools["train"]
    frames = {}
    for name in SPLITS:
        (out / name / "images").mkdir(parents=True, exist_ok=True)
        (out / name / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        split = str(split_of[i])
        image, boxes, record = _frame(np.random.default_rng([seed, i]), pools[split], not no_face[i], width, height,
                                      max_faces)
        image_path = out / split / "images" / f"real_{i:04d}.jpg"
        write_demo_picture(image_path, image, boxes or None, quality=record["camera"]["jpeg_quality"])
        frames[image_path.relative_to(out).as_posix()] = {"split": split, **record}
    several = {"max_faces": max_faces} if max_faces != 1 else {}  # the single-face manifest: one face a frame
    manifest = {"seed": seed, "width": width, "height": height, "test_people": test_people, **several,
                "pools": pools, "frames": frames}
    (out / "sources.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out

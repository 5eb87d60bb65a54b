"""A labelled benchmark of REAL faces, built offline from photos that ship inside installed packages.

The synthetic demo faces (training.demo) are easy to learn and hid that a detector trained on them
finds no real face. This set pastes real face photos into real scenes instead: scikit-image's
``lfw_subset`` (100 grey 25x25 face crops, then 100 non-face crops), the astronaut (Eileen Collins),
the cameraman, and matplotlib's Grace Hopper. Every picture also gets 0-3 face-sized *non-face*
patches pasted the same way (LFW non-faces, parts of the cat, textures, the face photos' surroundings),
so "a pasted patch" never means "a face", and grey versus colour is no clue either (grey faces are
often tinted, colour frames are sometimes made grey).

Honest by identity: the face photos of the test split are never seen in train or val (see POOLS), and
the manifest ``OUT/sources.json`` records the sources of every picture so that this can be checked.
``lfw_subset`` carries no names, so one person photographed twice could sit on both sides; no crop
of one side is a near-copy of a crop of the other (pixel correlation at most 0.84, as between strangers). Files are read straight from the package folders, so nothing is ever downloaded.

``max_faces`` > 1 makes the multi-face benchmark: frames with 0 to ``max_faces`` faces (of different
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

from training.data import SPLITS
from training.demo import refuse_folder_with_pictures, write_demo_picture

SPLIT_FRACTIONS = {"train": 0.60, "val": 0.15, "test": 0.25}
NO_FACE_FRACTION = 0.45
FACE_SIDE_PX = (60.0, 180.0)  # box width and height in a 640x480 frame; scaled with the frame
SEVERAL_FACES_SIDE_PX = (60.0, 160.0)  # the same with up to four faces: four fit side by side in 640x480
MAX_FACES_PER_FRAME = 4
BIG_PHOTO_SHARE = 0.25  # of face pictures: one of the big photos, else an LFW crop
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


def _look(rng: np.random.Generator, patch: np.ndarray, grey: bool) -> np.ndarray:
    """Tint (grey sources) or desaturate (colour ones), then brightness, contrast, gamma and sometimes
    blur: faces and non-faces alike, so none of these tells them apart."""
    image = patch.astype(np.float32)
    if grey and rng.random() < 0.6:
        tint = SKIN_TINTS[rng.integers(len(SKIN_TINTS))] * rng.uniform(0.95, 1.05, 3).astype(np.float32)
        image = image * (1 + rng.uniform(0.5, 1.0) * (tint - 1))
    elif not grey and rng.random() < 0.15:
        image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    image = np.clip((image - 128) * rng.uniform(0.7, 1.3) + 128 + rng.uniform(-30, 30), 0, 255)
    image = 255 * (image / 255) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    return image


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


def _face_patch(rng: np.random.Generator, source: Source, side: tuple[float, float]):
    """A face cut (with some surroundings for the big photos), resized so its box side is in ``side``;
    returns the patch and the face box in patch pixels."""
    bx1, by1, bx2, by2 = source.box
    bw, bh = bx2 - bx1, by2 - by1
    m = _margins(rng) * np.array([bw, bh, bw, bh])
    ih, iw = source.image.shape[:2]
    cx1, cy1 = max(0, round(bx1 - m[0])), max(0, round(by1 - m[1]))
    cx2, cy2 = min(iw, round(bx2 + m[2])), min(ih, round(by2 + m[3]))
    cut = source.image[cy1:cy2, cx1:cx2]
    lo, hi = side[0] + 0.5, side[1] - 0.5  # room for rounding the patch size to whole pixels
    w = rng.uniform(lo, hi)
    h = float(np.clip(w * bh / bw * rng.uniform(0.92, 1.08), lo, hi))
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


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, str]:
    source = _photos()[BACKGROUNDS[rng.integers(len(BACKGROUNDS))]]
    ih, iw = source.image.shape[:2]
    scale = rng.uniform(0.45, 1.0) * min(iw / width, ih / height)  # a random crop of the frame's shape
    cw, ch = max(8, round(width * scale)), max(8, round(height * scale))
    x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    frame = cv2.resize(source.image[y : y + ch, x : x + cw], (width, height), interpolation=cv2.INTER_LINEAR)
    frame = frame[:, ::-1] if rng.random() < 0.5 else frame
    frame = frame.astype(np.float32) * (rng.uniform(0.9, 1.1, 3) * rng.uniform(0.7, 1.2)).astype(np.float32)
    return np.clip(frame, 0, 255), source.name


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


def _place_face(rng: np.random.Generator, pool: dict[str, list[str]], side: tuple[float, float], width: int,
                height: int, placed: list[dict]) -> dict | None:
    """One face patch at a place where it covers no face already placed and its box lies inside the frame
    and under no other face's patch; None when 50 places were tried in vain. The first face of a frame
    takes the first place drawn (the single-face sets' random draws, unchanged)."""
    photos = _photos()
    used = {face["face"] for face in placed}  # one photo once per frame: several faces are several people
    lfw = [n for n in pool["faces"] if n.startswith("lfw_") and n not in used]
    big = [n for n in pool["faces"] if not n.startswith("lfw_") and n not in used]
    name = str(rng.choice(big if rng.random() < BIG_PHOTO_SHARE and big else lfw))
    patch, (px1, py1, px2, py2) = _face_patch(rng, photos[name], side)
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
            return {"face": name, "flipped": flipped, "box": box, "rect": (x, y, x + pw, y + ph),
                    "patch": _look(rng, patch, photos[name].grey), "x": x, "y": y}
    return None


def _frame(rng: np.random.Generator, pool: dict[str, list[str]], has_face: bool, width: int, height: int,
           max_faces: int = 1):
    """One picture: background, 0-3 non-face patches, and no face, one, or (``max_faces`` > 1) one to
    ``max_faces`` faces apart from each other; returns it, the face boxes and a record."""
    photos = _photos()
    scale = min(width / 640, height / 480)
    sides = FACE_SIDE_PX if max_faces == 1 else SEVERAL_FACES_SIDE_PX
    side = (sides[0] * scale, sides[1] * scale)
    frame, background = _background(rng, width, height)
    wanted = 0 if not has_face else 1 if max_faces == 1 else int(rng.integers(1, max_faces + 1))
    faces: list[dict] = []
    for _ in range(wanted):
        face = _place_face(rng, pool, side, width, height, faces)
        if face is not None:
            faces.append(face)
    boxes = [face["box"] for face in faces]
    distractors = []
    for _ in range(int(rng.integers(0, 4))):
        name = _distractor_name(rng, pool)
        patch = _non_face_patch(rng, photos[name], side)
        patch = patch[:, ::-1] if rng.random() < 0.5 else patch
        h, w = patch.shape[:2]
        for _ in range(10):  # never over a face: each face stays whole, as labelled
            x, y = int(rng.integers(-w // 4, width - 3 * w // 4)), int(rng.integers(-h // 4, height - 3 * h // 4))
            if all(_apart((x, y, x + w, y + h), box) for box in boxes):
                _paste(frame, _look(rng, patch, photos[name].grey), _soft_mask(rng, h, w), x, y)
                distractors.append(name)
                break
    for face in faces:
        _paste(frame, face["patch"], _soft_mask(rng, *face["patch"].shape[:2]), face["x"], face["y"])
    described = [{"face": f["face"], "flipped": f["flipped"], "box": [round(v, 3) for v in f["box"]]} for f in faces]
    if max_faces == 1:  # the single-face sets' manifest, as it always was
        record: dict = {"background": background, "face": None, "flipped": False, "box": None, **(
            described[0] if described else {}), "distractors": distractors}
    else:  # with where each face's patch (the face and its surroundings) was pasted
        record = {"background": background, "faces": [{**d, "patch": list(f["rect"])} for d, f in zip(
            described, faces, strict=True)], "distractors": distractors}
    if rng.random() < 0.15:  # a grey camera: colour is no clue
        frame = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    frame += rng.uniform(0, 4) * rng.standard_normal((height, width, 1), dtype=np.float32)  # sensor grain
    if rng.random() < 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.4, 0.9))
    return np.clip(frame, 0, 255).round().astype(np.uint8), boxes, record


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
    pictures, which have no JSON (as in the tutorial and training.demo). The same seed gives the same
    bytes. Refuses a folder that already holds pictures, so two datasets never mix.

    ``test_people="seen"`` draws the test split from the train/val people instead (new pictures of
    the same people): what a user who trains on their own face meets, where "new" (the default)
    asks the harder question of faces never seen.

    ``max_faces`` above 1 (at most 4, what fits a 640x480 frame at these sizes) makes a multi-face set:
    each face picture holds 1 to ``max_faces`` faces of different people (box sides 60-160 px at
    640x480), no face's patch over another face, one labelme rectangle each; the manifest lists them
    under ``faces`` (photo, flipped, box, and ``patch``: where the face and its surroundings were pasted).
    ``max_faces=1`` writes the single-face set, byte for byte as before.
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
        write_demo_picture(image_path, image, boxes or None)
        frames[image_path.relative_to(out).as_posix()] = {"split": split, **record}
    several = {"max_faces": max_faces} if max_faces != 1 else {}  # the single-face manifest stays as it was
    manifest = {"seed": seed, "width": width, "height": height, "test_people": test_people, **several,
                "pools": pools, "frames": frames}
    (out / "sources.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out

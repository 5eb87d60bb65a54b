"""Reading a labelled face dataset: pictures plus labelme JSON, checked file by file.

Three layouts are read (``load_dataset`` finds which):

* ``split``  - the tutorial's ``root/{train,val,test}/{images,labels}``;
* ``flat``   - ``root/images/`` + ``root/labels/``;
* ``beside`` - labelme's default, each ``.json`` next to its picture (in ``root`` or ``root/images``).

Pictures and labels pair by file *stem*, never by listing order (the tutorial's sorted-order pairing
shifts every pair when one file is missing). Flat and beside datasets are split by a hash of the stem,
so adding pictures never moves an old picture to another split. Every bad file becomes a
:class:`Problem` (skipped and reported) or, with ``strict=True``, a :class:`DataError`.

No TensorFlow here: the desktop app reads datasets without loading it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
UNSUPPORTED_IMAGE_EXTENSIONS = (".webp", ".gif", ".tif", ".tiff", ".heic", ".avif")
FACE_LABEL = "face"
BOX_TOLERANCE_PX = 1.0  # labelme lets a corner land a pixel past the edge; more than that is a labelling error
LABELME_VERSION = "5.5.0"
LAYOUTS = {
    "split": "train/val/test folders",
    "flat": "images/ + labels/, split by file name",
    "beside": "labelme JSON beside each picture, split by file name",
}

Box = tuple[float, float, float, float]
NO_BOX: Box = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Sample:
    """One picture and its label; ``box`` is normalised ``[x1, y1, x2, y2]`` (zeros without a face)."""

    image_path: Path
    label_path: Path | None
    has_face: bool
    box: Box
    width: int
    height: int


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DataError(ValueError):
    """A dataset problem that stops the work; names the file or folder and what is wrong with it."""

    def __init__(self, path: Path | str, message: str):
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


@dataclass
class Dataset:
    """The samples of each split, plus every file that was skipped."""

    root: Path
    layout: str
    splits: dict[str, list[Sample]]
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Pictures, faces and no-face pictures per split."""
        result = {}
        for name in SPLITS:
            samples = self.splits.get(name, [])
            faces = sum(1 for s in samples if s.has_face)
            result[name] = {"images": len(samples), "faces": faces, "no_faces": len(samples) - faces}
        return result

    def empty_splits(self) -> list[str]:
        return [name for name in SPLITS if not self.splits.get(name)]

    def require_split(self, name: str) -> list[Sample]:
        """The samples of a split, or a DataError that says how to fill it."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        samples = self.splits.get(name, [])
        if samples:
            return samples
        if self.layout == "split":
            hint = f"put pictures in {self.root / name / 'images'} (labels in {self.root / name / 'labels'})"
        else:
            hint = (
                f"pictures go to the {name} split by a hash of their file name; "
                "add more pictures, or sort them into train/val/test folders"
            )
        raise DataError(self.root / name, f"the {name} split has no pictures: {hint}")

    def summary_text(self) -> str:
        """A table of the splits followed by the skipped files, for people."""
        counts = self.counts()
        lines = [
            f"Dataset {self.root} (layout: {self.layout}, {LAYOUTS.get(self.layout, '')})",
            f"{'split':<8}{'images':>8}{'faces':>8}{'no face':>9}",
        ]
        for name in SPLITS:
            c = counts[name]
            lines.append(f"{name:<8}{c['images']:>8}{c['faces']:>8}{c['no_faces']:>9}")
        totals = {key: sum(c[key] for c in counts.values()) for key in ("images", "faces", "no_faces")}
        lines.append(f"{'total':<8}{totals['images']:>8}{totals['faces']:>8}{totals['no_faces']:>9}")
        empty = self.empty_splits()
        if empty:
            lines.append(f"Empty splits: {', '.join(empty)}")
        if self.problems:
            lines.append(f"Problems ({len(self.problems)} skipped):")
            lines.extend(f"  {problem}" for problem in self.problems)
        else:
            lines.append("Problems: none")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (for ``summary --json`` and the desktop)."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "counts": self.counts(),
            "empty_splits": self.empty_splits(),
            "problems": [str(p) for p in self.problems],
        }


# --------------------------------------------------------------------------------------------- images


def load_image(path: Path | str) -> np.ndarray:
    """Decode a picture as BGR uint8 (EXIF orientation applied, as labelme shows it)."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it cannot open non-ASCII paths on Windows
    except FileNotFoundError:
        raise DataError(path, "the picture does not exist") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the picture: {exc.strerror or exc}") from None
    if data.size == 0:
        raise DataError(path, "the picture file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "not a readable picture (corrupt, or not a JPEG, PNG or BMP file)")
    return image


def image_size(path: Path | str) -> tuple[int, int]:
    """(width, height) of a picture as it is shown, read from its header; DataError if corrupt or truncated.

    Reading the header is ~50x faster than decoding, and checking that the file ends where its format
    says it should catches the truncated JPEGs that OpenCV would silently decode half grey.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "the picture does not exist") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the picture: {exc.strerror or exc}") from None
    if not data:
        raise DataError(path, "the picture file is empty")
    try:
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_size(data)
        if data[:2] == b"BM":
            return _bmp_size(data)
    except _HeaderError as exc:
        raise DataError(path, str(exc)) from None
    except (struct.error, IndexError):
        raise DataError(path, "corrupt picture: its header is cut short") from None
    # Another format under a picture extension: let OpenCV decide.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "not a readable picture (corrupt, or not a JPEG, PNG or BMP file)")
    return int(image.shape[1]), int(image.shape[0])


class _HeaderError(Exception):
    pass


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos, size, orientation = 2, None, 1
    while pos < len(data):
        if data[pos] != 0xFF:
            raise _HeaderError("corrupt JPEG: bad segment marker in the header")
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            continue
        if marker == 0xD9:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        segment = data[pos + 2 : pos + length]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", segment[1:5])
            size = (width, height)
        elif marker == 0xE1 and segment[:6] == b"Exif\x00\x00":
            orientation = _exif_orientation(segment[6:])
        elif marker == 0xDA:  # start of scan: the pixels follow, and an end-of-image marker must close them
            if size is None:
                raise _HeaderError("corrupt JPEG: no frame header before the image data")
            if data.find(b"\xff\xd9", pos + length) < 0:
                raise _HeaderError("truncated JPEG: the file ends before the end of the image data")
            width, height = size
            if width == 0 or height == 0:
                raise _HeaderError(f"corrupt JPEG: the header says the picture is {width}x{height}")
            return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        pos += length
    raise _HeaderError("truncated JPEG: the file ends before the image data")


def _exif_orientation(tiff: bytes) -> int:
    """The EXIF orientation tag (1 = upright); 5..8 mean the picture is shown rotated by 90 degrees."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (entries,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for i in range(entries):
            entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:
                return struct.unpack(order + "H", entry[8:10])[0]
    except (KeyError, struct.error):
        pass
    return 1


def _png_size(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        raise _HeaderError("corrupt PNG: no IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    if data.rfind(b"IEND") < 0:
        raise _HeaderError("truncated PNG: the file ends before its IEND chunk")
    if width == 0 or height == 0:
        raise _HeaderError(f"corrupt PNG: the header says the picture is {width}x{height}")
    return width, height


def _bmp_size(data: bytes) -> tuple[int, int]:
    (declared,) = struct.unpack("<I", data[2:6])
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    if declared > len(data):
        raise _HeaderError(f"truncated BMP: the header says {declared} bytes, the file has {len(data)}")
    if width <= 0 or height == 0:
        raise _HeaderError(f"corrupt BMP: the header says the picture is {width}x{height}")
    return width, abs(height)


# --------------------------------------------------------------------------------------------- labels


def write_labelme(
    json_path: Path | str,
    image_path: Path | str,
    box_px: tuple[float, float, float, float] | None,
    width: int,
    height: int,
) -> None:
    """Write a labelme JSON for one picture: one "face" rectangle, or no shapes when ``box_px`` is None.

    ``imagePath`` is relative to the JSON (as labelme writes it) and ``imageData`` is null, so labelme
    loads the picture from disk.
    """
    json_path = Path(json_path)
    shapes = []
    if box_px is not None:
        x1, y1, x2, y2 = (float(v) for v in box_px)
        shapes.append(
            {
                "label": FACE_LABEL,
                "points": [[x1, y1], [x2, y2]],
                "group_id": None,
                "description": "",
                "shape_type": "rectangle",
                "flags": {},
            }
        )
    document = {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": _relative_image_path(Path(image_path), json_path),
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2), encoding="utf-8")


def _relative_image_path(image_path: Path, json_path: Path) -> str:
    try:
        return Path(os.path.relpath(image_path.resolve(), json_path.parent.resolve())).as_posix()
    except ValueError:  # on another drive (Windows): no relative path exists
        return image_path.resolve().as_posix()


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def read_label(json_path: Path, width: int, height: int) -> Box:
    """The normalised face box of a labelme file (NO_BOX without a face); DataError on a bad label.

    ``width`` and ``height`` are the picture's real size: boxes are normalised by it, whatever
    size the JSON claims.
    """
    try:
        text = json_path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(json_path, "not valid JSON: the file is not UTF-8 text") from None
    except OSError as exc:
        raise DataError(json_path, f"cannot read the label file: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(json_path, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise DataError(json_path, "not a labelme file: it has no \"shapes\" list")

    claimed = (document.get("imageWidth"), document.get("imageHeight"))
    if claimed != (None, None) and claimed != (width, height):
        raise DataError(
            json_path,
            f"labelled for a {claimed[0]}x{claimed[1]} picture but the picture is {width}x{height} "
            "(was it resized or replaced after labelling?)",
        )

    faces = [
        s for s in document["shapes"]
        if isinstance(s, dict) and str(s.get("label", "")).strip().lower() == FACE_LABEL
    ]
    if not faces:
        return NO_BOX
    rectangles = [s for s in faces if s.get("shape_type") == "rectangle"]
    if not rectangles:
        kind = faces[0].get("shape_type") or "polygon"  # labelme reads a missing shape_type as a polygon
        raise DataError(
            json_path,
            f"the \"face\" shape is a {kind}, not a rectangle: redraw it with labelme's Create Rectangle tool",
        )
    points = rectangles[0].get("points")
    try:
        (x1, y1), (x2, y2) = ((float(x), float(y)) for x, y in points)
    except (TypeError, ValueError):
        raise DataError(json_path, f"the \"face\" rectangle needs two [x, y] corner points, got {points!r}") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise DataError(json_path, f"the \"face\" rectangle has a non-numeric corner: {points!r}")
    x1, x2 = sorted((x1, x2))  # a rectangle may be dragged from any corner
    y1, y2 = sorted((y1, y2))
    shown = f"[{_fmt(x1)}, {_fmt(y1)}, {_fmt(x2)}, {_fmt(y2)}]"
    tol = BOX_TOLERANCE_PX
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise DataError(json_path, f"box {shown} lies outside the {width}x{height} image")
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        raise DataError(json_path, f"box {shown} reaches outside the {width}x{height} image")
    x1, x2 = max(x1, 0.0), min(x2, float(width))
    y1, y2 = max(y1, 0.0), min(y2, float(height))
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise DataError(json_path, f"box {shown} has zero size ({_fmt(x2 - x1)}x{_fmt(y2 - y1)} px)")
    return (x1 / width, y1 / height, x2 / width, y2 / height)


# --------------------------------------------------------------------------------------------- dataset


def split_of(stem: str, val_fraction: float = 0.15, test_fraction: float = 0.15) -> str:
    """The split a picture belongs to in a flat dataset, from a hash of its file stem.

    The hash puts each name at a fixed point in [0, 1), so adding pictures never moves old ones.
    """
    bucket = int.from_bytes(hashlib.sha1(stem.encode("utf-8")).digest()[:8], "big") / 2**64
    if bucket < test_fraction:
        return "test"
    if bucket < test_fraction + val_fraction:
        return "val"
    return "train"


def _visible_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _find_pictures(
    images_dir: Path, labels_dir: Path, report: Callable[[Problem], None]
) -> tuple[dict[str, Path], dict[str, Path], int]:
    """One folder's pictures and label files by stem (the labels folder wins over a JSON beside the
    picture), and how many pictures there are; unsupported formats and repeated names are reported."""
    pictures: dict[str, Path] = {}
    picture_count = 0
    for path in _visible_files(images_dir):
        suffix = path.suffix.lower()
        if suffix in UNSUPPORTED_IMAGE_EXTENSIONS:
            report(Problem(path, f"unsupported picture format {suffix}: convert it to JPEG or PNG"))
        if suffix not in IMAGE_EXTENSIONS:
            continue
        picture_count += 1
        if path.stem in pictures:
            report(Problem(path, f"another picture has the same name ({pictures[path.stem].name}); "
                                 "labels pair with pictures by name, so this one is skipped"))
            continue
        pictures[path.stem] = path

    labels: dict[str, Path] = {}
    for folder in dict.fromkeys((labels_dir, images_dir)):  # the labels folder wins over a JSON beside
        for path in _visible_files(folder):
            if path.suffix.lower() == ".json":
                labels.setdefault(path.stem, path)
    return pictures, labels, picture_count


def _read_folder(
    images_dir: Path, labels_dir: Path, report: Callable[[Problem], None]
) -> tuple[list[Sample], int]:
    """Samples of one folder of pictures (labels in ``labels_dir`` or beside them); and how many pictures."""
    pictures, labels, picture_count = _find_pictures(images_dir, labels_dir, report)
    for stem, json_path in labels.items():
        if stem not in pictures:
            report(Problem(json_path, f"no picture for this label: expected {stem}.jpg (or .jpeg, .png, .bmp) "
                                      f"in {images_dir}"))

    samples = []
    for stem, image_path in pictures.items():
        label_path = labels.get(stem)
        try:
            width, height = image_size(image_path)
            box = NO_BOX if label_path is None else read_label(label_path, width, height)
        except DataError as exc:
            problem = Problem(exc.path, exc.message)
        else:
            samples.append(Sample(image_path, label_path, box != NO_BOX, box, width, height))
            continue
        report(problem)  # outside the except: a strict DataError should not chain onto the first one
    return samples, picture_count


def detect_layout(root: Path) -> str:
    """"split", "flat" or "beside", from the folders present."""
    if any((root / name).is_dir() for name in SPLITS):
        return "split"
    if (root / "labels").is_dir():
        return "flat"
    return "beside"


def _layout_folders(root: Path, layout: str) -> list[tuple[str | None, Path, Path]]:
    """(split name or None, pictures folder, labels folder) of each folder of pictures in a layout."""
    if layout == "split":
        folders: list[tuple[str | None, Path, Path]] = []
        for name in SPLITS:
            folder = root / name
            images_dir = folder / "images" if (folder / "images").is_dir() else folder
            labels_dir = folder / "labels" if (folder / "labels").is_dir() else images_dir
            folders.append((name, images_dir, labels_dir))
        return folders
    images_dir = root / "images" if (root / "images").is_dir() else root
    labels_dir = root / "labels" if layout == "flat" else images_dir
    return [(None, images_dir, labels_dir)]


def _require_dataset_folder(root: Path) -> None:
    if not root.exists():
        raise DataError(root, "the dataset folder does not exist")
    if not root.is_dir():
        raise DataError(root, "not a folder: give the dataset folder that holds the pictures")


def _no_pictures_error(root: Path) -> DataError:
    return DataError(
        root,
        "no pictures found: expected train/val/test folders, images/ + labels/ folders, or "
        f"{', '.join(IMAGE_EXTENSIONS)} pictures with labelme .json files beside them",
    )


def label_path_for(image_path: Path) -> Path:
    """Where a new label for a picture goes: ``../labels/<stem>.json`` for a picture in an ``images``
    folder (the tutorial's layout), else beside the picture (labelme's default)."""
    image_path = Path(image_path)
    if image_path.parent.name == "images":
        return image_path.parent.parent / "labels" / f"{image_path.stem}.json"
    return image_path.with_suffix(".json")


def picture_label_paths(root: Path | str) -> tuple[list[tuple[Path, Path]], list[Problem]]:
    """Every picture of a dataset folder (any layout) with its label's path, without reading either.

    The label path is the JSON that :func:`load_dataset` pairs with the picture when there is one,
    else where a new label goes (:func:`label_path_for`), so whatever writes there is read back.
    Pictures that cannot be paired (a repeated name, an unsupported format) are returned as problems.
    Raises DataError for a missing folder or one without pictures.
    """
    root = Path(root)
    _require_dataset_folder(root)
    problems: list[Problem] = []
    pairs: list[tuple[Path, Path]] = []
    picture_count = 0
    for _split, images_dir, labels_dir in _layout_folders(root, detect_layout(root)):
        pictures, labels, count = _find_pictures(images_dir, labels_dir, problems.append)
        picture_count += count
        pairs.extend((path, labels.get(stem) or label_path_for(path)) for stem, path in pictures.items())
    if picture_count == 0:
        raise _no_pictures_error(root)
    return pairs, problems


def load_dataset(
    root: Path | str,
    *,
    strict: bool = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> Dataset:
    """Read and check every picture and label under ``root``.

    Bad files are skipped and listed in ``Dataset.problems``; with ``strict`` the first one raises
    :class:`DataError`. ``val_fraction``/``test_fraction`` only apply to flat and beside layouts.
    """
    root = Path(root)
    _require_dataset_folder(root)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction + test_fraction must be in [0, 1), got {val_fraction} + {test_fraction}")

    problems: list[Problem] = []

    def report(problem: Problem) -> None:
        if strict:
            raise DataError(problem.path, problem.message)
        problems.append(problem)

    layout = detect_layout(root)
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    picture_count = 0
    for split, images_dir, labels_dir in _layout_folders(root, layout):
        samples, count = _read_folder(images_dir, labels_dir, report)
        picture_count += count
        if split is not None:
            splits[split] = samples
        else:
            for sample in samples:
                splits[split_of(sample.image_path.stem, val_fraction, test_fraction)].append(sample)
    if picture_count == 0:
        raise _no_pictures_error(root)
    return Dataset(root=root, layout=layout, splits=splits, problems=problems)

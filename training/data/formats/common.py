"""What the format modules share: the picture-with-faces that every reader gives and every writer takes
(:class:`LabelledPicture`), what a conversion did (:class:`Conversion`), the state of one reading
(:class:`_Reading`), the box rule every reader applies (:func:`checked_box`) and small helpers for
folders, values and writing. Not a format itself; ``training.data.formats`` is the public door."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.core.boxes import clipped, ordered
from training.core.inputs import MAX_ANNOTATION_BYTES, parse_json, read_bytes, read_json, shown
from training.core.inputs import resolve_inside as _resolve_inside
from training.data.errors import DataError
from training.data.pictures import IMAGE_EXTENSIONS, image_size

FORMATS = ("labelme", "coco", "yolo", "voc")  # read and written
READ_FORMATS = (*FORMATS, "wider")  # WIDER FACE is read only (its test split has no boxes to write)
FACE_NAMES = ("face", "faces")
#: Folder and file-name words that name a split.
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}
BOX_TOLERANCE_PX = 1.0  # labelme lets a corner land a pixel past the edge; more than that is a labelling error

PixelBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledPicture:
    """One picture and every face on it, in pixels (``boxes`` empty: no face); ``split`` None without splits."""

    image: Path
    width: int
    height: int
    boxes: tuple[PixelBox, ...]
    split: str | None

    @property
    def box(self) -> PixelBox | None:
        """The largest face (the first of equals), what a single-face model learns; None without a face."""
        if not self.boxes:
            return None
        return max(self.boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert` did: the formats, the destination, how many pictures (``faces``: those with a
    face), face boxes and pictures per split, and the reader's notes (what it skipped, and why)."""

    source_format: str
    target_format: str
    out: Path
    pictures: int
    faces: int
    split_counts: dict[str, int]
    face_boxes: int = 0
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """A line for people, then one line per note."""
        splits = ", ".join(f"{name} {count}" for name, count in self.split_counts.items())
        boxes = f"; {self.face_boxes} face boxes" if self.face_boxes != self.faces else ""
        line = (f"Converted {self.pictures} pictures ({self.faces} with a face, {self.pictures - self.faces} without"
                f"{boxes}{'; ' + splits if splits else ''}) from {self.source_format} to {self.target_format}.")
        return "\n".join([line, *self.notes])


@dataclass
class _Reading:
    """What the readers of one source share: the source folder, whether a picture that an annotation file
    names outside it may be read anyway (``convert --allow-outside``), and the conversion's notes."""

    root: Path
    allow_outside: bool = False
    notes: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def picture(self, name: str, *, where: Path, base: Path) -> Path:
        """``base / name``, refused (DataError naming ``where``) when it leads out of the source folder."""
        return _resolve_inside(self.root, name, where=where, base=base, allow_outside=self.allow_outside,
                               error=DataError, warn=lambda _: self.outside.append(f"{shown(name)} in {shown(where.name)}"))

    def finish(self) -> None:
        """One note for every picture read from outside the source (named, the first few)."""
        if self.outside:
            self.notes.append(grouped_line(f"{len(self.outside)} pictures named in annotation files lie outside "
                                           "the source folder and were read anyway (--allow-outside)",
                                           self.outside))


def grouped_line(headline: str, examples: list[str], shown_count: int = 3) -> str:
    """``headline``, e.g. the first few ``examples`` (and how many more): many alike in one line."""
    more = len(examples) - shown_count
    listed = "; ".join(examples[:shown_count]) + (f"; and {more} more" if more > 0 else "")
    return f"{headline}, e.g. {listed}"


# ------------------------------------------------------------------------------------------ small helpers


def _split_of_name(name: str) -> str | None:
    """train/val/test when a folder or file name says so (``instances_train2017``, ``valid``), else None."""
    for word in re.split(r"[^a-z]+", name.lower()):
        if word in SPLIT_ALIASES:
            return SPLIT_ALIASES[word]
    return None


def _split_folders(root: Path) -> list[tuple[str, Path]]:
    """(split, folder) for each sub-folder of ``root`` named like a split (``train``, ``valid``, ...)."""
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        split = SPLIT_ALIASES.get(child.name.lower())
        if child.is_dir() and split is not None:
            found.append((split, child))
    return found


def _files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    suffixes = tuple(suffixes)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)


def _pictures(folder: Path) -> list[Path]:
    return _files(folder, IMAGE_EXTENSIONS)


def _picture_size(path: Path) -> tuple[int, int]:
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(path, f"unsupported picture format {path.suffix or '(none)'}: FaceTracker reads "
                              f"{', '.join(IMAGE_EXTENSIONS)}; convert it to JPEG or PNG")
    return image_size(path)


def _value(value: Any) -> str:
    """A value from an annotation file as a message shows it: short, whatever its type or size."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"a {len(str(abs(value)))}-digit number"
    text = repr(value)
    return shown(text if len(text) <= 40 else text[:37] + "...")


def _is_id(value: Any) -> bool:
    """A COCO id: a whole number (true/false are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _checked_box(path: Path, where: str, box: PixelBox, width: int, height: int) -> PixelBox:
    """The box clipped to the picture, or a DataError: the rules labelme labels are read by."""
    return checked_box(path, box, width, height, f"{where}: box", "picture")


def _face_class(path: Path, names: list[str], used: set[Any]) -> set[Any] | None:
    """The class keys that mean "face" among ``names`` (their keys are positions or ids in ``used``):
    those named face/faces, else the only class used. None when no class is used at all."""
    faces = {key for key, name in names if str(name).strip().lower() in FACE_NAMES}
    if faces:
        return faces
    if not used:
        return None
    if len(used) == 1:
        return set(used)
    shown = ", ".join(sorted({str(name) for key, name in names if key in used}) or sorted(map(str, used)))
    raise DataError(path, f"no class named \"face\" among the {len(used)} classes used ({shown}); FaceTracker "
                          "learns one kind of object: rename the face class to \"face\" or keep only faces")


def _json_document(path: Path) -> Any:
    """An annotation file's JSON, through the guarded reader (regular file, size, depth, number length)."""
    return read_json(path, max_bytes=MAX_ANNOTATION_BYTES, error=DataError, what="annotation file")


def _peek_json(path: Path) -> Any:
    """A JSON file's content for format detection (None when it cannot be read: detection is no place to fail)."""
    try:
        return parse_json(read_bytes(path, max_bytes=MAX_ANNOTATION_BYTES).decode("utf-8-sig"))
    except ValueError:  # training.core.inputs.InputError, UnicodeDecodeError, bad JSON
        return None


# ------------------------------------------------------------------------------------------ the box rule


def _fmt_px(value: float) -> str:
    """A pixel value as the box rule's messages show it: whole, one decimal, or 3 digits when huge."""
    if abs(value) >= 1e7:
        return f"{value:.3g}"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def checked_box(path: Path, corners, width: int, height: int, what: str = "box",
                frame: str = "image") -> tuple[float, float, float, float]:
    """A box given by two corners in any order, sorted and clipped to the ``width`` x ``height`` picture;
    DataError naming ``path`` when it lies or reaches outside (beyond BOX_TOLERANCE_PX) or has no size.
    The one rule every label reader (labelme, COCO, YOLO, VOC, WIDER FACE) applies."""
    x1, y1, x2, y2 = ordered(corners)  # a rectangle may be dragged from any corner
    shown = f"[{_fmt_px(x1)}, {_fmt_px(y1)}, {_fmt_px(x2)}, {_fmt_px(y2)}]"
    tol = BOX_TOLERANCE_PX
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise DataError(path, f"{what} {shown} lies outside the {width}x{height} {frame}")
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        raise DataError(path, f"{what} {shown} reaches outside the {width}x{height} {frame}")
    x1, y1, x2, y2 = clipped((x1, y1, x2, y2), width, height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise DataError(path, f"{what} {shown} has zero size ({_fmt_px(x2 - x1)}x{_fmt_px(y2 - y1)} px)")
    return x1, y1, x2, y2


# ------------------------------------------------------------------------------------------ writers


class _Names:
    """Unique file names within one output folder (a clash gets ``_2``, ``_3``; case-insensitive)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, picture: Path) -> str:
        stem, suffix, n = picture.stem, picture.suffix, 2
        name = stem
        while name.casefold() in self._taken:
            name, n = f"{stem}_{n}", n + 1
        self._taken.add(name.casefold())
        return name + suffix


def _write_text(path: Path, text: str) -> None:
    """Plain writes: the whole dataset is built in a staging folder and renamed into place at the end,
    which makes it appear at once (an fsync per label would only make thousands of files slow)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _place(picture: Path, target: Path, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        with contextlib.suppress(OSError):  # another disk, or a file system without hard links
            os.link(picture, target)
            return
    shutil.copyfile(picture, target)


def _by_split(pictures: list[LabelledPicture]) -> dict[str | None, list[LabelledPicture]]:
    groups: dict[str | None, list[LabelledPicture]] = {}
    for picture in pictures:
        groups.setdefault(picture.split, []).append(picture)
    return groups

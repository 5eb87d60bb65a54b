"""labelme, the format FaceTracker trains on: one JSON per picture with a "face" rectangle per face.

Everything about it lives here: writing one label (:func:`write_labelme`, :func:`labelme_document`, as
labelme 5 writes it); reading one (:func:`read_faces`, :func:`read_label`: every odd content a
DataError naming the file); suggested labels (:func:`write_suggested_label`, :func:`read_suggestion_mark`:
an image flag that ``training.inference.autolabel`` ticks and a person's save clears); and the
dataset-level reader and writer that ``training.data.formats`` converts with (:func:`read_labelme`: a
folder as :func:`training.data.dataset.load_dataset` reads it; :func:`write_labelme_dataset`: the
tutorial's layout). Where a new label goes beside its picture is :func:`training.data.dataset.label_path_for`
(the layouts are the dataset's).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.core.files import atomic_write_text, temporary_name
from training.core.inputs import read_json
from training.core.preprocess import box_to_pixels
from training.data.dataset import NO_BOX, SPLITS, Box, label_path_for, load_dataset
from training.data.errors import DataError, Problem
from training.data.formats.common import (
    READ_FORMATS,
    LabelledPicture,
    _by_split,
    _files,
    _fmt_px,
    _Names,
    _peek_json,
    _place,
    _Reading,
    _split_folders,
    checked_box,
)

FACE_LABEL = "face"
LABELME_VERSION = "5.5.0"
MAX_LABEL_BYTES = 64 * 2**20  # labelme JSON with the picture embedded (imageData) is a few MB
SUGGESTED_FLAG = "suggested"      # labelme image flag: ticked until a person has reviewed the label
SUGGESTED_BY_KEY = "suggestedBy"  # top-level: {"engine": "MTCNN", "score": 0.99 or null}


# ------------------------------------------------------------------------------------------ one label: writing


def face_boxes_px(boxes_px) -> list[tuple[float, float, float, float]]:
    """``None`` (no face), one ``(x1, y1, x2, y2)`` or a sequence of them, as a list of boxes."""
    if boxes_px is None:
        return []
    boxes = list(boxes_px)
    if len(boxes) == 4 and all(isinstance(v, (int, float, np.number)) for v in boxes):
        return [tuple(float(v) for v in boxes)]  # one box
    return [tuple(float(v) for v in box) for box in boxes]


def labelme_document(
    json_path: Path | str,
    image_path: Path | str,
    box_px,
    width: int,
    height: int,
) -> dict[str, Any]:
    """The labelme JSON document for one picture: a "face" rectangle per box, or no shapes without one.

    ``box_px`` is None (no face), one ``(x1, y1, x2, y2)`` in pixels, or a sequence of them (several
    faces). ``imagePath`` is relative to the JSON's folder (as labelme writes it) and ``imageData``
    is null, so labelme loads the picture from disk.
    """
    shapes = [
        {
            "label": FACE_LABEL,
            "points": [[x1, y1], [x2, y2]],
            "group_id": None,
            "description": "",
            "shape_type": "rectangle",
            "flags": {},
        }
        for x1, y1, x2, y2 in face_boxes_px(box_px)
    ]
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": _relative_image_path(Path(image_path), Path(json_path)),
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }


def write_labelme(
    json_path: Path | str,
    image_path: Path | str,
    box_px,
    width: int,
    height: int,
) -> None:
    """Write a labelme JSON for one picture (see :func:`labelme_document`: one box, several, or None).

    Atomic (``training.core.files``): a write that fails (a full disk) leaves the old label as it was and
    no temporary file behind; the OSError names the label.
    """
    json_path = Path(json_path)
    text = json.dumps(labelme_document(json_path, image_path, box_px, width, height), indent=2)
    try:
        atomic_write_text(json_path, text)
    except OSError as exc:  # named after the label, not the temporary file beside it
        raise OSError(exc.errno, exc.strerror or str(exc), str(json_path)) from exc


def _relative_image_path(image_path: Path, json_path: Path) -> str:
    try:
        return Path(os.path.relpath(image_path.resolve(), json_path.parent.resolve())).as_posix()
    except ValueError:  # on another drive (Windows): no relative path exists
        return image_path.resolve().as_posix()


# ------------------------------------------------------------------------------------------ one label: reading


def _describe(value: Any) -> str:
    """A JSON value as a message shows it: short, whatever its size, type or characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else f"a {len(str(abs(value)))}-digit number"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(value) if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short_json(value: Any) -> str:
    """A JSON value written out for a message, cut to 60 characters."""
    if isinstance(value, (dict, str)) or value is None:
        return _describe(value)
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        return _describe(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_json(json_path: Path) -> Any:
    """The parsed JSON of a label file; DataError naming it for anything that is not reasonable JSON
    (through :func:`training.core.inputs.read_json`: regular files only, size, depth and number length bounded)."""
    return read_json(json_path, max_bytes=MAX_LABEL_BYTES, error=DataError, what="label file")


def _check_claimed_size(json_path: Path, document: dict, width: int, height: int) -> None:
    claimed = []
    for key in ("imageWidth", "imageHeight"):
        value = document.get(key)
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if value is not None and not (_is_number(value) and whole and 0 <= value < 2**31):
            raise DataError(json_path, f'"{key}" should be a whole number of pixels, got {_describe(value)}')
        claimed.append(None if value is None else int(value))
    if claimed[0] in (None, width) and claimed[1] in (None, height):
        return
    shown = "x".join("?" if v is None else str(v) for v in claimed)
    raise DataError(
        json_path,
        f"labelled for a {shown} picture but the picture is {width}x{height} "
        "(was it resized or replaced after labelling?)",
    )


def _face_shapes(json_path: Path, shapes: list) -> list[dict]:
    """The shapes labelled "face"; DataError for a shape that is not what labelme writes."""
    faces = []
    for number, shape in enumerate(shapes, 1):
        if not isinstance(shape, dict):
            raise DataError(json_path, f"shape {number} should be an object with a label and points, "
                                       f"got {_describe(shape)}")
        label = shape.get("label", "")
        if not isinstance(label, str):
            raise DataError(json_path, f'shape {number}\'s "label" should be text, got {_describe(label)}')
        if label.strip().lower() == FACE_LABEL:
            faces.append(shape)
    return faces


def _rectangle_box(json_path: Path, shape: dict, width: int, height: int, which: str) -> tuple[float, ...]:
    """A "face" rectangle in pixels, sorted and clipped; DataError naming what is wrong with it."""
    points = shape.get("points")
    if not (isinstance(points, list) and len(points) == 2
            and all(isinstance(p, list) and len(p) == 2 for p in points)):
        raise DataError(json_path, f"the \"face\" rectangle{which} needs two [x, y] corner points, "
                                   f"got {_short_json(points)}")
    values = []
    for value in (points[0][0], points[0][1], points[1][0], points[1][1]):
        if not _is_number(value):
            raise DataError(json_path, f"the \"face\" rectangle{which} has a corner that is not a number: "
                                       f"{_describe(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise DataError(json_path, f"the \"face\" rectangle{which} has a corner too large for a number: "
                                       f"{_describe(value)}") from None
        if not math.isfinite(number):
            raise DataError(json_path, f"the \"face\" rectangle{which} has a non-numeric corner: {_describe(value)}")
        values.append(number)
    return checked_box(json_path, values, width, height, f"box{which}", "image")


def read_faces(json_path: Path, width: int, height: int) -> tuple[Box, ...]:
    """Every normalised face box of a labelme file, largest first (``()`` without a face); DataError on a bad label.

    ``width`` and ``height`` are the picture's real size: boxes are normalised by it, whatever
    size the JSON claims. Any odd content (wrong types, numbers too large for a float, deep nesting)
    is a DataError naming the file, never another exception.
    """
    json_path = Path(json_path)
    document = _read_json(json_path)
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise DataError(json_path, "not a labelme file: it has no \"shapes\" list")
    _check_claimed_size(json_path, document, width, height)

    faces = _face_shapes(json_path, document["shapes"])
    if not faces:
        return ()
    rectangles = [s for s in faces if s.get("shape_type") == "rectangle"]
    if not rectangles:
        kind = faces[0].get("shape_type") or "polygon"  # labelme reads a missing shape_type as a polygon
        kind = kind if isinstance(kind, str) and kind.isidentifier() else _describe(kind)
        raise DataError(
            json_path,
            f"the \"face\" shape is a {kind}, not a rectangle: redraw it with labelme's Create Rectangle tool",
        )
    boxes = []
    for number, shape in enumerate(rectangles, 1):
        which = f" {number} of {len(rectangles)}" if len(rectangles) > 1 else ""
        boxes.append(_rectangle_box(json_path, shape, width, height, which))
    boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))  # stable: the first of equals stays first
    return tuple((x1 / width, y1 / height, x2 / width, y2 / height) for x1, y1, x2, y2 in boxes)


def several_faces_note(json_path: Path, boxes: tuple[Box, ...], width: int, height: int) -> Problem:
    """The warning a single-face model gives for a picture with several faces: which one it uses."""
    x1, y1, x2, y2 = boxes[0]
    return Problem(json_path, f"{len(boxes)} \"face\" rectangles: a single-face model finds one face, so the "
                              f"largest, [{_fmt_px(x1 * width)}, {_fmt_px(y1 * height)}, "
                              f"{_fmt_px(x2 * width)}, {_fmt_px(y2 * height)}], is used")


def read_label(
    json_path: Path,
    width: int,
    height: int,
    warn: Callable[[Problem], None] | None = None,
) -> Box:
    """The largest normalised face box of a labelme file (NO_BOX without a face); see :func:`read_faces`.

    With several "face" rectangles ``warn`` is told (:func:`several_faces_note`), naming the file.
    """
    boxes = read_faces(json_path, width, height)
    if not boxes:
        return NO_BOX
    if len(boxes) > 1 and warn is not None:
        warn(several_faces_note(Path(json_path), boxes, width, height))
    return boxes[0]


# ------------------------------------------------------------------------------------------ suggested labels (autolabel)


@dataclass(frozen=True)
class SuggestionMark:
    """What a suggested, not yet reviewed label says about where it came from."""

    engine: str
    score: float | None

    def __str__(self) -> str:
        return self.engine if self.score is None else f"{self.engine} {self.score:.2f}"


def read_suggestion_mark(json_path: Path | str) -> SuggestionMark | None:
    """The mark of a label written by :func:`training.inference.autolabel.autolabel_dataset` and not reviewed
    since; None for a reviewed label (or one that cannot be read: :func:`read_faces` says why)."""
    try:
        document = read_json(json_path, max_bytes=MAX_LABEL_BYTES)
    except ValueError:  # training.core.inputs.InputError: not a regular file, too large, not JSON
        return None
    if not isinstance(document, dict):
        return None
    flags = document.get("flags")
    if not isinstance(flags, dict) or flags.get(SUGGESTED_FLAG) is not True:
        return None
    origin = document.get(SUGGESTED_BY_KEY)
    origin = origin if isinstance(origin, dict) else {}
    score = origin.get("score")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    return SuggestionMark(str(origin.get("engine") or "a face finder"), score)


def write_suggested_label(
    json_path: Path,
    image_path: Path,
    box_px: Any,
    width: int,
    height: int,
    mark: SuggestionMark,
    *,
    overwrite: bool = False,
    scores: Sequence[float | None] | None = None,
) -> bool:
    """Write a labelme JSON (:func:`labelme_document`) marked as suggested by ``mark``, atomically.

    ``box_px``: None (no face), one box or a sequence of boxes in pixels; ``scores``, one per box, go in
    each rectangle's description (else the mark's score does).

    Without ``overwrite`` the file is created only if it does not exist at that moment, so a label
    a person saves meanwhile (the Label tab, while "Suggest all" runs) is never replaced; returns
    False then.
    """
    json_path = Path(json_path)
    document = labelme_document(json_path, image_path, box_px, width, height)
    document["flags"] = {**document.get("flags", {}), SUGGESTED_FLAG: True}
    document[SUGGESTED_BY_KEY] = {"engine": mark.engine, "score": mark.score}
    shapes = document["shapes"]
    own = list(scores) if scores is not None and len(scores) == len(shapes) else [None] * len(shapes)
    for shape, score in zip(shapes, own, strict=True):
        shape["description"] = f"suggested by {mark if score is None else SuggestionMark(mark.engine, score)}"
    text = json.dumps(document, indent=2)
    if overwrite:
        atomic_write_text(json_path, text)
        return True
    return _create_new_file(json_path, text.encode("utf-8"))


def _create_new_file(path: Path, data: bytes) -> bool:
    """Writes a file that does not exist yet, whole or not at all; False (nothing written) if it exists.

    The data goes to a temporary file beside it (``training.core.files``' naming, so an interrupted write
    is cleaned up like theirs), then is hard-linked into place: the link fails if the file appeared
    meanwhile, so a label a person saved is never replaced. Where hard links are not supported
    (FAT drives) a rename after an existence check stands in for it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # our temporary name (marker, owner pid, cut to fit a long name), mode 0666 less the umask
        tmp = path.parent / temporary_name(path.name)
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


# ------------------------------------------------------------------------------------------ a labelme dataset


def _labelme_evidence(root: Path) -> str | None:
    folders = [root, root / "images", root / "labels"]
    for _split, folder in _split_folders(root):
        folders += [folder, folder / "images", folder / "labels"]
    for folder in folders:
        for path in _files(folder, (".json",)):
            document = _peek_json(path)
            if isinstance(document, dict) and isinstance(document.get("shapes"), list):
                return f"labelme JSON such as {path.relative_to(root)}"
    return None


def read_labelme(root: Path, reading: _Reading | None = None) -> list[LabelledPicture]:
    """A labelme dataset as :func:`training.data.dataset.load_dataset` reads it (strictly: a bad file stops).

    Splits are kept for the tutorial's ``train/val/test`` layout; flat datasets stay without splits.
    """
    dataset = load_dataset(root, strict=True)
    if not any(sample.label_path for samples in dataset.splits.values() for sample in samples):
        raise DataError(root, "no labelme .json label beside or for any picture: is it another format? "
                              f"(say which with --from {'|'.join(READ_FORMATS)})")
    keep_splits = dataset.layout == "split"
    pictures = []
    for split in SPLITS:
        for sample in dataset.splits.get(split, []):
            boxes = tuple(box_to_pixels(box, sample.width, sample.height) for box in sample.boxes)
            pictures.append(LabelledPicture(sample.image_path, sample.width, sample.height, boxes,
                                            split if keep_splits else None))
    return pictures


def write_labelme_dataset(pictures: list[LabelledPicture], out: Path, link: bool = False) -> None:
    """The tutorial's layout: ``SPLIT/images`` + ``SPLIT/labels/*.json`` (``images`` + ``labels`` without
    splits); a no-face picture gets a JSON without shapes, as the Label tab's "no face" writes it."""
    for split, group in _by_split(pictures).items():
        folder = out / split if split else out
        names = _Names()
        for picture in group:
            image_path = folder / "images" / names.take(picture.image)
            _place(picture.image, image_path, link)
            write_labelme(label_path_for(image_path), image_path, list(picture.boxes),
                          picture.width, picture.height)

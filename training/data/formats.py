"""Face labels in the formats other tools exchange: labelme (ours), COCO JSON, YOLO text and Pascal VOC XML,
and WIDER FACE's annotation files (read only).

CVAT, Label Studio and Roboflow import and export COCO, YOLO and VOC; FaceTracker trains on labelme.
:func:`convert` reads a dataset in one format and writes it in another, every face of every picture, pictures
copied (or hard-linked) beside the new labels. Pictures without a face stay, labelled as such in the
target's own way: a labelme JSON without shapes, an image without annotations in COCO, an empty YOLO
text file, a VOC file without objects. Splits (train/val/test) are kept when the source has them.

What each format is read from and written to (``SPLIT`` is train, val or test; ``valid`` and
``validation`` are read as val):

=========  ======================================================  ============================================
format     read                                                    written
=========  ======================================================  ============================================
labelme    whatever :func:`training.data.dataset.load_dataset` reads       ``SPLIT/images`` + ``SPLIT/labels/*.json``
                                                                   (or ``images`` + ``labels`` without splits)
coco       ``annotations/instances_SPLIT.json`` + ``images/SPLIT``  ``annotations/instances_SPLIT.json`` +
           (or ``SPLIT/`` or ``images/``); ``SPLIT/*.json`` with   ``images/SPLIT/`` (``instances_default.json``
           the pictures beside it (Roboflow); one ``*.json``        + ``images/`` without splits)
yolo       ``images/SPLIT`` + ``labels/SPLIT`` (Ultralytics),      ``images/SPLIT`` + ``labels/SPLIT/*.txt`` +
           ``SPLIT/images`` + ``SPLIT/labels`` (Roboflow), or       ``data.yaml`` (``names: {0: face}``)
           ``images`` + ``labels``; class names from ``*.yaml``
           or ``classes.txt``
voc        ``Annotations/*.xml`` + ``JPEGImages`` (splits from     ``Annotations/*.xml`` + ``JPEGImages/`` +
           ``ImageSets/Main/SPLIT.txt``), or ``.xml`` beside the   ``ImageSets/Main/SPLIT.txt``
           pictures (labelImg; in ``SPLIT/`` for Roboflow)
wider      ``wider_face_split/wider_face_{train,val}_bbx_gt.txt``  (not written)
           + ``WIDER_{train,val}/images/EVENT/*.jpg``; the test
           split has no boxes and is skipped
=========  ======================================================  ============================================

Boxes are pixel corners in every format (COCO's ``[x, y, w, h]`` and YOLO's normalised centre and size
are converted); VOC corners are read and written as labelme's continuous pixel coordinates, as CVAT does.
The face is the class named "face" (or "faces", any case); a dataset with a single class of another name
is taken as faces. A picture keeps all its faces (one COCO annotation, YOLO line, VOC object or labelme
rectangle each). WIDER FACE boxes marked invalid or of zero size are skipped and counted in the
conversion's notes. A label without its picture, a box outside its
picture or an unreadable file stop the conversion with a :class:`~training.data.dataset.DataError` that names the
file. The result is written into a temporary folder beside the destination and renamed into place at the
end, so a failed conversion leaves no half-written dataset.

No TensorFlow here: ``facetracker-train convert`` answers at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.core.files import staging_folder
from training.core.inputs import (
    MAX_ANNOTATION_BYTES,
    MAX_SMALL_FILE_BYTES,
    is_inside,
    is_regular_file,
    parse_json,
    read_bytes,
    read_json,
    read_text,
    shown,
)
from training.core.inputs import resolve_inside as _resolve_inside
from training.core.preprocess import box_to_pixels
from training.data.dataset import (
    IMAGE_EXTENSIONS,
    SPLITS,
    DataError,
    checked_box,
    image_size,
    label_path_for,
    load_dataset,
    write_labelme,
)

FORMATS = ("labelme", "coco", "yolo", "voc")  # read and written
READ_FORMATS = (*FORMATS, "wider")  # WIDER FACE is read only (its test split has no boxes to write)
FACE_NAMES = ("face", "faces")
#: Folder and file-name words that name a split.
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}
COCO_DEFAULT_NAME = "instances_default"  # CVAT's name for a COCO file without a split
YOLO_DECIMALS = 7  # normalised: a corner within 0.75e-7 of the picture, 0.00005 px on a 640 px picture
PIXEL_DECIMALS = 3

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


def _is_coco(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("images"), list) and "annotations" in document


def _peek_json(path: Path) -> Any:
    """A JSON file's content for format detection (None when it cannot be read: detection is no place to fail)."""
    try:
        return parse_json(read_bytes(path, max_bytes=MAX_ANNOTATION_BYTES).decode("utf-8-sig"))
    except ValueError:  # training.core.inputs.InputError, UnicodeDecodeError, bad JSON
        return None


# ------------------------------------------------------------------------------------------ detection


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


def _coco_files(root: Path, strict: bool = False) -> list[Path]:
    """The COCO files of a dataset; ``strict``: a JSON file that cannot be read is an error, not skipped
    (it may be the annotations of a whole split)."""
    folders = [root, root / "annotations", *(folder for _split, folder in _split_folders(root))]
    read = _json_document if strict else _peek_json
    return [path for folder in folders for path in _files(folder, (".json",)) if _is_coco(read(path))]


def _coco_evidence(root: Path) -> str | None:
    files = _coco_files(root)
    return f"COCO JSON {files[0].relative_to(root)}" if files else None


def _yolo_folders(root: Path) -> list[tuple[str | None, Path, Path]]:
    """(split, pictures folder, labels folder) of a YOLO dataset in any of the layouts read."""
    found: list[tuple[str | None, Path, Path]] = []
    for split, folder in _split_folders(root / "images"):  # Ultralytics: images/train + labels/train
        found.append((split, folder, root / "labels" / folder.name))
    for split, folder in _split_folders(root):  # Roboflow: train/images + train/labels
        if (folder / "images").is_dir() or (folder / "labels").is_dir():
            found.append((split, folder / "images", folder / "labels"))
    if not found and ((root / "images").is_dir() or (root / "labels").is_dir()):
        found.append((None, root / "images", root / "labels"))
    return found


def _yolo_label_files(labels_dir: Path) -> list[Path]:
    return [p for p in _files(labels_dir, (".txt",)) if p.name != "classes.txt"]


def _yolo_evidence(root: Path) -> str | None:
    for _split, _images, labels in _yolo_folders(root):
        files = _yolo_label_files(labels)
        if files:
            return f"YOLO text labels such as {files[0].relative_to(root)}"
    return None


def _voc_xml(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return b"<annotation" in head


def _voc_files(root: Path) -> list[Path]:
    folders = [root / "Annotations", root, root / "images", *(folder for _split, folder in _split_folders(root))]
    return [path for folder in folders for path in _files(folder, (".xml",)) if _voc_xml(path)]


def _voc_evidence(root: Path) -> str | None:
    files = _voc_files(root)
    return f"Pascal VOC XML such as {files[0].relative_to(root)}" if files else None


# WIDER FACE (http://shuoyang1213.me/WIDERFACE/): wider_face_split/wider_face_SPLIT_bbx_gt.txt beside
# WIDER_SPLIT/images/EVENT/NAME.jpg. Its test split comes without boxes (kept for its own benchmark).
WIDER_SPLITS = ("train", "val")
WIDER_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose")


def _wider_annotation_files(root: Path) -> dict[str, Path]:
    """split -> ``wider_face_SPLIT_bbx_gt.txt`` in ``root/wider_face_split`` (as downloaded) or ``root``."""
    found: dict[str, Path] = {}
    for folder in (root / "wider_face_split", root):
        for split in WIDER_SPLITS:
            path = folder / f"wider_face_{split}_bbx_gt.txt"
            if path.is_file():
                found.setdefault(split, path)
    return found


def _wider_evidence(root: Path) -> str | None:
    files = _wider_annotation_files(root)
    return f"WIDER FACE annotations {next(iter(files.values())).relative_to(root)}" if files else None


_EVIDENCE = {"labelme": _labelme_evidence, "coco": _coco_evidence, "yolo": _yolo_evidence, "voc": _voc_evidence,
             "wider": _wider_evidence}


def detect_format(root: Path | str) -> str:
    """The annotation format of a dataset folder, when exactly one format's label files are in it.

    Raises:
        DataError: the folder is missing, holds no labels of any known format, or holds more than one.
    """
    root = Path(root)
    _require_folder(root)
    found = {name: evidence for name, find in _EVIDENCE.items() if (evidence := find(root))}
    if len(found) == 1:
        return next(iter(found))
    if not found:
        unreadable = _first_unreadable_json(root)
        if unreadable is not None:  # most likely the annotations themselves: say why they cannot be read
            raise unreadable
        raise DataError(root, "cannot tell the annotation format: no labelme, COCO, YOLO, VOC or WIDER FACE label "
                              f"files where they are expected; say which with --from ({'|'.join(READ_FORMATS)})")
    listed = "; ".join(f"{name} ({evidence})" for name, evidence in found.items())
    raise DataError(root, f"holds labels in more than one format: {listed}; say which to read with --from")


def _first_unreadable_json(root: Path) -> DataError | None:
    """The error of the first JSON file, where COCO or labelme files are looked for, that cannot be read
    (not JSON, too deep, a number too long...): when no format is found, it is the likeliest reason."""
    folders = [root, root / "annotations", root / "images", root / "labels"]
    for _split, folder in _split_folders(root):
        folders += [folder, folder / "labels"]
    for folder in folders:
        for path in _files(folder, (".json",)):
            try:
                _json_document(path)
            except DataError as exc:
                return DataError(exc.path, f"{exc.message} (so the annotation format cannot be told either)")
    return None


def _require_folder(root: Path) -> None:
    if not root.exists():
        raise DataError(root, "the dataset folder does not exist")
    if not root.is_dir():
        raise DataError(root, "not a folder: give the dataset folder")


# ------------------------------------------------------------------------------------------ readers


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


def _coco_picture(json_path: Path, reading: _Reading, file_name: str) -> Path:
    """Where a COCO ``file_name`` is: beside the JSON, or in the usual image folders of the source; a name
    that leads out of the source folder is refused (see :meth:`_Reading.picture`)."""
    root = reading.root
    stem = json_path.stem
    names = list(dict.fromkeys(n for n in (stem.split("instances_", 1)[-1], stem) if n))
    split = _split_of_name(stem)
    names += [alias for alias, value in SPLIT_ALIASES.items() if value == split and alias not in names]
    folders = [json_path.parent]
    for name in names:
        folders += [root / "images" / name, root / name]
    folders += [root / "images", root]
    outside: Path | None = None
    for folder in dict.fromkeys(folders):
        candidate = folder / file_name
        if is_regular_file(candidate):
            if is_inside(root, candidate):
                return candidate
            outside = outside or folder
    if outside is not None:  # found only outside the source: refused, or read with a warning
        return reading.picture(file_name, where=json_path, base=outside)
    looked = ", ".join(str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in dict.fromkeys(folders))
    raise DataError(json_path, f"picture {file_name!r} is not in any of the folders looked in ({looked})")


def read_coco(root: Path, reading: _Reading | None = None) -> list[LabelledPicture]:
    """A COCO dataset: one JSON per split (``instances_train.json``, ``train/_annotations.coco.json``), or one."""
    reading = reading or _Reading(root)
    files = _coco_files(root, strict=True)
    if not files:
        raise DataError(root, "no COCO JSON (a file with \"images\" and \"annotations\") in the folder, "
                              "in annotations/ or in train/val/test folders")
    by_split: dict[str | None, Path] = {}
    for path in files:
        split = _split_of_name(path.stem) or (SPLIT_ALIASES.get(path.parent.name.lower())
                                              if path.parent != root else None)
        if split in by_split:
            which = f"the {split} split" if split else "a dataset without splits"
            raise DataError(path, f"a second COCO file for {which} (the first is {by_split[split]}); keep one")
        by_split[split] = path
    if None in by_split and len(by_split) > 1:
        raise DataError(by_split[None], "a COCO file without a split beside files for "
                                        f"{', '.join(sorted(s for s in by_split if s))}: name it after its split")
    pictures = []
    for split, path in by_split.items():
        pictures += _read_coco_file(path, reading, split)
    return pictures


def _coco_list(path: Path, document: dict, key: str) -> list[dict]:
    """``document[key]`` as a list of objects, or a DataError naming the first entry that is not one."""
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise DataError(path, f"not a COCO file: \"{key}\" must be a list, got {_value(entries)}")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise DataError(path, f"{key} entry {number} must be an object, got {_value(entry)}")
    return entries


def _read_coco_file(path: Path, reading: _Reading, split: str | None) -> list[LabelledPicture]:
    """One COCO file's pictures and faces; every id checked: an image id used twice, an id that is not a
    whole number, an annotation for an image or a category that is not there each stop the conversion
    (kept, they would move faces onto the wrong picture or drop them)."""
    document = _json_document(path)
    if not _is_coco(document):
        raise DataError(path, "not a COCO file: it needs \"images\" and \"annotations\" lists")
    categories: list[tuple[int, str]] = []
    for number, category in enumerate(_coco_list(path, document, "categories"), 1):
        category_id = category.get("id")
        if not _is_id(category_id):
            raise DataError(path, f"category {number} has id {_value(category_id)}, not a whole number")
        if any(category_id == known for known, _ in categories):
            raise DataError(path, f"category id {category_id} is used twice: each category needs its own id")
        categories.append((category_id, str(category.get("name", ""))))
    images: dict[int, dict] = {}
    for number, image in enumerate(_coco_list(path, document, "images"), 1):
        image_id, file_name = image.get("id"), image.get("file_name")
        if not _is_id(image_id):
            raise DataError(path, f"image {number} ({_value(file_name)}) has id {_value(image_id)}, not a whole "
                                  "number")
        if image_id in images:
            raise DataError(path, f"image id {image_id} is used twice ({_value(images[image_id].get('file_name'))} "
                                  f"and {_value(file_name)}): each picture needs its own id, or faces end up on "
                                  "the wrong picture")
        if not isinstance(file_name, str) or not file_name:
            raise DataError(path, f"image id {image_id} has no file_name (got {_value(file_name)})")
        images[image_id] = image
    annotations = _coco_list(path, document, "annotations")
    known_categories = {category_id for category_id, _ in categories}
    for annotation in annotations:
        where = f"annotation id {_value(annotation.get('id'))}"
        image_id, category_id = annotation.get("image_id"), annotation.get("category_id")
        if not _is_id(image_id):
            raise DataError(path, f"{where}: image_id {_value(image_id)} is not a whole number")
        if image_id not in images:
            raise DataError(path, f"{where} is for image id {image_id}, which is not in \"images\"")
        if not _is_id(category_id):
            raise DataError(path, f"{where}: category_id {_value(category_id)} is not a whole number")
        if categories and category_id not in known_categories:
            raise DataError(path, f"{where} has category_id {category_id}, which is not in \"categories\" "
                                  f"({', '.join(str(c) for c in sorted(known_categories))})")
    used = {annotation["category_id"] for annotation in annotations}
    faces = _face_class(path, categories, used) or set()
    boxes: dict[int, list[PixelBox]] = {}
    sizes: dict[int, tuple[Path, int, int]] = {}
    for image_id, image in images.items():
        file_name = image["file_name"]
        picture = _coco_picture(path, reading, file_name)
        width, height = _picture_size(picture)
        claimed = (image.get("width"), image.get("height"))
        if claimed != (None, None) and claimed != (width, height):
            raise DataError(path, f"{shown(file_name)} is labelled as {_value(claimed[0])}x{_value(claimed[1])} but "
                                  f"the picture is {width}x{height} (was it resized after labelling?)")
        sizes[image_id] = (picture, width, height)
        boxes[image_id] = []
    for annotation in annotations:
        if annotation["category_id"] not in faces:
            continue
        image_id = annotation["image_id"]
        where = f"annotation id {_value(annotation.get('id'))}"
        picture, width, height = sizes[image_id]
        try:
            bbox = annotation["bbox"]
            if not isinstance(bbox, list):
                raise TypeError
            x, y, w, h = (_number(v) for v in bbox)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DataError(path, f"{where}: bbox must be four numbers [x, y, width, height], "
                                  f"got {_value(annotation.get('bbox'))}") from None
        if w < 0 or h < 0:
            raise DataError(path, f"{where} ({shown(picture.name)}): bbox of negative size ({_fmt(w)}x{_fmt(h)} "
                                  "px): COCO boxes are [x, y, width, height] with width and height >= 0")
        boxes[image_id].append(_checked_box(path, f"{where} ({picture.name})", (x, y, x + w, y + h), width, height))
    return [LabelledPicture(picture, width, height, tuple(boxes[image_id]), split)
            for image_id, (picture, width, height) in sizes.items()]


def _yolo_names(root: Path) -> tuple[Path, list[tuple[int, str]]] | None:
    """(file, [(class index, name)]) from a ``*.yaml`` with ``names`` or a ``classes.txt``; None without."""
    for path in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        text = read_text(path, max_bytes=MAX_SMALL_FILE_BYTES, error=DataError, what="dataset description")
        try:
            import yaml

            document = yaml.safe_load(text)
        except Exception as exc:  # yaml.YAMLError and its kin, RecursionError for deep nesting
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(path, f"not valid YAML: {first}") from None
        if not isinstance(document, dict) or "names" not in document:
            continue
        names = document["names"]
        if isinstance(names, dict):
            if not all(_is_id(key) or (isinstance(key, str) and key.strip().isdecimal() and key.isascii())
                       for key in names):
                raise DataError(path, f"names must map class numbers to names, got {_value(names)}")
            return path, [(int(key), str(value)) for key, value in names.items()]
        if isinstance(names, list):
            return path, [(index, str(value)) for index, value in enumerate(names)]
        raise DataError(path, f"names must be a list or a mapping of class numbers to names, got {_value(names)}")
    for path in (root / "classes.txt", root / "labels" / "classes.txt"):
        if path.exists():
            text = read_text(path, max_bytes=MAX_SMALL_FILE_BYTES, error=DataError, what="class list")
            lines = [line.strip() for line in text.splitlines()]
            return path, [(index, name) for index, name in enumerate(lines) if name]
    return None


def _read_yolo_lines(path: Path) -> list[tuple[int, int, list[float]]]:
    """(line number, class, [x_center, y_center, width, height]) of each box line; DataError naming the
    file and line for a line that is not five numbers, a class that is not a whole number, or a box of
    zero or negative width or height (kept, it would turn into some other box)."""
    text = read_text(path, max_bytes=MAX_ANNOTATION_BYTES, error=DataError, what="label file")
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) != 5:
            kind = "a polygon (segmentation) label" if len(words) > 5 else "too few numbers"
            raise DataError(path, f"line {number}: expected 'class x_center y_center width height', got "
                                  f"{len(words)} numbers ({kind})")
        try:
            values = [_number(word) for word in words]
        except ValueError:
            raise DataError(path, f"line {number}: not five numbers: {line.strip()!r}") from None
        if not values[0].is_integer() or values[0] < 0:
            raise DataError(path, f"line {number}: the class must be a whole number, got {_value(words[0])}")
        if values[3] <= 0 or values[4] <= 0:
            raise DataError(path, f"line {number}: width and height must be above 0, got {words[3]} and {words[4]} "
                                  "(a box of no size, or a line written in another order than "
                                  "'class x_center y_center width height')")
        rows.append((number, int(values[0]), values[1:]))
    return rows


def read_yolo(root: Path, reading: _Reading | None = None) -> list[LabelledPicture]:
    """A YOLO dataset: pictures with a ``.txt`` of the same name in the matching labels folder (pictures are
    found by listing their folders, never by a name in a file)."""
    folders = _yolo_folders(root)
    if not folders:
        raise DataError(root, "no YOLO layout: expected images/ + labels/, images/SPLIT + labels/SPLIT, "
                              "or SPLIT/images + SPLIT/labels")
    entries: list[tuple[str | None, Path, Path | None]] = []
    used: set[int] = set()
    lines: dict[Path, list[tuple[int, int, list[float]]]] = {}
    for split, images_dir, labels_dir in folders:
        pictures = {path.stem: path for path in _pictures(images_dir)}
        labels = {path.stem: path for path in _yolo_label_files(labels_dir)}
        for stem, label in labels.items():
            if stem not in pictures:
                raise DataError(label, f"no picture for this label: expected {stem}.jpg (or .jpeg, .png, .bmp) "
                                       f"in {images_dir}")
            lines[label] = _read_yolo_lines(label)
            used.update(cls for _, cls, _ in lines[label])
        entries += [(split, picture, labels.get(stem)) for stem, picture in pictures.items()]
    if not entries:
        raise DataError(root, "no pictures in the YOLO images folders")
    if not lines:
        raise DataError(root, "no YOLO .txt label files beside the pictures' labels folders: is it another "
                              f"format? (say which with --from {'|'.join(READ_FORMATS)})")
    named = _yolo_names(root)
    if named is None:
        if used - {0}:
            raise DataError(root, f"labels use classes {sorted(used)} but no data.yaml or classes.txt names them; "
                                  "add one, with the face class named \"face\"")
        faces = {0}
    else:
        names_file, names = named
        classes = {index for index, _ in names}
        for label, rows in lines.items():
            for number, cls, _ in rows:
                if cls not in classes:
                    raise DataError(label, f"line {number}: class {cls} is not one of the {len(classes)} classes "
                                           f"{shown(names_file.name)} names ({_class_range(classes)})")
        faces = _face_class(names_file, names, used) or set()
    pictures = []
    for split, picture, label in entries:
        width, height = _picture_size(picture)
        boxes = []
        for number, cls, (cx, cy, w, h) in lines.get(label, []) if label else []:
            if cls not in faces:
                continue
            corners = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
            boxes.append(_checked_box(label, f"line {number}: box", corners, width, height))
        pictures.append(LabelledPicture(picture, width, height, tuple(boxes), split))
    return pictures


def _class_range(classes: set[int]) -> str:
    ordered_classes = sorted(classes)
    if ordered_classes == list(range(len(ordered_classes))):
        return f"0 to {len(ordered_classes) - 1}" if len(ordered_classes) > 1 else "0"
    return ", ".join(map(str, ordered_classes[:10])) + (", ..." if len(ordered_classes) > 10 else "")


def _voc_document(path: Path) -> ET.Element:
    data = read_bytes(path, max_bytes=MAX_SMALL_FILE_BYTES, error=DataError, what="annotation file")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataError(path, f"not valid XML: {exc}") from None
    if root.tag != "annotation":
        raise DataError(path, f"not a Pascal VOC file: the root element is <{root.tag}>, not <annotation>")
    return root


def _voc_text(element: ET.Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _voc_picture(xml: Path, document: ET.Element, picture_folders: list[Path], reading: _Reading) -> Path:
    """The picture a VOC file labels: its <filename> (or the file's own name) in the folders given; one
    that is a link out of the source folder is refused (see :meth:`_Reading.picture`)."""
    file_name = Path(_voc_text(document, "filename")).name
    for folder in picture_folders:
        names = [file_name] if file_name else []
        names += [f"{xml.stem}{suffix}" for ext in IMAGE_EXTENSIONS for suffix in (ext, ext.upper())]
        for name in names:
            if is_regular_file(folder / name):
                return reading.picture(name, where=xml, base=folder)
    where = ", ".join(str(f) for f in picture_folders)
    raise DataError(xml, f"no picture for this label: {file_name or xml.stem + '.jpg'} is not in {where}")


def read_voc(root: Path, reading: _Reading | None = None) -> list[LabelledPicture]:
    """A Pascal VOC dataset: ``Annotations/`` + ``JPEGImages/`` (splits from ``ImageSets/Main``), or XML
    files beside the pictures (in the folder, ``images/`` or split folders)."""
    reading = reading or _Reading(root)
    groups: list[tuple[str | None, list[Path], list[Path]]] = []  # (split, XML files, picture folders)
    split_of: dict[str, str] = {}  # file stem -> split, from ImageSets/Main
    if (root / "Annotations").is_dir():
        pictures_dir = root / "JPEGImages" if (root / "JPEGImages").is_dir() else root / "images"
        xmls = _files(root / "Annotations", (".xml",))
        lists = root / "ImageSets" / "Main"
        for path in _files(lists, (".txt",)):
            split = SPLIT_ALIASES.get(path.stem.lower())
            if split is None:
                continue  # trainval.txt, class lists (face_train.txt): the plain split lists say it all
            text = read_text(path, max_bytes=MAX_ANNOTATION_BYTES, error=DataError, what="split list")
            for line in text.split("\n"):
                if line.strip():
                    split_of.setdefault(line.split()[0], split)
        groups.append((None, xmls, [pictures_dir]))
    else:
        for split, folder in _split_folders(root):
            groups.append((split, _files(folder, (".xml",)), [folder, folder / "images"]))
        if not groups:
            folder = root / "images" if (root / "images").is_dir() else root
            groups.append((None, _files(folder, (".xml",)) + (_files(root, (".xml",)) if folder != root else []),
                           [folder, root]))
    parsed: list[tuple[str | None, Path, ET.Element, Path]] = []
    unlabelled: dict[Path, str | None] = {}  # pictures without an XML: no face, as in labelme
    names: set[str] = set()
    for split, xmls, folders in groups:
        for folder in folders:
            unlabelled.update(dict.fromkeys(_pictures(folder), split))
        for xml in xmls:
            document = _voc_document(xml)
            picture = _voc_picture(xml, document, folders, reading)
            names.update(_voc_text(obj, "name") for obj in document.findall("object"))
            parsed.append((split, xml, document, picture))
    if not parsed:
        raise DataError(root, "no Pascal VOC XML files (Annotations/*.xml, or .xml beside the pictures)")
    for _split, _xml, _document, picture in parsed:
        unlabelled.pop(picture, None)
    faces = _face_class(root, [(name, name) for name in sorted(names)], names) or set()
    pictures = []
    for split, xml, document, picture in parsed:
        width, height = _picture_size(picture)
        size = document.find("size")
        if size is not None:
            try:
                claimed = (int(_number(_voc_text(size, "width") or 0)), int(_number(_voc_text(size, "height") or 0)))
            except (ValueError, OverflowError):
                raise DataError(xml, "<size> must hold finite numbers") from None
            if 0 not in claimed and claimed != (width, height):
                raise DataError(xml, f"labelled as {claimed[0]}x{claimed[1]} but {picture.name} is {width}x{height} "
                                     "(was it resized after labelling?)")
        boxes = []
        for number, obj in enumerate(document.findall("object"), 1):
            if _voc_text(obj, "name") not in faces:
                continue
            bndbox = obj.find("bndbox")
            try:
                corners = tuple(_number(_voc_text(bndbox, tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, ValueError):
                raise DataError(xml, f"object {number}: <bndbox> needs numeric xmin, ymin, xmax, ymax") from None
            boxes.append(_checked_box(xml, f"object {number}", corners, width, height))
        pictures.append(LabelledPicture(picture, width, height, tuple(boxes),
                                        split if split is not None else split_of.get(xml.stem)))
    for picture, split in unlabelled.items():
        width, height = _picture_size(picture)
        pictures.append(LabelledPicture(picture, width, height, (),
                                        split if split is not None else split_of.get(picture.stem)))
    if split_of:
        unlisted = [p for p in pictures if p.split is None]
        if unlisted:
            raise DataError(unlisted[0].image, "not listed in any of ImageSets/Main/{train,val,test}.txt: "
                                               "add it to one, or remove it")
    return pictures


@dataclass
class _WiderEntry:
    """One picture of a WIDER FACE annotation file: its path, the line it is named on, and its box lines."""

    name: str
    line: int
    rows: list[tuple[int, list[float]]]


def _wider_entries(path: Path) -> list[_WiderEntry]:
    """Every picture of a WIDER FACE annotation file, with its box lines (line number, ten numbers);
    DataError naming the file and line for a malformed count, a box line that is not ten numbers, or
    fewer box lines than the count says."""
    lines = read_text(path, max_bytes=MAX_ANNOTATION_BYTES, error=DataError, what="annotation file").splitlines()
    entries: list[_WiderEntry] = []
    i = 0
    while i < len(lines):
        name, number = lines[i].strip(), i + 1
        i += 1
        if not name:
            continue
        if i >= len(lines):
            raise DataError(path, f"line {number}: {name} is not followed by its number of faces (the file ends)")
        count_text = lines[i].strip()
        i += 1
        if not re.fullmatch(r"\d{1,9}", count_text):  # ASCII digits, and fewer than a billion faces
            raise DataError(path, f"line {i}: expected the number of faces of {name} (line {number}), "
                                  f"got {count_text[:60]!r}")
        count = int(count_text)
        rows = []
        expected = count
        if count == 0:  # one line of ten zeros follows (tolerated when left out)
            expected = int(i < len(lines) and len(lines[i].split()) == len(WIDER_FIELDS))
        for k in range(expected):
            if i >= len(lines):
                raise DataError(path, f"line {number}: {name} has {count} faces but the file ends after "
                                      f"{k} of its box lines")
            words = lines[i].split()
            i += 1
            if len(words) != len(WIDER_FIELDS):
                shown = lines[i - 1].strip()[:60]
                hint = (f" (only {k} box lines for the {count} faces of {name}, line {number}?)"
                        if len(words) == 1 else "")
                raise DataError(path, f"line {i}: expected ten numbers ({' '.join(WIDER_FIELDS)}), got "
                                      f"{shown!r}{hint}")
            try:
                values = [_number(word) for word in words]
            except ValueError:
                raise DataError(path, f"line {i}: not ten numbers: {lines[i - 1].strip()[:60]!r}") from None
            if count:
                rows.append((i, values))
        entries.append(_WiderEntry(name, number, rows))
    return entries


def read_wider(root: Path, notes: list[str] | None = None, reading: _Reading | None = None) -> list[LabelledPicture]:
    """A WIDER FACE download: ``wider_face_split/wider_face_{train,val}_bbx_gt.txt`` with the pictures in
    ``WIDER_{train,val}/images``; train stays train, val stays val.

    Boxes marked invalid, and boxes of zero width or height, are skipped (a picture whose every face is
    skipped is left out: kept, it would teach "no face" on faces); the rest pass
    :func:`training.data.dataset.checked_box`. What was skipped is added to ``notes`` (the conversion summary),
    and so is the test split, which WIDER FACE gives without boxes.
    """
    reading = reading or _Reading(root)
    notes = reading.notes if notes is None else notes
    files = _wider_annotation_files(root)
    if not files:
        raise DataError(root, "no WIDER FACE annotation files (wider_face_split/wider_face_train_bbx_gt.txt, "
                              "wider_face_val_bbx_gt.txt)")
    if (root / "WIDER_test").is_dir() or any(root.glob("*/wider_face_test*")) or any(root.glob("wider_face_test*")):
        notes.append("WIDER_test: not converted, WIDER FACE gives its test pictures without face boxes")
    pictures: list[LabelledPicture] = []
    missing: list[Path] = []
    for split, path in files.items():
        images_dir = root / f"WIDER_{split}" / "images"
        if not images_dir.is_dir():
            missing.append(images_dir)
            notes.append(f"{path.name}: not converted, its pictures folder {images_dir} does not exist")
            continue
        invalid = zero = left_out = clipped_boxes = 0
        for entry in _wider_entries(path):
            picture = images_dir / entry.name
            if not is_regular_file(picture):
                raise DataError(path, f"line {entry.line}: the picture {shown(entry.name)} does not exist in "
                                      f"{shown(images_dir)}")
            picture = reading.picture(entry.name, where=path, base=images_dir)
            width, height = _picture_size(picture)
            boxes = []
            for number, values in entry.rows:
                x, y, w, h = values[:4]
                if values[7] != 0:
                    invalid += 1
                elif w == 0 or h == 0:
                    zero += 1
                elif w < 0 or h < 0:
                    raise DataError(path, f"line {number} ({entry.name}): a box of negative size "
                                          f"({_fmt(w)}x{_fmt(h)} px)")
                else:
                    # WIDER FACE's annotators let some boxes run past the picture's edge (a face cut by
                    # it): those are clipped and counted, not a reason to stop a 32,000-picture conversion.
                    x1, y1, x2, y2 = max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)
                    if (x1, y1, x2, y2) != (x, y, x + w, y + h):
                        if x2 - x1 < 1 or y2 - y1 < 1:
                            zero += 1
                            continue
                        clipped_boxes += 1
                    boxes.append(checked_box(path, (x1, y1, x2, y2), width, height,
                                             f"line {number} ({entry.name}): box", "picture"))
            if entry.rows and not boxes:
                left_out += 1
                continue
            pictures.append(LabelledPicture(picture, width, height, tuple(boxes), split))
        if invalid or zero:
            note = (f"{path.name}: skipped {invalid} face boxes marked invalid and {zero} of zero width or height")
            if left_out:
                note += f"; {left_out} pictures left out, every face on them skipped"
            notes.append(note)
        if clipped_boxes:
            notes.append(f"{path.name}: {clipped_boxes} face boxes reaching past their picture's edge were clipped to it")
    if not pictures and missing:
        raise DataError(missing[0], "the WIDER FACE pictures folder does not exist: unpack WIDER_train.zip "
                                    "(or WIDER_val.zip) beside wider_face_split")
    return pictures


READERS = {"labelme": read_labelme, "coco": read_coco, "yolo": read_yolo, "voc": read_voc, "wider": read_wider}


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


def write_coco_dataset(pictures: list[LabelledPicture], out: Path, link: bool = False) -> None:
    """``annotations/instances_SPLIT.json`` + ``images/SPLIT/`` (``instances_default.json`` + ``images/``)."""
    for split, group in _by_split(pictures).items():
        images_dir = out / "images" / split if split else out / "images"
        names = _Names()
        images, annotations = [], []
        for image_id, picture in enumerate(group, 1):
            name = names.take(picture.image)
            _place(picture.image, images_dir / name, link)
            images.append({"id": image_id, "file_name": name, "width": picture.width, "height": picture.height})
            for box in picture.boxes:
                x1, y1, x2, y2 = (round(v, PIXEL_DECIMALS) for v in box)
                w, h = round(x2 - x1, PIXEL_DECIMALS), round(y2 - y1, PIXEL_DECIMALS)
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                    "bbox": [x1, y1, w, h], "area": round(w * h, PIXEL_DECIMALS),
                                    "iscrowd": 0, "segmentation": []})
        document = {
            "info": {"description": "FaceTracker faces", "version": "1.0"},
            "licenses": [],
            "categories": [{"id": 1, "name": "face", "supercategory": "person"}],
            "images": images,
            "annotations": annotations,
        }
        _write_text(out / "annotations" / f"instances_{split or 'default'}.json", json.dumps(document, indent=1))


def write_yolo_dataset(pictures: list[LabelledPicture], out: Path, link: bool = False) -> None:
    """Ultralytics' layout: ``images/SPLIT`` + ``labels/SPLIT/*.txt`` and a ``data.yaml``; a no-face
    picture gets an empty label file (a "background" picture to Ultralytics)."""
    groups = _by_split(pictures)
    for split, group in groups.items():
        names = _Names()
        for picture in group:
            name = names.take(picture.image)
            _place(picture.image, out / "images" / (split or "") / name, link)
            lines = []
            for x1, y1, x2, y2 in picture.boxes:
                w, h = picture.width, picture.height
                values = ((x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
                lines.append("0 " + " ".join(f"{v:.{YOLO_DECIMALS}f}" for v in values) + "\n")
            _write_text(out / "labels" / (split or "") / f"{Path(name).stem}.txt", "".join(lines))
    lines = ["# Written by facetracker-train convert. Paths are relative to this file's folder.",
             "# One class: the face (one line per face)."]
    if None in groups:
        lines += ["# No splits: train and val are the same pictures; sort them into images/{train,val,test}",
                  "# (labels likewise) for a fair validation.", "train: images", "val: images"]
    else:
        lines += [f"{split}: images/{split}" for split in SPLITS if split in groups]
    lines += ["names:", "  0: face", ""]
    _write_text(out / "data.yaml", "\n".join(lines))


def _voc_xml_text(picture: LabelledPicture, name: str) -> str:
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = "JPEGImages"
    ET.SubElement(annotation, "filename").text = name
    source = ET.SubElement(annotation, "source")
    ET.SubElement(source, "database").text = "FaceTracker"
    size = ET.SubElement(annotation, "size")
    ET.SubElement(size, "width").text = str(picture.width)
    ET.SubElement(size, "height").text = str(picture.height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(annotation, "segmented").text = "0"
    for box in picture.boxes:
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = "face"
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ET.SubElement(bndbox, tag).text = _fmt(value)
    ET.indent(annotation)
    return ET.tostring(annotation, encoding="unicode") + "\n"


def write_voc_dataset(pictures: list[LabelledPicture], out: Path, link: bool = False) -> None:
    """``JPEGImages/`` + ``Annotations/*.xml`` (a no-face picture: no <object>) + ``ImageSets/Main/SPLIT.txt``."""
    names = _Names()  # one pictures folder for every split: names must not clash across splits
    listed: dict[str, list[str]] = {}
    for picture in pictures:
        name = names.take(picture.image)
        _place(picture.image, out / "JPEGImages" / name, link)
        _write_text(out / "Annotations" / f"{Path(name).stem}.xml", _voc_xml_text(picture, name))
        if picture.split:
            listed.setdefault(picture.split, []).append(Path(name).stem)
    for split, stems in listed.items():
        _write_text(out / "ImageSets" / "Main" / f"{split}.txt", "\n".join(stems) + "\n")


WRITERS = {"labelme": write_labelme_dataset, "coco": write_coco_dataset, "yolo": write_yolo_dataset,
           "voc": write_voc_dataset}


# ------------------------------------------------------------------------------------------ convert


def read_dataset(src: Path | str, source_format: str | None = None, notes: list[str] | None = None, *,
                 allow_outside: bool = False) -> tuple[str, list[LabelledPicture]]:
    """(format, pictures) of a dataset in any supported format (detected when ``source_format`` is None);
    what the reader skipped, and why, is added to ``notes``.

    A picture that an annotation file names outside ``src`` (``../x.jpg``, an absolute path, a link
    out) is a DataError naming the annotation file, unless ``allow_outside``: then it is read, and
    one note names such pictures.
    """
    src = Path(src)
    _require_folder(src)
    source_format = source_format or detect_format(src)
    if source_format not in READERS:
        raise ValueError(f"unknown format {source_format!r}; choose one of {', '.join(READ_FORMATS)}")
    reading = _Reading(src, allow_outside=allow_outside, notes=[] if notes is None else notes)
    pictures = (read_wider(src, reading=reading) if source_format == "wider"
                else READERS[source_format](src, reading))
    reading.finish()
    if not pictures:
        raise DataError(src, f"no pictures found as a {source_format} dataset")
    return source_format, pictures


def convert(src: Path | str, dst: Path | str, to: str, source_format: str | None = None,
            link: bool = False, allow_outside: bool = False) -> Conversion:
    """Read the dataset ``src`` (format detected unless ``source_format`` says) and write it to the new
    folder ``dst`` in format ``to``, pictures copied (``link``: hard-linked where the disk allows).
    ``allow_outside``: read pictures that annotation files name outside ``src`` (with a note), see
    :func:`read_dataset`.

    The new dataset is built in a staging folder beside ``dst`` and renamed into place at the end
    (:func:`training.core.files.staging_folder`): ``dst`` appears complete or not at all, and the staging
    folder of a conversion that was killed is removed by the next one.

    Raises:
        DataError: ``src`` cannot be read (the message names the file), its format cannot be told, or
            ``dst`` already holds files.
        ValueError: an unknown format name.
    """
    src, dst = Path(src), Path(dst)
    if to not in WRITERS:
        raise ValueError(f"unknown format {to!r}; choose one of {', '.join(FORMATS)}")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DataError(dst, "already exists and is not an empty folder: choose a new folder for the converted "
                             "dataset")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise DataError(dst, "is the source folder: write the converted dataset to a new folder")
    notes: list[str] = []
    source_format, pictures = read_dataset(src, source_format, notes, allow_outside=allow_outside)
    with staging_folder(dst) as staging:
        WRITERS[to](pictures, staging, link)
    counts = {split: sum(1 for p in pictures if p.split == split) for split in SPLITS}
    return Conversion(source_format, to, dst, len(pictures), sum(1 for p in pictures if p.boxes),
                      {split: n for split, n in counts.items() if n},
                      face_boxes=sum(len(p.boxes) for p in pictures), notes=tuple(notes))

"""COCO JSON (CVAT, Label Studio, Roboflow): ``annotations/instances_SPLIT.json`` + ``images/SPLIT``
(or ``SPLIT/_annotations.coco.json`` with the pictures beside it), boxes ``[x, y, width, height]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.core.inputs import is_inside, is_regular_file, shown
from training.data.errors import DataError
from training.data.formats.common import (
    SPLIT_ALIASES,
    LabelledPicture,
    PixelBox,
    _by_split,
    _checked_box,
    _face_class,
    _files,
    _fmt,
    _is_id,
    _json_document,
    _Names,
    _number,
    _peek_json,
    _picture_size,
    _place,
    _Reading,
    _split_folders,
    _split_of_name,
    _value,
    _write_text,
)

PIXEL_DECIMALS = 3


def _is_coco(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("images"), list) and "annotations" in document


def _coco_files(root: Path, strict: bool = False) -> list[Path]:
    """The COCO files of a dataset; ``strict``: a JSON file that cannot be read is an error, not skipped
    (it may be the annotations of a whole split)."""
    folders = [root, root / "annotations", *(folder for _split, folder in _split_folders(root))]
    read = _json_document if strict else _peek_json
    return [path for folder in folders for path in _files(folder, (".json",)) if _is_coco(read(path))]


def _coco_evidence(root: Path) -> str | None:
    files = _coco_files(root)
    return f"COCO JSON {files[0].relative_to(root)}" if files else None


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

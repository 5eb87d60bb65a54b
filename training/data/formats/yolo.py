"""YOLO text (Ultralytics, Roboflow): ``images/SPLIT`` + ``labels/SPLIT/*.txt``, one line per box
``class x_center y_center width height`` normalised, class names from a ``*.yaml`` or ``classes.txt``."""

from __future__ import annotations

from pathlib import Path

from training.core.inputs import MAX_ANNOTATION_BYTES, MAX_SMALL_FILE_BYTES, read_text, shown
from training.data.dataset import SPLITS
from training.data.errors import DataError
from training.data.formats.common import (
    READ_FORMATS,
    LabelledPicture,
    _by_split,
    _checked_box,
    _face_class,
    _files,
    _is_id,
    _Names,
    _number,
    _picture_size,
    _pictures,
    _place,
    _Reading,
    _split_folders,
    _value,
    _write_text,
)

YOLO_DECIMALS = 7  # normalised: a corner within 0.75e-7 of the picture, 0.00005 px on a 640 px picture


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

"""WIDER FACE, read only: ``wider_face_split/wider_face_{train,val}_bbx_gt.txt`` + ``WIDER_{train,val}/images``.
Its test split comes without boxes, so there is nothing to write."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from training.core.inputs import MAX_ANNOTATION_BYTES, is_regular_file, read_text, shown
from training.data.errors import DataError
from training.data.formats.common import LabelledPicture, _fmt, _number, _picture_size, _Reading, checked_box

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
    :func:`training.data.formats.common.checked_box`. What was skipped is added to ``notes`` (the conversion summary),
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

"""Reading a labelled face dataset: pictures plus labelme JSON, checked file by file.

Three layouts are read (``load_dataset`` finds which):

* ``split``  - the tutorial's ``root/{train,val,test}/{images,labels}``;
* ``flat``   - ``root/images/`` + ``root/labels/``;
* ``beside`` - labelme's default, each ``.json`` next to its picture (in ``root`` or ``root/images``).

Pictures and labels pair by file *stem*, never by listing order (the tutorial's sorted-order pairing
shifts every pair when one file is missing). Flat and beside datasets are split by a hash of the stem,
so adding pictures never moves an old picture to another split. Every bad file becomes a
:class:`Problem` (skipped and reported) or, with ``strict=True``, a :class:`DataError`.

This module is the sample model (:class:`Sample`, :class:`Dataset`) and the folder discovery; each
picture is checked by :mod:`training.data.pictures` and each label read by
:mod:`training.data.formats.labelme` (which builds on this module, so it is imported where it is used).

No TensorFlow here: the desktop app reads datasets without loading it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.core.boxes import Box
from training.core.inputs import has_undecodable_name, read_json, shown
from training.data.errors import DataError, Problem
from training.data.pictures import IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS, check_picture

SPLITS = ("train", "val", "test")
LAYOUTS = {
    "split": "train/val/test folders",
    "flat": "images/ + labels/, split by file name",
    "beside": "labelme JSON beside each picture, split by file name",
}

NO_BOX: Box = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Sample:
    """One picture and its label, boxes normalised ``[x1, y1, x2, y2]``.

    ``boxes`` holds every face (largest first); ``box`` is the largest, what a single-face model
    trains on (zeros without a face). Built with ``box`` alone, ``boxes`` is that one box.
    """

    image_path: Path
    label_path: Path | None
    has_face: bool
    box: Box
    width: int
    height: int
    boxes: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        if not self.boxes and self.has_face:
            object.__setattr__(self, "boxes", (tuple(self.box),))

    @property
    def face_count(self) -> int:
        return len(self.boxes) if self.has_face else 0


@dataclass
class Dataset:
    """The samples of each split, every file that was skipped, and notes about files that were used."""

    root: Path
    layout: str
    splits: dict[str, list[Sample]]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per split: pictures, pictures with a face (``faces``), pictures without (``no_faces``), face boxes
        in all (``face_boxes``: what a multi-face model learns from) and pictures with several faces."""
        result = {}
        for name in SPLITS:
            samples = self.splits.get(name, [])
            faces = sum(1 for s in samples if s.has_face)
            result[name] = {"images": len(samples), "faces": faces, "no_faces": len(samples) - faces,
                            "face_boxes": sum(s.face_count for s in samples),
                            "several_faces": sum(1 for s in samples if s.face_count > 1)}
        return result

    def several_faces_notes(self) -> list[Problem]:
        """One note per picture labelled with several faces, saying which face a single-face model uses.

        Not a dataset warning: a multi-face model learns every face. The trainer of a single-face model
        gives these as its warnings (it trains on the largest face of each such picture).
        """
        from training.data.formats.labelme import several_faces_note  # labelme builds on this module

        return [several_faces_note(s.label_path, s.boxes, s.width, s.height)
                for name in SPLITS for s in self.splits.get(name, [])
                if s.face_count > 1 and s.label_path is not None]

    def unlabelled(self) -> int:
        """Pictures without a label file: counted as "no face", the tutorial's convention."""
        return sum(1 for samples in self.splits.values() for s in samples if s.label_path is None)

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

    def training_refusal(self) -> str | None:
        """Why the training pictures cannot teach a face detector (no face at all, or nothing but faces),
        or None. A model trained on one class only learns to answer that class: it would "pass" with
        a class accuracy of 1.0 on a validation split like it and be useless."""
        train = self.splits.get("train", [])
        if not train:
            return None  # require_split says how to fill it
        faces = sum(1 for s in train if s.has_face)
        if faces == 0:
            unlabelled = sum(1 for s in train if s.label_path is None)
            why = (f", {unlabelled} of them without a label file (counted as no face)" if unlabelled else "")
            return (f"none of the {len(train)} training pictures has a face labelled{why}: label your face "
                    "in the Label tab (or labelme) first; a model cannot learn faces from none")
        if faces == len(train):
            return (f"all {len(train)} training pictures show a face and none is without: add pictures without "
                    "your face in view (the tutorial: about one in five), or the model learns to say "
                    "\"face\" everywhere")
        return None

    def require_trainable(self) -> None:
        """DataError naming the dataset when :meth:`training_refusal` has a reason; what training calls."""
        reason = self.training_refusal()
        if reason:
            raise DataError(self.root, f"cannot train on this dataset: {reason}")

    def summary_text(self) -> str:
        """A table of the splits followed by the skipped files, for people."""
        counts = self.counts()
        lines = [
            f"Dataset {self.root} (layout: {self.layout}, {LAYOUTS.get(self.layout, '')})",
            f"{'split':<8}{'images':>8}{'faces':>8}{'no face':>9}{'boxes':>8}",
        ]
        total = {key: sum(c[key] for c in counts.values()) for key in next(iter(counts.values()))}
        for name, c in [*counts.items(), ("total", total)]:
            lines.append(f"{name:<8}{c['images']:>8}{c['faces']:>8}{c['no_faces']:>9}{c['face_boxes']:>8}")
        lines.append(unlabelled_line(self.unlabelled()))
        if total["several_faces"]:
            lines.append(several_faces_line(total["several_faces"], total["face_boxes"]))
        empty = self.empty_splits()
        if empty:
            lines.append(f"Empty splits: {', '.join(empty)}")
        refusal = self.training_refusal()
        if refusal:
            lines.append(f"Cannot train: {refusal}")
        if self.problems:
            lines.append(f"Problems ({len(self.problems)} skipped):")
            lines.extend(f"  {line}" for line in grouped_problem_lines(self.problems))
        else:
            lines.append("Problems: none")
        if self.warnings:
            lines.append(f"Warnings ({len(self.warnings)}, used anyway):")
            lines.extend(f"  {line}" for line in grouped_problem_lines(self.warnings))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (for ``summary --json`` and the desktop)."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "counts": self.counts(),
            "unlabelled": self.unlabelled(),
            "several_faces": sum(c["several_faces"] for c in self.counts().values()),
            "empty_splits": self.empty_splits(),
            "cannot_train": self.training_refusal(),
            "problems": [str(p) for p in self.problems],
            "warnings": [str(w) for w in self.warnings],
        }


#: A message shared by this many files or more is one line ("20,000 files: the picture file is empty, e.g. ...").
GROUP_AT = 4
#: At most this many lines of problems in a summary; the rest is counted (``summary --problems-file``: all).
MAX_PROBLEM_LINES = 40


def grouped_problem_lines(problems: list[Problem], max_lines: int = MAX_PROBLEM_LINES,
                          examples: int = 3) -> list[str]:
    """Problems for people: files with the same message grouped into one line naming a few of them,
    the others one line each, in the order first seen; at most ``max_lines`` lines (the last says how
    many more there are). ``Dataset.problems`` keeps every one (``summary --json``, ``--problems-file``)."""
    by_message: dict[str, list[Problem]] = {}
    for problem in problems:
        by_message.setdefault(problem.message, []).append(problem)
    lines: list[str] = []
    for message, group in by_message.items():
        if len(group) >= GROUP_AT:
            names = ", ".join(shown(p.path.name) for p in group[:examples])
            lines.append(f"{len(group):,} files: {message}, e.g. {names} (and {len(group) - examples:,} more)")
        else:
            lines.extend(str(p) for p in group)
    if len(lines) > max_lines:
        rest = len(lines) - (max_lines - 1)
        lines = [*lines[: max_lines - 1], f"... and {rest:,} more lines like these (summary --problems-file FILE "
                                          "writes every problem)"]
    return lines


def unlabelled_line(count: int) -> str:
    """How every summary says how many pictures have no label file (and what that means)."""
    pictures = "picture" if count == 1 else "pictures"
    return f"{count} {pictures} without a label file, counted as no face"


def several_faces_line(count: int, face_boxes: int) -> str:
    """How a summary says how many pictures show several faces (and what each kind of model learns)."""
    pictures = "picture shows" if count == 1 else "pictures show"
    return (f"{count} {pictures} several faces ({face_boxes} face boxes in all): a multi-face model learns "
            "every face, a single-face model the largest of each picture")


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


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a training run: the ``config.json`` that every run writes first.

    Such a folder is never read as pictures or labels (``--out`` pointed into the dataset): its
    losses.png, pr_curve.png, prediction grids and config/metrics JSON are the run's, not the user's.
    """
    try:
        document = read_json(folder / "config.json", max_bytes=2**24)
    except ValueError:  # training.core.inputs.InputError: missing, a named pipe, not JSON...
        return False
    return isinstance(document, dict) and isinstance(document.get("config"), dict) and "shapes" not in document


def _visible_files(folder: Path) -> list[Path]:
    """The files of a folder that may be pictures or labels: not hidden; none in a run folder."""
    if not folder.is_dir() or is_run_folder(folder):
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


UNDECODABLE_NAME = ("its file name is not valid UTF-8 text (a name from another system's encoding): labels "
                    "cannot name it; rename the picture")


def _run_folder_note(folder: Path) -> Problem:
    return Problem(folder, "holds a training run (its config.json): none of its files is read as a picture or "
                           "a label; keep run folders (--out) outside the dataset")


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
        if has_undecodable_name(path.name):
            report(Problem(path, UNDECODABLE_NAME))
            continue
        if path.stem in pictures:
            report(Problem(path, f"another picture has the same name ({pictures[path.stem].name}); "
                                 "labels pair with pictures by name, so this one is skipped"))
            continue
        pictures[path.stem] = path

    labels: dict[str, Path] = {}
    for folder in dict.fromkeys((labels_dir, images_dir)):  # the labels folder wins over a JSON beside
        for path in _visible_files(folder):
            if path.suffix.lower() == ".json" and not has_undecodable_name(path.name):
                labels.setdefault(path.stem, path)
    return pictures, labels, picture_count


def _read_folder(
    images_dir: Path, labels_dir: Path, report: Callable[[Problem], None], warn: Callable[[Problem], None]
) -> tuple[list[Sample], int]:
    """Samples of one folder of pictures (labels in ``labels_dir`` or beside them); and how many pictures.

    Every picture's pixel data is checked (:func:`check_picture`), so training never meets a damaged one.
    """
    from training.data.formats.labelme import read_faces  # labelme builds on this module (its folder reader)

    pictures, labels, picture_count = _find_pictures(images_dir, labels_dir, report)
    for folder in dict.fromkeys((images_dir, labels_dir)):
        if is_run_folder(folder):
            warn(_run_folder_note(folder))
    for stem, json_path in labels.items():
        if stem not in pictures:
            report(Problem(json_path, f"no picture for this label: expected {stem}.jpg (or .jpeg, .png, .bmp) "
                                      f"in {images_dir}"))

    samples = []
    for stem, image_path in pictures.items():
        label_path = labels.get(stem)
        try:
            width, height = check_picture(image_path)
            boxes = () if label_path is None else read_faces(label_path, width, height)
        except DataError as exc:
            problem = Problem(exc.path, exc.message)
        else:  # several faces: all kept (Dataset.several_faces_notes says what a single-face model uses)
            samples.append(Sample(image_path, label_path, bool(boxes), boxes[0] if boxes else NO_BOX, width, height,
                                  boxes))
            continue
        report(problem)  # outside the except: a strict DataError should not chain onto the first one
    return samples, picture_count


def detect_layout(root: Path) -> str:
    """"split", "flat" or "beside", from the folders present (a run folder named like a split is not one)."""
    if any((root / name).is_dir() and not is_run_folder(root / name) for name in SPLITS):
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


def _no_pictures_error(root: Path, layout: str) -> DataError:
    runs = [str(images) for _, images, _ in _layout_folders(root, layout) if is_run_folder(images)]
    hint = f" ({', '.join(runs)} holds a training run, and run folders are not read)" if runs else ""
    return DataError(
        root,
        f"no pictures found{hint}: expected train/val/test folders, images/ + labels/ folders, or "
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
    layout = detect_layout(root)
    for _split, images_dir, labels_dir in _layout_folders(root, layout):
        pictures, labels, count = _find_pictures(images_dir, labels_dir, problems.append)
        picture_count += count
        pairs.extend((path, labels.get(stem) or label_path_for(path)) for stem, path in pictures.items())
    if picture_count == 0:
        raise _no_pictures_error(root, layout)
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
    :class:`DataError`. Every picture is checked down to its pixel data, so what is returned can be
    trained on. Files that are used but deserve a look (a run folder inside the dataset) are listed
    in ``Dataset.warnings``; a label with several faces is not one of them (every face is kept:
    ``Dataset.several_faces_notes`` is what a single-face model warns with). ``val_fraction`` and
    ``test_fraction`` only apply to flat and beside layouts.
    """
    root = Path(root)
    _require_dataset_folder(root)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction + test_fraction must be in [0, 1), got {val_fraction} + {test_fraction}")

    problems: list[Problem] = []
    notes: list[Problem] = []

    def report(problem: Problem) -> None:
        if strict:
            raise DataError(problem.path, problem.message)
        problems.append(problem)

    layout = detect_layout(root)
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    picture_count = 0
    for split, images_dir, labels_dir in _layout_folders(root, layout):
        samples, count = _read_folder(images_dir, labels_dir, report, notes.append)
        picture_count += count
        if split is not None:
            splits[split] = samples
        else:
            for sample in samples:
                splits[split_of(sample.image_path.stem, val_fraction, test_fraction)].append(sample)
    if picture_count == 0:
        raise _no_pictures_error(root, layout)
    return Dataset(root=root, layout=layout, splits=splits, problems=problems, warnings=notes)

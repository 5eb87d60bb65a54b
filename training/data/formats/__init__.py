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
picture or an unreadable file stop the conversion with a :class:`~training.data.errors.DataError` that names the
file. The result is written into a temporary folder beside the destination and renamed into place at the
end, so a failed conversion leaves no half-written dataset.

One module per format (``labelme``, ``coco``, ``yolo``, ``voc``, ``wider``) holds its reader, its writer
and the evidence :func:`detect_format` looks for; ``common`` holds what they share. This module is the
door: :func:`detect_format`, :func:`read_dataset` and :func:`convert`.

No TensorFlow here: ``facetracker-train convert`` answers at once.
"""

from __future__ import annotations

from pathlib import Path

from training.core.files import staging_folder
from training.data.dataset import SPLITS
from training.data.errors import DataError
from training.data.formats.coco import _coco_evidence, read_coco, write_coco_dataset
from training.data.formats.common import (
    FORMATS,
    READ_FORMATS,
    Conversion,
    LabelledPicture,
    _files,
    _json_document,
    _Reading,
    _split_folders,
)
from training.data.formats.labelme import _labelme_evidence, read_labelme, write_labelme_dataset
from training.data.formats.voc import _voc_evidence, read_voc, write_voc_dataset
from training.data.formats.wider import _wider_evidence, read_wider
from training.data.formats.yolo import _yolo_evidence, read_yolo, write_yolo_dataset

__all__ = ["FORMATS", "READERS", "READ_FORMATS", "WRITERS", "Conversion", "LabelledPicture", "convert",
           "detect_format", "read_dataset"]


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


READERS = {"labelme": read_labelme, "coco": read_coco, "yolo": read_yolo, "voc": read_voc, "wider": read_wider}
WRITERS = {"labelme": write_labelme_dataset, "coco": write_coco_dataset, "yolo": write_yolo_dataset,
           "voc": write_voc_dataset}


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

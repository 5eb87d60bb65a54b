"""Kept frames: live frames the model got wrong or was unsure about, saved into the dataset with its boxes.

The Detect tab keeps a frame when the user presses K ("Keep frame") or, in the optional uncertain mode,
when the model was unsure (``desktop.kept_frames``). Each kept frame is a JPEG in the dataset plus a
labelme JSON holding the model's boxes as *unreviewed suggestions*, exactly as "Suggest all" writes them
(``flags.suggested`` and ``suggestedBy``, see :mod:`training.data.formats.labelme`), so the Label tab shows them to
accept or correct, and ``facetracker-train --from MODEL`` fine-tunes on them with the rest of the dataset.

How a kept frame is recognised: by its file name, ``kept-<date>-<time>-<microseconds>-<reason>.jpg``
(:func:`is_kept`). The name survives every later edit (the Label tab rewrites the JSON when a person
accepts or corrects it, labelme may too), so a fine-tune can always tell the kept frames from the others
and its verdict measures them apart (:mod:`training.engine.finetune`). Until it is reviewed the JSON also says why
the frame was kept (``keptFrom``: reason, model, best score, time); reviewing replaces it, the name stays.

Where they go: where a new picture of the dataset goes (:func:`kept_folders`): ``DATASET/images/`` (labels
in ``DATASET/labels/``) for a flat or new dataset, the ``train`` split of a train/val/test one (a kept frame
is there to be learned from), beside the pictures for a dataset of pictures with their JSON beside them.
A flat dataset splits them by name like every other picture, so some land in val and test: the fine-tune's
verdict measures those, which it did not train on.

Plain Python (NumPy, OpenCV): no Qt, no TensorFlow; the app writes them off the UI thread.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from training.core.boxes import Box
from training.core.files import atomic_write_bytes, atomic_write_text
from training.data.dataset import SPLITS, Sample, detect_layout
from training.data.formats.labelme import SUGGESTED_BY_KEY, SUGGESTED_FLAG, SuggestionMark, labelme_document
from training.data.pictures import IMAGE_EXTENSIONS

KEPT_PREFIX = "kept-"
KEPT_FLAG = "kept"  # labelme image flag beside "suggested", until the label is reviewed
KEPT_FROM_KEY = "keptFrom"  # top-level: {"reason", "model", "score", "time"}
#: Why a frame was kept (the last word of its name) and how the app says it.
REASONS = {
    "key": "kept by you",
    "unsure": "the model was unsure",
    "track": "a face's track was lost for a frame",
}
JPEG_QUALITY = 95  # the Collect tab's: a kept frame is a training picture like the others
#: The model's boxes from a little under its threshold are written as suggestions (a face the model nearly
#: missed is the one to correct; a wrong box is deleted with one key in the Label tab), never from under
#: SUGGEST_MIN_SCORE. Measured on new scenes (benchmarks/bench_keep_loop.py), a weak model's boxes further under
#: its threshold were all on no face: more to delete, nothing gained.
SUGGEST_BELOW_THRESHOLD = 0.1
SUGGEST_MIN_SCORE = 0.25


def suggest_from(threshold: float) -> float:
    """The score from which a kept frame suggests the model's boxes, for the live threshold."""
    return max(SUGGEST_MIN_SCORE, float(threshold) - SUGGEST_BELOW_THRESHOLD)


class KeepError(OSError):
    """A kept frame that could not be written; the message names the file and why."""


@dataclass(frozen=True)
class KeptFrame:
    """One kept frame as written: the picture, its label, the suggested boxes (pixels) with their scores."""

    image_path: Path
    label_path: Path
    boxes: tuple[Box, ...]
    scores: tuple[float | None, ...]
    reason: str
    bytes_written: int


def is_kept(path: str | os.PathLike) -> bool:
    """Whether a picture (or its label) is a kept frame: its file name starts with ``kept-``."""
    return Path(path).name.startswith(KEPT_PREFIX)


def kept_name(reason: str, now: datetime | None = None) -> str:
    """``kept-YYYYmmdd-HHMMSS-ffffff-<reason>.jpg``: sorts by time (so the kept frames come one after
    another in the Label tab's list) and never repeats within one process."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}; expected one of {', '.join(REASONS)}")
    return f"{KEPT_PREFIX}{(now or datetime.now()):%Y%m%d-%H%M%S-%f}-{reason}.jpg"


def kept_folders(dataset: str | os.PathLike) -> tuple[Path, Path]:
    """(pictures folder, labels folder) where a dataset's new kept frames go (see the module docstring).

    The same folders ``training.data.dataset`` reads that layout's pictures and labels from, so a kept frame is
    read back with its label whatever the layout.
    """
    root = Path(dataset)
    layout = detect_layout(root) if root.is_dir() else "flat"
    folder = root / SPLITS[0] if layout == "split" else root  # train/ of a train/val/test dataset
    if layout == "beside" and _has_pictures(root) and not (root / "images").is_dir():
        return root, root  # pictures with their labelme JSON beside them
    if (folder / "images").is_dir() or not _has_pictures(folder):
        images = folder / "images"
        labels = folder / "labels" if (folder / "labels").is_dir() or not images.is_dir() or layout == "flat" \
            else images
        return images, labels
    return folder, folder / "labels" if (folder / "labels").is_dir() else folder


def _has_pictures(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir() if p.is_file())
    except OSError:
        return False


def kept_usage(dataset: str | os.PathLike) -> tuple[int, int]:
    """(files, bytes) of the kept frames already in a dataset's kept-frames folder, labels included."""
    images, labels = kept_folders(dataset)
    files = total = 0
    for folder in dict.fromkeys((images, labels)):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(KEPT_PREFIX) and entry.is_file(follow_symlinks=False):
                files += entry.name.lower().endswith(IMAGE_EXTENSIONS)
                total += entry.stat(follow_symlinks=False).st_size
    return files, total


def free_bytes(dataset: str | os.PathLike) -> int:
    """Free space on the disk that holds the dataset (its nearest existing parent); 0 when unknown."""
    path = Path(dataset).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def suggestions(detections: Iterable[tuple[float | None, Sequence[float]]], width: int, height: int,
                min_score: float = SUGGEST_MIN_SCORE) -> tuple[list[Box], list[float | None]]:
    """The boxes to suggest (kept inside the picture, at least 2 px a side) and their scores, best first:
    those scoring from ``min_score``, and those without a score (a face the tracker drew through a frame
    the detector missed it in), last."""
    kept: list[tuple[Box, float | None]] = []
    for score, box in detections:
        if score is not None and float(score) < min_score:
            continue
        x1, x2 = sorted((float(box[0]), float(box[2])))
        y1, y2 = sorted((float(box[1]), float(box[3])))
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            kept.append(((round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)),
                         None if score is None else float(score)))
    kept.sort(key=lambda item: (item[1] is None, -(item[1] or 0.0)))
    return [box for box, _ in kept], [score for _, score in kept]


def write_kept_frame(
    frame_bgr: np.ndarray,
    dataset: str | os.PathLike,
    detections: Iterable[tuple[float | None, Sequence[float]]],
    *,
    reason: str,
    model_name: str,
    min_score: float = SUGGEST_MIN_SCORE,
    now: datetime | None = None,
) -> KeptFrame:
    """Save a live frame into ``dataset`` with ``detections`` (score, box in pixels; score None for a box
    the tracker drew through a miss) from ``min_score`` as unreviewed suggestions; slow (JPEG encoding, two
    fsynced writes): call it off the UI thread.

    The picture is written first, then its label, each atomically (``training.core.files``): a write cut short
    leaves at worst a picture without a label, which the Label tab offers to label like any other.

    Raises:
        KeepError: the picture could not be encoded or a file could not be written (named).
    """
    now = now or datetime.now()
    images, labels = kept_folders(dataset)
    name = kept_name(reason, now)
    image_path = images / name
    label_path = labels / f"{Path(name).stem}.json"
    height, width = frame_bgr.shape[:2]
    boxes, scores = suggestions(detections, width, height, min_score)
    ok, encoded = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise KeepError(f"{image_path}: could not encode the frame as JPEG (shape {frame_bgr.shape})")
    data = encoded.tobytes()
    scored = [score for score in scores if score is not None]
    best = max(scored) if scored else None
    mark = SuggestionMark(model_name, None if best is None else round(best, 4))
    document = labelme_document(label_path, image_path, boxes or None, width, height)
    document["flags"] = {SUGGESTED_FLAG: True, KEPT_FLAG: True}
    document[SUGGESTED_BY_KEY] = {"engine": mark.engine, "score": mark.score}
    document[KEPT_FROM_KEY] = {"reason": reason, "why": REASONS[reason], "model": model_name,
                               "score": mark.score, "time": now.isoformat(timespec="seconds")}
    for shape, score in zip(document["shapes"], scores, strict=True):
        shape["description"] = (f"suggested by {model_name}: tracked through a frame it missed" if score is None
                                else f"suggested by {SuggestionMark(model_name, round(score, 4))}")
    text = json.dumps(document, indent=2)
    for path, write in ((image_path, lambda: atomic_write_bytes(image_path, data)),
                        (label_path, lambda: atomic_write_text(label_path, text))):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write()
        except OSError as exc:
            raise KeepError(f"{path}: could not write the kept frame: {exc.strerror or exc}") from exc
    return KeptFrame(image_path, label_path, tuple(boxes), tuple(scores), reason,
                     len(data) + len(text.encode("utf-8")))


def kept_samples(samples: Iterable[Sample], *, reviewed: bool | None = None) -> list[Sample]:
    """The kept frames among ``samples``; ``reviewed`` True: only those a person has accepted or corrected
    (their label is a truth to measure against), False: only those still suggested, None: all."""
    from training.data.formats.labelme import read_suggestion_mark

    chosen = []
    for sample in samples:
        if not is_kept(sample.image_path):
            continue
        if reviewed is not None:
            suggested = sample.label_path is not None and read_suggestion_mark(sample.label_path) is not None
            if suggested == reviewed:
                continue
        chosen.append(sample)
    return chosen


__all__ = [
    "JPEG_QUALITY", "KEPT_FLAG", "KEPT_FROM_KEY", "KEPT_PREFIX", "KeepError", "KeptFrame", "REASONS",
    "SUGGEST_BELOW_THRESHOLD", "SUGGEST_MIN_SCORE", "free_bytes", "suggest_from", "is_kept", "kept_folders", "kept_name", "kept_samples", "kept_usage",
    "suggestions", "write_kept_frame",
]

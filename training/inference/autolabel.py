"""Labels nearly for free: a pretrained face detector (MTCNN or BlazeFace) suggests the face boxes of every picture.

Labelling 90 pictures by hand is the tutorial's slowest step. MTCNN (the ``mtcnn`` package: MIT
licensed, its weights inside the wheel, so nothing is downloaded) finds real faces with F1 about
0.99, so most suggestions only need a glance. MediaPipe's BlazeFace (:class:`BlazeFaceFinder`, weights in
``assets/blazeface/``) is some 20 times faster and is the network a new run starts from.
:func:`autolabel_dataset` writes a labelme JSON for every picture that has none, with a rectangle for every
face found; each one is marked as suggested (top-level ``flags: {"suggested": true}``, the engine and score
in ``suggestedBy`` and in the shape's ``description``) until a person accepts or corrects it in the Label
tab, or in labelme by unticking the flag.

No Qt here, and no TensorFlow until a finder is built: the Label tab reads the marks cheaply.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.core.boxes import clipped
from training.core.detection import Detection, FaceDetector
from training.core.preprocess import as_rgb
from training.data.dataset import picture_label_paths
from training.data.errors import DataError, Problem
from training.data.formats.labelme import SuggestionMark, read_suggestion_mark, write_suggested_label
from training.data.pictures import image_size, load_image
from training.inference.classic import CLASSIC_LABEL

MTCNN_LABEL = "face (MTCNN)"
MTCNN_NAME = "MTCNN"
MTCNN_DEVICE = "CPU (MTCNN, pretrained)"
BLAZEFACE_LABEL = "face (BlazeFace)"
BLAZEFACE_NAME = "BlazeFace"  # the suggested-by mark's engine
DEFAULT_MIN_SCORE = 0.9
PROGRESS_EVERY = 10               # the command line prints a progress line per this many pictures


def find_faces(finder: FaceDetector, frame_bgr: np.ndarray) -> list[Detection]:
    """Every face a finder (any :class:`~training.core.detection.FaceDetector`) reports by its own rule, most
    confident first: its ``detect_all`` (a single-face model: its one face, when it is one)."""
    return sorted(finder.detect_all(frame_bgr), key=lambda d: -float(d.score))


class MtcnnUnavailableError(ImportError):
    """The ``mtcnn`` package cannot be imported; the message says how to install it."""


def mtcnn_available() -> bool:
    """Whether the ``mtcnn`` package is installed (looked up without importing it or TensorFlow)."""
    try:
        return importlib.util.find_spec("mtcnn") is not None
    except (ImportError, ValueError):
        return False


class PretrainedFaceFinder:
    """MTCNN, a pretrained face detector, as a :class:`~training.core.detection.FaceDetector`.

    ``detect`` answers the single face a person would label: the most confident one, and of faces
    about as confident (within ``tie_margin``) the biggest, i.e. the user in front of the camera
    rather than a face on a poster behind. Safe to share between threads (one call at a time).

    Args:
        min_face_fraction: faces smaller than this share of the frame's shorter side are ignored, as
            the classic finder does: the user at a webcam is bigger, while MTCNN's rare false faces
            on textures (grass, gravel: 20 pixels, scores up to 0.91) are that small.
        max_side: pictures larger than this are shrunk first (MTCNN's cost grows with the pixels;
            a phone photo takes seconds at full size, and a face in it is large anyway).
        tie_margin: confidences closer than this count as equal when choosing the biggest face.
        device: TensorFlow device MTCNN runs on.

    MTCNN's own ``min_face_size`` stays at its default of 20: mtcnn 1.0.0 finds no face at all
    with a larger one (its image pyramid then runs below its 12-pixel window and the error is
    swallowed as "no faces").

    Raises:
        MtcnnUnavailableError: the ``mtcnn`` package is not installed (or cannot be loaded).
    """

    label = MTCNN_LABEL
    name = MTCNN_NAME
    description = "MTCNN, a pretrained face detector"
    device = MTCNN_DEVICE
    multi_face = True
    path = None
    threshold = DEFAULT_MIN_SCORE  # MTCNN's confidence from which a face is written as a label

    def __init__(self, *, min_face_fraction: float = 0.1, max_side: int = 640, tie_margin: float = 0.05,
                 device: str = "CPU:0") -> None:
        try:
            import importlib.resources  # noqa: F401 - mtcnn finds its weights with it but does not import it

            from mtcnn import MTCNN
        except ImportError as exc:
            raise MtcnnUnavailableError(
                f"the pretrained face finder needs the mtcnn package ({exc}): pip install mtcnn"
            ) from exc
        self._mtcnn = MTCNN(device=device)
        self.min_face_fraction = float(min_face_fraction)
        self.max_side = int(max_side)
        self.tie_margin = float(tie_margin)
        self._lock = threading.Lock()

    def detect(self, frame_bgr: np.ndarray) -> Detection | None:
        """The face to label as a Detection (score: MTCNN's confidence, box in the frame's pixels), or None."""
        faces = self.detect_all(frame_bgr)
        if not faces:
            return None
        best = max(face.score for face in faces)
        close = [face for face in faces if face.score >= best - self.tie_margin]
        return max(close, key=lambda face: (face.box[2] - face.box[0]) * (face.box[3] - face.box[1]))

    def detect_all(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Every face MTCNN finds (scoring above ``threshold`` when one is given), most confident first."""
        faces = self._faces(frame_bgr)
        return faces if threshold is None else [face for face in faces if face.is_face(threshold)]

    def _faces(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Every face MTCNN finds, most confident first."""
        height, width = frame_bgr.shape[:2]
        if height < 12 or width < 12:  # smaller than MTCNN's smallest window
            return []
        scale = min(1.0, self.max_side / max(width, height))
        small = frame_bgr if scale == 1.0 else cv2.resize(
            frame_bgr, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        rgb = as_rgb(small)  # MTCNN was trained on RGB; OpenCV frames are BGR
        with self._lock:
            found = self._mtcnn.detect_faces(rgb)
        min_side = self.min_face_fraction * min(width, height)
        faces = []
        for face in found:
            x, y, w, h = (float(v) / scale for v in face["box"])  # MTCNN's boxes are [x, y, width, height]
            box = clipped((x, y, x + w, y + h), width, height)
            if max(box[2] - box[0], box[3] - box[1]) >= min_side and min(box[2] - box[0], box[3] - box[1]) >= 1:
                faces.append(Detection(score=float(face["confidence"]), box=box))
        return sorted(faces, key=lambda face: -face.score)


class BlazeFaceFinder:
    """MediaPipe's BlazeFace (:func:`training.inference.pretrained.pretrained_detector`) as a suggestion engine
    (a :class:`~training.core.detection.FaceDetector`), boxes clipped to the picture.

    About 10 ms a picture on a CPU against MTCNN's ~200 ms, so "Suggest all" over a few hundred pictures
    takes seconds; its boxes are those of the network every new run starts from. MTCNN is the surer on
    small, far-away faces. Safe to share between threads (one call at a time).

    Args:
        threshold: the score from which a cell is a face (default: the pretrained model's own, 0.6).

    Raises:
        training.model.backbones.WeightsUnavailableError: its weights (``assets/blazeface/``) are missing or damaged.
    """

    label = BLAZEFACE_LABEL
    name = BLAZEFACE_NAME
    description = "BlazeFace, MediaPipe's pretrained face detector"
    multi_face = True
    path = None

    def __init__(self, threshold: float | None = None) -> None:
        from training.inference.pretrained import pretrained_detector
        from training.model.backbones import WeightsUnavailableError

        try:
            self._detector = pretrained_detector(threshold)
        except WeightsUnavailableError as exc:  # say which file is missing, without the trainer's advice
            raise WeightsUnavailableError(str(exc.__cause__ or exc)) from exc
        self.threshold = float(self._detector.threshold)
        self.device = f"{self._detector.device} (BlazeFace, pretrained)"
        self._lock = threading.Lock()

    def detect(self, frame_bgr: np.ndarray) -> Detection | None:
        """The most confident face, or None."""
        faces = self.detect_all(frame_bgr)
        return faces[0] if faces else None

    def detect_all(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Every face over ``threshold`` (default: its own), most confident first, boxes in the frame's pixels."""
        height, width = frame_bgr.shape[:2]
        with self._lock:
            found = self._detector.detect_all(frame_bgr, threshold=self.threshold if threshold is None else threshold)
        faces = [Detection(d.score, clipped(d.box, width, height)) for d in found]
        return sorted((f for f in faces if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= 1),
                      key=lambda face: -face.score)


#: ``autolabel --engine`` choices and the finder each one builds (MTCNN first: the default).
ENGINES: dict[str, type] = {"mtcnn": PretrainedFaceFinder, "blazeface": BlazeFaceFinder}
DEFAULT_ENGINE = "mtcnn"


def make_finder(engine: str = DEFAULT_ENGINE) -> FaceDetector:
    """The finder an ``--engine`` name stands for (slow: loads TensorFlow and the network).

    Raises:
        ValueError: an unknown engine. MtcnnUnavailableError / WeightsUnavailableError: it cannot load.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return ENGINES[engine]()


def min_score_of(finder: FaceDetector) -> float:
    """The score from which a finder's face is written as a label: its own threshold (MTCNN: 0.9, BlazeFace: 0.6)."""
    return float(finder.threshold)


def finder_name(finder: FaceDetector) -> str:
    """How a finder is named to people: "MTCNN", "the classic finder", "your model"..."""
    return str(finder.name)


def _has_score(finder: FaceDetector) -> bool:
    """The classic finder answers 1.0 for every face: such a score means nothing to show."""
    return finder.label != CLASSIC_LABEL


# ------------------------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class SuggestedLabel:
    """One label written: the picture, its JSON, every face box in pixels (empty: no face) and the best score."""

    image_path: Path
    label_path: Path
    boxes: tuple[tuple[float, float, float, float], ...]
    score: float | None

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """The most confident face; None without one."""
        return self.boxes[0] if self.boxes else None


@dataclass
class AutolabelReport:
    """What :func:`autolabel_dataset` did: labels written, labels kept, pictures skipped and why."""

    root: Path
    engine: str
    pictures: int = 0                 # pictures found
    to_label: int = 0                 # of them, those without a label (all, with overwrite)
    written: list[SuggestedLabel] = field(default_factory=list)
    kept: int = 0                     # existing labels left as they were
    skipped: list[Problem] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def faces(self) -> int:
        """Pictures labelled with at least one face."""
        return sum(1 for label in self.written if label.boxes)

    @property
    def face_boxes(self) -> int:
        """Faces written in all (several per picture)."""
        return sum(len(label.boxes) for label in self.written)

    @property
    def no_faces(self) -> int:
        return len(self.written) - self.faces

    def summary_text(self) -> str:
        """"Labelled 37 pictures (29 with a face, 8 without), kept 12 existing labels, skipped 1 unreadable: ...";
        with several faces on a picture, "(29 with a face: 41 faces, 8 without)"."""
        faces = f"{self.faces} with a face" + (f": {self.face_boxes} faces" if self.face_boxes != self.faces else "")
        done = (
            f"Labelled {len(self.written)} {_plural(len(self.written), 'picture')} "
            f"({faces}, {self.no_faces} without), "
            f"kept {self.kept} existing {_plural(self.kept, 'label')}, skipped {len(self.skipped)} unreadable"
        )
        if self.cancelled:
            done = f"Stopped after {len(self.written) + len(self.skipped)} of {self.to_label} pictures. " + done
        if not self.skipped:
            return done + "."
        return done + ":\n" + "\n".join(f"  {self._shown(p.path)}: {p.message}" for p in self.skipped)

    def _shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def autolabel_dataset(
    data: Path | str,
    *,
    finder: FaceDetector | None = None,
    overwrite: bool = False,
    min_score: float | None = None,
    on_progress: Callable[[int, int, Path], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AutolabelReport:
    """Write a suggested labelme label for every picture of a dataset folder that has none.

    Finds the pictures as training does (any of the three layouts, :func:`training.data.dataset.picture_label_paths`)
    and asks ``finder`` (default: a new :class:`PretrainedFaceFinder`) for each picture without a
    label: every face scoring at least ``min_score`` (default: the finder's own, :func:`min_score_of`) becomes
    one of the label's rectangles (all the faces :func:`find_faces` gives), a picture without one a label with
    no shapes. Existing labels are kept unless ``overwrite``. Unreadable pictures are skipped and
    listed in the report. ``on_progress(done, total, picture)`` follows each picture to label;
    ``should_stop()`` is asked before each one, and True ends the run early (labels written so far stay).

    Raises:
        DataError: the folder is missing or holds no pictures.
        MtcnnUnavailableError: no ``finder`` given and the mtcnn package is not installed.
    """
    started = time.perf_counter()
    root = Path(data)
    pairs, problems = picture_label_paths(root)
    finder = finder if finder is not None else PretrainedFaceFinder()
    engine, scored = finder_name(finder), _has_score(finder)
    min_score = min_score_of(finder) if min_score is None else float(min_score)
    report = AutolabelReport(root=root, engine=engine, pictures=len(pairs) + len(problems), skipped=list(problems))
    todo = []
    for image_path, label_path in pairs:
        if label_path.exists() and not overwrite:
            report.kept += 1
        else:
            todo.append((image_path, label_path))
    report.to_label = len(todo)

    for done, (image_path, label_path) in enumerate(todo, start=1):
        if should_stop is not None and should_stop():
            report.cancelled = True
            break
        try:
            width, height = image_size(image_path)  # catches truncated JPEGs that decode half grey
            image = load_image(image_path)
        except DataError as exc:
            report.skipped.append(Problem(exc.path, exc.message))
        else:
            try:
                found = find_faces(finder, image)
            except Exception as exc:  # one odd picture must not end the run
                report.skipped.append(Problem(image_path, f"the face finder failed on it: {exc or type(exc).__name__}"))
            else:
                score = float(found[0].score) if found and scored else None
                faces = [(_inside(d.box, width, height), d.score) for d in found if d.score >= min_score]
                faces = [(box, s) for box, s in faces if box is not None]
                boxes = tuple(box for box, _ in faces)
                mark = SuggestionMark(engine, round(score, 4) if score is not None else None)
                try:
                    written = write_suggested_label(
                        label_path, image_path, list(boxes) or None, width, height, mark, overwrite=overwrite,
                        scores=[round(float(s), 4) for _, s in faces] if scored else None)
                except OSError as exc:
                    report.skipped.append(Problem(label_path, f"cannot write the label: {exc.strerror or exc}"))
                else:
                    if written:
                        report.written.append(SuggestedLabel(image_path, label_path, boxes, score))
                    else:
                        report.kept += 1  # a person labelled it meanwhile
        if on_progress is not None:
            on_progress(done, len(todo), image_path)
    report.seconds = time.perf_counter() - started
    return report


def _inside(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float] | None:
    """The box kept inside the picture; None when less than a pixel of it is left."""
    x1, x2 = sorted((float(box[0]), float(box[2])))
    y1, y2 = sorted((float(box[1]), float(box[3])))
    x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))


# ------------------------------------------------------------------------------------------- measuring


# ------------------------------------------------------------------------------------------- command line


def _score(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_autolabel_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``autolabel`` command to ``facetracker-train``'s subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "autolabel",
        help="suggest the face boxes of every unlabelled picture (MTCNN or BlazeFace, pretrained face detectors)",
        description="Write a labelme label for every picture of a dataset that has none: every face a "
        "pretrained detector (MTCNN, or BlazeFace with --engine blazeface) finds, or no face. The labels are marked as suggested until you "
        "review them in the app's Label tab (or untick the \"suggested\" flag in labelme).",
    )
    parser.add_argument("data", help="dataset folder (any layout: train/val/test, images/ + labels/, or JSON beside)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing labels too (default: keep them)")
    parser.add_argument("--engine", choices=tuple(ENGINES), default=DEFAULT_ENGINE,
                        help="the pretrained face detector that suggests: mtcnn (default: the surest, also on small "
                        "far-away faces; ~200 ms a picture) or blazeface (MediaPipe's BlazeFace, the network a new "
                        "run starts from; ~10 ms a picture). The labels name it in their \"suggested by\" mark")
    parser.add_argument("--min-score", type=_score, default=None, metavar="S",
                        help=f"label a face only when the engine's confidence is at least this (default: "
                        f"{DEFAULT_MIN_SCORE} for mtcnn, its own 0.6 for blazeface)")
    return parser


def run_autolabel(args: argparse.Namespace) -> int:
    """The ``autolabel`` command: progress lines on stderr, the summary on stdout; Ctrl-C stops cleanly.

    A bad dataset folder raises DataError, for ``facetracker-train`` to report in one line (exit code 1).
    """
    picture_label_paths(args.data)  # a wrong folder is said at once, before TensorFlow and the engine load
    engine = getattr(args, "engine", DEFAULT_ENGINE)
    try:
        finder = make_finder(engine)
    except Exception as exc:  # MtcnnUnavailableError, WeightsUnavailableError (BlazeFace's weights missing)
        print(f"facetracker-train autolabel: error: {engine} cannot be loaded: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"Looking for faces with {finder.description} in {args.data} ...", file=sys.stderr, flush=True)
    interrupted = threading.Event()

    def progress(done: int, total: int, path: Path) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            print(f"  {done}/{total} pictures ({path.name})", file=sys.stderr, flush=True)

    with _stop_on_interrupt(interrupted):
        report = autolabel_dataset(args.data, finder=finder, overwrite=args.overwrite, min_score=args.min_score,
                                   on_progress=progress, should_stop=interrupted.is_set)
    print(report.summary_text())
    if report.written:
        print("Review them in the app's Label tab: they are marked as suggested until you accept or correct them.")
    print(f"Results saved to {args.data}")
    return 130 if report.cancelled else 0


class _stop_on_interrupt:
    """Ctrl-C (or SIGTERM) sets ``event`` instead of raising, so the run stops between two pictures."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _stop_on_interrupt:
        if threading.current_thread() is threading.main_thread():
            for name in ("SIGINT", "SIGTERM"):
                number = getattr(signal, name, None)
                if number is not None:
                    self._previous[number] = signal.signal(number, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)


__all__ = [
    "AutolabelReport", "BlazeFaceFinder", "DEFAULT_ENGINE", "DEFAULT_MIN_SCORE", "ENGINES", "MtcnnUnavailableError",
    "PretrainedFaceFinder", "SuggestedLabel", "SuggestionMark", "add_autolabel_parser", "autolabel_dataset",
    "find_faces", "finder_name", "make_finder", "min_score_of", "mtcnn_available", "read_suggestion_mark",
    "run_autolabel", "write_suggested_label",
]

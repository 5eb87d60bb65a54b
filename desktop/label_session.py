"""The Label tab's state without Qt: the pictures, where the user is, the suggestions, what is saved.

``desktop.label_tab.LabelTab`` renders a :class:`LabelSession` and forwards the user's input to it,
napari's way (its ``components`` are plain models that views subscribe to): the session reads and
writes the dataset (``training.data.dataset``), moves pictures to the trash, keeps the suggestion engines'
rules and says what the canvas, the picture list and the progress line show. Threads, finders and
widgets stay in the tab; the rules are tested without Qt (tests/test_label_session.py).

A picture holds any number of face boxes. Every edit (add, move or resize, delete, accept a suggestion,
"no face") is written at once, and each picture keeps its own undo/redo history: a step restores the
label file's exact bytes as they were (a suggested label stays suggested, an unlabelled picture loses
the file it never had), so what is shown and what training reads never differ.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from desktop.observable import Emitter
from training.core import Box, Detection
from training.core import clamp_box as _clamp_box
from training.data import DataError, face_boxes_px, label_path_for
from training.inference import (
    BLAZEFACE_NAME,
    DEFAULT_MIN_SCORE,
    PRETRAINED_THRESHOLD,
    SuggestionMark,
    read_suggestion_mark,
)

FACE_THRESHOLD = 0.5  # the model's "face" score when it stores no threshold of its own
MIN_BOX_PX = 2.0  # a drag shorter than this is a click, not a box
REDRAW_IOU = 0.4  # a box drawn over a suggested box overlapping it this much replaces it (a correction)


class _Text(str, Enum):
    """A str Enum that prints as its value on every Python version ("face", not "LabelStatus.FACE")."""

    def __str__(self) -> str:
        return self.value


class LabelStatus(_Text):
    """What is known about a picture's label."""

    UNLABELLED = "unlabelled"
    FACE = "face"
    NO_FACE = "no face"
    BROKEN = "broken"


UNLABELLED, FACE, NO_FACE, BROKEN = LabelStatus.UNLABELLED, LabelStatus.FACE, LabelStatus.NO_FACE, LabelStatus.BROKEN
_STATUS_MARK = {UNLABELLED: "○", FACE: "●", NO_FACE: "∅", BROKEN: "⚠"}
_SUGGESTED_MARK = {FACE: "◐", NO_FACE: "◌"}  # labelled by "Suggest all", not reviewed yet


class Engine(_Text):
    """Who suggests face boxes."""

    MTCNN = "mtcnn"
    BLAZEFACE = "blazeface"
    MODEL = "model"
    CLASSIC = "classic"


MTCNN, BLAZEFACE, MODEL, CLASSIC = Engine.MTCNN, Engine.BLAZEFACE, Engine.MODEL, Engine.CLASSIC
# "suggested by ..."; BlazeFace's is also the mark "Suggest all" writes (training.inference.autolabel.BlazeFaceFinder.name)
ENGINE_NAMES = {MTCNN: "MTCNN", BLAZEFACE: BLAZEFACE_NAME, MODEL: "your model", CLASSIC: "the classic finder"}
_SCORED_ENGINES = (MTCNN, BLAZEFACE, MODEL)  # the classic finder's score is always 1.0: not shown
_PRETRAINED_ENGINES = (MTCNN, BLAZEFACE)  # those that can be unavailable (not installed, weights missing)
ENGINE_TIP = ("Who suggests the face boxes: MTCNN, a pretrained face detector (the default: the surest, small "
              "faces too; about 0.2 s a picture); BlazeFace, the pretrained detector a new run starts from "
              "(fast: about 10 ms a picture, but it misses more small or blurred faces); your trained model "
              "(to see how it does); or the classic LBP finder")


def clamp_box(box: Sequence[float], width: int, height: int) -> Box | None:
    """Order the corners and keep the box inside the picture; None when what is left is too small."""
    return _clamp_box(box, width, height, MIN_BOX_PX)


def capitalised(text: str) -> str:
    """The text with its first letter in capitals ("MTCNN found...", "Your model found...")."""
    return text[:1].upper() + text[1:]


def as_boxes(boxes: Any) -> tuple[Box, ...]:
    """None (no face), one (x1, y1, x2, y2) or a sequence of them, as a tuple of float boxes."""
    return tuple(tuple(float(v) for v in box) for box in face_boxes_px(boxes))


@dataclass
class LabelEntry:
    """One picture in the Label tab's list and what is known about its label."""

    image_path: Path
    label_path: Path
    status: LabelStatus
    boxes: tuple[Box, ...] = ()  # every face, in the picture's pixels, when status is FACE (None/one box: made a tuple)
    width: int = 0
    height: int = 0
    note: str = ""              # why a picture is broken, or why its old label was ignored
    suggested_by: SuggestionMark | None = None  # labelled by "Suggest all" and not reviewed yet

    def __post_init__(self) -> None:
        self.boxes = as_boxes(self.boxes)

    @property
    def box(self) -> Box | None:
        """The first face box (the largest in a label read from disk); None without a face."""
        return self.boxes[0] if self.boxes else None

    @property
    def face_count(self) -> int:
        return len(self.boxes) if self.status == FACE else 0

    @property
    def labelled(self) -> bool:
        return self.status in (FACE, NO_FACE)

    @property
    def unreviewed(self) -> bool:
        return self.labelled and self.suggested_by is not None


@dataclass(frozen=True)
class Suggestion:
    """What MTCNN, BlazeFace, the user's model or the classic finder proposes for a picture: every face it found."""

    boxes: tuple[Box, ...]  # () or None: it found no face; one box or several (made a tuple of boxes)
    score: float | None     # the best score; None where the engine has no meaningful score (the classic finder)
    source: str             # who suggested it: "MTCNN", "BlazeFace", "your model", "the classic finder"
    error: str = ""
    scores: tuple[float, ...] = ()  # each box's score (scored engines only)

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", as_boxes(self.boxes))
        object.__setattr__(self, "scores", tuple(float(s) for s in self.scores))

    @property
    def box(self) -> Box | None:
        """The first (most confident) face; None without one."""
        return self.boxes[0] if self.boxes else None


def make_suggestion(engine: Engine, detections: Any, detector: Any = None) -> Suggestion:
    """A finder's answer as a Suggestion of every face in it: those the model scores over its threshold,
    MTCNN over ``DEFAULT_MIN_SCORE``, BlazeFace from its own threshold, or all the classic finder finds. ``detections`` is a list of
    Detections (``detect_all``) or one Detection / None (``detect``)."""
    if detections is None:
        found: list[Detection] = []
    elif isinstance(detections, Detection):
        found = [detections]
    else:
        found = [d for d in detections if d is not None]
    found.sort(key=lambda d: -float(d.score))
    if engine == MODEL:
        threshold = detector.threshold if detector is not None else FACE_THRESHOLD
        faces = [d for d in found if d.is_face(threshold)]
    elif engine == MTCNN:
        faces = [d for d in found if d.score >= DEFAULT_MIN_SCORE]
    elif engine == BLAZEFACE:
        faces = [d for d in found if d.score >= PRETRAINED_THRESHOLD]
    else:
        faces = found
    scored = engine in _SCORED_ENGINES
    score = float(found[0].score) if found and scored else None
    return Suggestion(tuple(tuple(float(v) for v in d.box) for d in faces), score, ENGINE_NAMES[engine],
                      scores=tuple(float(d.score) for d in faces) if scored else ())


def _faces_text(count: int) -> str:
    return "1 face" if count == 1 else f"{count} faces"


def list_text(entry: LabelEntry) -> str:
    """The picture list's line: a mark for the status (another for an unreviewed label), the name, and
    how many faces when there are several."""
    mark = _SUGGESTED_MARK[entry.status] if entry.unreviewed else _STATUS_MARK[entry.status]
    faces = f"  ({_faces_text(entry.face_count)})" if entry.face_count > 1 else ""
    return f"{mark}  {entry.image_path.name}{faces}"


def list_tooltip(entry: LabelEntry) -> str:
    """The picture list's tooltip: the path, the status (how many faces, who suggested it) and any note."""
    status = _faces_text(entry.face_count) if entry.face_count > 1 else str(entry.status)
    if entry.unreviewed:
        status = f"{status}, suggested by {entry.suggested_by}, not reviewed"
    return f"{entry.image_path}\n{status}" + (f"\n{entry.note}" if entry.note else "")


def saved_text(entry: LabelEntry) -> str:
    """The status line once an edit of ``entry`` is written: "Saved x.json (2 faces)", "Saved x.json (no face)"."""
    faces = entry.face_count
    return f"Saved {entry.label_path.name} ({_faces_text(faces)})" if faces else f"Saved {entry.label_path.name} (no face)"


def history_text(what: str, entry: LabelEntry) -> str:
    """The status line after Undo or Redo (``what``: "Undone", "Redone") left ``entry`` as it is now."""
    if entry.status == UNLABELLED:
        return f"{what}: {entry.image_path.name} is unlabelled again"
    if entry.status == NO_FACE:
        return f"{what}: {entry.label_path.name} says no face"
    return f"{what}: {entry.label_path.name} has {_faces_text(entry.face_count)}"


def scan_dataset(root: Path) -> tuple[list[LabelEntry], list[str]]:
    """Every picture of a dataset with its label status, and the dataset's problems (file: message).

    Reads with ``training.data.dataset.load_dataset`` (one home for the format). Pictures it skipped are kept
    in the list: a picture whose label is unreadable becomes unlabelled (labelling it again replaces
    the bad JSON); a picture that cannot be read at all is listed as broken (Delete moves it away).
    """
    from training.core import box_to_pixels
    from training.data import IMAGE_EXTENSIONS, load_dataset

    dataset = load_dataset(root)
    entries: dict[Path, LabelEntry] = {}
    for samples in dataset.splits.values():
        for sample in samples:
            boxes: tuple[Box, ...] = ()
            if sample.label_path is None:
                status = UNLABELLED
            elif sample.has_face:
                status = FACE
                boxes = tuple(box_to_pixels(b, sample.width, sample.height) for b in sample.boxes)
            else:
                status = NO_FACE
            entries[sample.image_path] = LabelEntry(
                sample.image_path, sample.label_path or label_path_for(sample.image_path), status, boxes,
                sample.width, sample.height,
                suggested_by=read_suggestion_mark(sample.label_path) if sample.label_path else None,
            )
    for problem in dataset.problems:
        path = problem.path
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and path not in entries:
            entries[path] = LabelEntry(path, label_path_for(path), BROKEN, note=problem.message)
        elif path.suffix.lower() == ".json":
            folder = path.parent.parent / "images" if path.parent.name == "labels" else path.parent
            for suffix in IMAGE_EXTENSIONS:
                image = folder / f"{path.stem}{suffix}"
                if image.is_file() and image not in entries:
                    entries[image] = LabelEntry(image, path, UNLABELLED, note=f"its label was ignored: {problem.message}")
                    break
    by_label = {entry.label_path: entry for entry in entries.values()}
    warnings = dataset.warnings  # several faces are not one: every face is shown and kept
    for warning in warnings:  # used anyway: said when the picture is shown
        if warning.path in by_label and not by_label[warning.path].note:
            by_label[warning.path].note = warning.message
    ordered = sorted(entries.values(), key=lambda e: (str(e.image_path.parent), e.image_path.name))
    return ordered, [str(p) for p in dataset.problems] + [f"warning: {w}" for w in warnings]


class Tone(Enum):
    """The canvas banner's colour: what kind of news it is."""

    PLAIN = "plain"          # dark grey: a note ("Looking for a face …")
    FACE = "face"            # green: a saved face
    NO_FACE = "no face"      # red: saved "no face"
    SUGGESTED = "suggested"  # amber: a suggested box, to accept or correct
    NOT_FOUND = "not found"  # brown: the engine found no face


@dataclass(frozen=True)
class CanvasView:
    """What the canvas shows over the picture: the face boxes (picture pixels), whether they are a
    suggestion, the banner, which box is selected (None: none) and each suggested box's score."""

    boxes: tuple[Box, ...]
    suggested: bool
    banner: str
    tone: Tone = Tone.PLAIN
    selected: int | None = None
    scores: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", as_boxes(self.boxes))

    @property
    def box(self) -> Box | None:
        return self.boxes[0] if self.boxes else None


@dataclass(frozen=True)
class Counts:
    """How far the labelling is: pictures, labelled ones (faces and no face), and labels to review."""

    total: int
    labelled: int
    faces: int          # pictures with at least one face
    unreviewed: int
    boxes: int = 0      # faces in all (several per picture)

    @property
    def no_face(self) -> int:
        return self.labelled - self.faces


class LabelError(Exception):
    """A label that cannot be written or a picture that cannot be moved; the message names the file."""


@dataclass(frozen=True)
class _Snapshot:
    """A picture's label at one moment: the label file's bytes (None: no file) and what the list knows."""

    data: bytes | None
    status: LabelStatus
    boxes: tuple[Box, ...]
    suggested_by: SuggestionMark | None
    note: str


@dataclass
class _History:
    """One picture's undo and redo steps (the latest last)."""

    undo: list[_Snapshot]
    redo: list[_Snapshot]


class SessionEvents:
    """What a view listens to. ``entries()``: the list was replaced (a scan); ``entry(index)``: one
    picture's label changed; ``removed(index)``: a picture left the list; ``current(index)``: another
    picture (or the same one again) is to be shown, -1 for none; ``engine()``: the suggestion engine or
    what is known about the engines changed."""

    def __init__(self) -> None:
        self.entries = Emitter()
        self.entry = Emitter()
        self.removed = Emitter()
        self.current = Emitter()
        self.engine = Emitter()


class LabelSession:
    """A dataset being labelled: its pictures, the one shown, the suggestions, and the engine."""

    def __init__(self, mtcnn_error: str = "", blazeface_error: str = "") -> None:
        self.root: Path | None = None
        self.entries: list[LabelEntry] = []
        self.problems: list[str] = []
        self.index = -1
        self.picture_open = False  # the current picture was decoded (a broken one is shown as a message)
        self.review_next_scan = False  # after "Suggest all": the next scan shows the first label to review
        self.suggestions: dict[Path, Suggestion] = {}
        self._asked: set[Path] = set()
        self.detector: Any = None  # the user's trained Detector, None until there is one
        self.mtcnn_error = mtcnn_error  # why MTCNN cannot suggest ("" when it can)
        self.blazeface_error = blazeface_error  # why BlazeFace cannot (its weights are missing, say)
        self.engine: Engine = self.default_engine()
        self.engine_chosen = False  # True once the user picks an engine by hand
        self.generation = 0  # goes up whenever suggestions are dropped: late answers are then ignored
        self.selected: int | None = None  # the selected box of the current picture (an index into boxes())
        self._history: dict[Path, _History] = {}  # per picture, kept while the dataset is open
        self.events = SessionEvents()

    # --------------------------------------------------------------------------------- dataset
    def open(self, root: Path | str) -> bool:
        """Label the dataset at ``root``; False when it is the one already open (nothing to read again)."""
        root = Path(root)
        if self.root is not None and root == self.root and self.entries:
            return False
        self.root = root
        self._history.clear()
        return True

    def apply_scan(self, entries: list[LabelEntry], problems: list[str]) -> tuple[int, bool]:
        """Take a scan's pictures; returns the picture to show (see :meth:`go_to`) and whether this is the
        scan after "Suggest all" (then the first label to review is shown)."""
        current = self.current()
        shown = current.image_path if current is not None else None
        self.entries, self.problems = list(entries), list(problems)
        self.events.entries.emit()
        review, self.review_next_scan = self.review_next_scan, False
        paths = [e.image_path for e in self.entries]
        first_unreviewed = next((i for i, e in enumerate(self.entries) if e.unreviewed), None)
        if review and first_unreviewed is not None:
            return first_unreviewed, review
        if shown in paths:
            return paths.index(shown), review
        first_unlabelled = next((i for i, e in enumerate(self.entries) if e.status == UNLABELLED), 0)
        return (first_unlabelled if self.entries else -1), review

    def scan_failed(self) -> None:
        """The dataset could not be read: nothing to label."""
        self.entries, self.problems = [], []
        self.events.entries.emit()

    def counts(self) -> Counts:
        return Counts(
            total=len(self.entries),
            labelled=sum(1 for e in self.entries if e.labelled),
            faces=sum(1 for e in self.entries if e.status == FACE),
            unreviewed=sum(1 for e in self.entries if e.unreviewed),
            boxes=sum(e.face_count for e in self.entries),
        )

    def progress_text(self) -> str:
        """"Labelled 12 / 40 (9 faces, 3 no face)" (with several faces on a picture: "14 faces in 9 pictures"),
        and how many labels "Suggest all" left to review."""
        counts = self.counts()
        faces = f"{counts.faces} faces" if counts.boxes == counts.faces else \
            f"{counts.boxes} faces in {counts.faces} {'picture' if counts.faces == 1 else 'pictures'}"
        text = f"Labelled {counts.labelled} / {counts.total} ({faces}, {counts.no_face} no face)"
        return text + (f", {counts.unreviewed} to review" if counts.unreviewed else "")

    # --------------------------------------------------------------------------------- moving
    def current(self) -> LabelEntry | None:
        return self.entries[self.index] if 0 <= self.index < len(self.entries) else None

    def go_to(self, index: int) -> None:
        """Show picture ``index`` (-1 or out of range: none); the view then calls :meth:`open_current`."""
        self.index = index if 0 <= index < len(self.entries) else -1
        self.picture_open = False
        self.selected = None
        self.events.current.emit(self.index)

    def step(self, delta: int) -> bool:
        """Go ``delta`` pictures on or back; False (and nothing happens) past either end."""
        target = self.index + delta
        if not 0 <= target < len(self.entries):
            return False
        self.go_to(target)
        return True

    def next_to_review(self) -> int | None:
        """The next picture after this one without a label or with a label still to review."""
        for i in range(self.index + 1, len(self.entries)):
            if self.entries[i].status == UNLABELLED or self.entries[i].unreviewed:
                return i
        return None

    def open_current(self) -> np.ndarray | None:
        """Decode the current picture (BGR) and note its size; None (the picture is then marked broken, with
        the reason in its note) when it cannot be read."""
        from training.data import load_image

        entry = self.current()
        self.picture_open = False
        if entry is None:
            return None
        try:
            image = load_image(entry.image_path)
        except DataError as exc:
            entry.status, entry.note = BROKEN, exc.message
            self.events.entry.emit(self.index)
            return None
        entry.width, entry.height = int(image.shape[1]), int(image.shape[0])
        self.picture_open = True
        return image

    # --------------------------------------------------------------------------------- labelling
    def save(self, boxes: Any) -> LabelEntry:
        """Write the current picture's label: its face boxes (picture pixels: one box or a sequence of
        them) or, with None or no boxes, "no face". The label is the user's from now on (reviewed), and the
        step can be undone. LabelError naming the file if it cannot be written."""
        from training.data import write_labelme

        entry = self.current()
        if entry is None:
            raise LabelError("no picture to label")
        boxes = as_boxes(boxes)
        try:
            before = self._snapshot(entry)  # for undo: the label file as it is now
            write_labelme(entry.label_path, entry.image_path, list(boxes) or None, entry.width, entry.height)
        except OSError as exc:
            raise LabelError(f"{entry.label_path}: cannot write the label: {exc.strerror or exc}") from None
        entry.status, entry.boxes, entry.note = (FACE, boxes, "") if boxes else (NO_FACE, (), "")
        entry.suggested_by = None  # written by the user: reviewed
        history = self._history.setdefault(entry.image_path, _History([], []))
        history.undo.append(before)
        history.redo.clear()  # a new edit: what was undone is gone
        if self.selected is not None and self.selected >= len(boxes):
            self.selected = None
        self.events.entry.emit(self.index)
        return entry

    def accept(self) -> str | None:
        """Accept what is shown: a label "Suggest all" wrote, face(s) or no face ("reviewed"), or the
        suggested boxes of an unlabelled picture ("suggestion"; "no face" is always the user's call).
        None: nothing to accept. LabelError if the label cannot be written."""
        entry = self.current()
        if entry is None or not self.picture_open:
            return None
        if entry.unreviewed:
            self.save(entry.boxes if entry.status == FACE else None)
            return "reviewed"
        boxes = self.suggested_boxes(entry)
        if entry.status != UNLABELLED or not boxes:
            return None
        self.save(boxes)
        return "suggestion"

    # --------------------------------------------------------------------------------- boxes
    def boxes(self) -> tuple[Box, ...]:
        """The boxes an edit of the current picture starts from: its label's faces, or, unlabelled, the
        suggested ones (editing a suggestion accepts it with the change)."""
        entry = self.current()
        if entry is None or not self.picture_open:
            return ()
        if entry.status == UNLABELLED:
            return self.suggested_boxes(entry)
        return entry.boxes if entry.status == FACE else ()

    def select(self, index: int | None) -> None:
        """Select box ``index`` of :meth:`boxes` (None, or an index out of range: none)."""
        self.selected = index if index is not None and 0 <= index < len(self.boxes()) else None

    def add_box(self, box: Sequence[float]) -> int | None:
        """Add a face box (kept inside the picture) and select it; returns its index, None when what is
        left of it is too small to be a box (nothing is written then). Drawn over a suggested box (IoU at
        least ``REDRAW_IOU``), it replaces that one: redrawing a suggestion corrects it, as with one face."""
        from training.core import iou_matrix

        entry = self.current()
        if entry is None or not self.picture_open:
            return None
        clamped = clamp_box(box, entry.width, entry.height)
        if clamped is None:
            return None
        boxes = list(self.boxes())
        index = len(boxes)
        if boxes and (entry.status == UNLABELLED or entry.unreviewed):
            overlaps = iou_matrix(np.array([clamped]), np.array(boxes))[0]
            if overlaps.max() >= REDRAW_IOU:
                index = int(overlaps.argmax())
        boxes[index:index + 1] = [clamped]
        self.save(boxes)
        self.selected = index
        return index

    def move_box(self, index: int, box: Sequence[float]) -> bool:
        """Box ``index`` moved or resized to ``box`` (kept inside the picture); it stays selected. False
        (nothing written) for a box that does not exist or a result too small to be a box."""
        entry = self.current()
        boxes = list(self.boxes())
        if entry is None or not 0 <= index < len(boxes):
            return False
        clamped = clamp_box(box, entry.width, entry.height)
        if clamped is None:
            return False
        boxes[index] = clamped
        self.save(boxes)
        self.selected = index
        return True

    def delete_box(self, index: int | None = None) -> bool:
        """Remove box ``index`` (default: the selected one); without a face left the picture is "no face".
        False when there is no such box."""
        index = self.selected if index is None else index
        boxes = list(self.boxes())
        if index is None or not 0 <= index < len(boxes):
            return False
        del boxes[index]
        self.selected = None
        self.save(boxes)
        return True

    # --------------------------------------------------------------------------------- undo / redo
    @property
    def can_undo(self) -> bool:
        history = self._current_history()
        return bool(history and history.undo)

    @property
    def can_redo(self) -> bool:
        history = self._current_history()
        return bool(history and history.redo)

    def undo(self) -> bool:
        """Put the current picture's label back as it was before its last edit (the file too); False
        when there is nothing to undo. LabelError if the file cannot be written."""
        history = self._current_history()
        if not history or not history.undo:
            return False
        self._step(history.undo, history.redo)
        return True

    def redo(self) -> bool:
        """Do again the edit :meth:`undo` took back; False when there is none (a new edit clears them)."""
        history = self._current_history()
        if not history or not history.redo:
            return False
        self._step(history.redo, history.undo)
        return True

    def _current_history(self) -> _History | None:
        entry = self.current()
        return self._history.get(entry.image_path) if entry is not None else None

    def _step(self, source: list[_Snapshot], target: list[_Snapshot]) -> None:
        entry = self.current()
        try:
            now = self._snapshot(entry)
        except OSError as exc:
            raise LabelError(f"{entry.label_path}: cannot read the label: {exc.strerror or exc}") from None
        self._restore(entry, source[-1])
        source.pop()
        target.append(now)
        self.selected = None
        self.events.entry.emit(self.index)

    @staticmethod
    def _snapshot(entry: LabelEntry) -> _Snapshot:
        """The picture's label now (OSError when the file is there but cannot be read)."""
        from training.core import read_bytes
        from training.data import MAX_LABEL_BYTES

        if not entry.label_path.exists() and not entry.label_path.is_symlink():
            data = None
        else:  # guarded: a named pipe where the label was must not hang the window
            data = read_bytes(entry.label_path, max_bytes=MAX_LABEL_BYTES, what="label",
                              error=lambda path, message: OSError(errno.EINVAL, message, str(path)))
        return _Snapshot(data, entry.status, entry.boxes, entry.suggested_by, entry.note)

    @staticmethod
    def _restore(entry: LabelEntry, snapshot: _Snapshot) -> None:
        from training.core import atomic_write_bytes

        try:
            if snapshot.data is None:
                entry.label_path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(entry.label_path, snapshot.data)
        except OSError as exc:
            raise LabelError(f"{entry.label_path}: cannot write the label: {exc.strerror or exc}") from None
        entry.status, entry.boxes = snapshot.status, snapshot.boxes
        entry.suggested_by, entry.note = snapshot.suggested_by, snapshot.note

    def trash_current(self) -> tuple[list[Path], Path]:
        """Move the current picture and its label to ``DATASET/trash/`` (nothing is lost; move them back to
        restore); returns where they went. The next picture (or the one before) is shown next."""
        entry = self.current()
        if entry is None:
            raise LabelError("no picture to move")
        trash = (self.root or entry.image_path.parent) / "trash"
        try:
            trash.mkdir(parents=True, exist_ok=True)
            moved = [_move_to(trash, entry.image_path)]
            if entry.label_path.is_file():
                moved.append(_move_to(trash, entry.label_path))
        except OSError as exc:
            raise LabelError(f"{entry.image_path}: cannot move it to {trash}: {exc.strerror or exc}") from None
        index = self.index
        del self.entries[index]
        self.suggestions.pop(entry.image_path, None)
        self._history.pop(entry.image_path, None)
        self.events.removed.emit(index)
        self.go_to(min(index, len(self.entries) - 1))
        return moved, trash

    # --------------------------------------------------------------------------------- what is shown
    def suggested_boxes(self, entry: LabelEntry) -> tuple[Box, ...]:
        """The suggested boxes shown on a picture (each kept inside it; too small ones dropped)."""
        suggestion = self.suggestions.get(entry.image_path)
        if suggestion is None or suggestion.error or not entry.width:
            return ()
        clamped = (clamp_box(box, entry.width, entry.height) for box in suggestion.boxes)
        return tuple(box for box in clamped if box is not None)

    def suggested_box(self, entry: LabelEntry) -> Box | None:
        """The first suggested box, None without one."""
        boxes = self.suggested_boxes(entry)
        return boxes[0] if boxes else None

    def canvas_view(self) -> CanvasView:
        """What the canvas shows for the current picture: its label, a suggestion, or why there is none."""
        entry = self.current()
        if entry is None:
            return CanvasView((), False, "No pictures" if self.root else "Choose a dataset folder")
        if not self.picture_open:
            return CanvasView((), False, f"Cannot show this picture: {entry.note}")
        selected = self.selected
        if entry.unreviewed:
            mark = entry.suggested_by
            score = f" ({mark.score:.2f})" if mark.score is not None else ""
            if entry.status == FACE:
                several = len(entry.boxes) > 1
                what = f"{_faces_text(len(entry.boxes))} suggested" if several else "Suggested"
                return CanvasView(entry.boxes, True, f"{what} by {mark.engine}{score}, not reviewed: → accepts, "
                                                     f"or correct {'them' if several else 'it'}",
                                  Tone.SUGGESTED, selected)
            return CanvasView((), False, f"{capitalised(mark.engine)} found no face, not reviewed: → accepts, "
                                         "or draw the box", Tone.NOT_FOUND)
        if entry.status == FACE:
            banner = "Face" if len(entry.boxes) == 1 else _faces_text(len(entry.boxes))
            return CanvasView(entry.boxes, False, banner, Tone.FACE, selected)
        if entry.status == NO_FACE:
            return CanvasView((), False, "No face", Tone.NO_FACE)
        suggestion = self.suggestions.get(entry.image_path)
        if suggestion is None:
            return CanvasView((), False, "Looking for a face …")
        boxes = self.suggested_boxes(entry)
        score = f" ({suggestion.score:.2f})" if suggestion.score is not None else ""
        if suggestion.error:
            return CanvasView((), False, f"No suggestion ({suggestion.error}): draw the box, or N for no face")
        if not boxes:
            return CanvasView((), False, f"{capitalised(suggestion.source)} found no face{score}: draw the box, "
                                         "or N for no face", Tone.NOT_FOUND)
        scores = suggestion.scores if len(suggestion.scores) == len(boxes) else ()
        if len(boxes) > 1:
            return CanvasView(boxes, True, f"{_faces_text(len(boxes))} suggested by {suggestion.source}{score}: "
                                           "→ accepts, or correct them", Tone.SUGGESTED, selected, scores)
        return CanvasView(boxes, True, f"Suggested by {suggestion.source}{score}: → accepts, or correct it",
                          Tone.SUGGESTED, selected, scores)

    # --------------------------------------------------------------------------------- suggestions
    def ask(self, entry: LabelEntry) -> bool:
        """Whether to ask the engine about this picture now (once per picture and engine)."""
        if entry.image_path in self._asked:
            return False
        self._asked.add(entry.image_path)
        return True

    def suggestion_arrived(self, generation: int, image_path: Path, suggestion: Suggestion) -> bool:
        """Keep a suggestion (one from an engine since dropped is ignored); True when it is for the picture
        shown, unlabelled, so the view shows it now."""
        if generation != self.generation:
            return False
        image_path = Path(image_path)
        self.suggestions[image_path] = suggestion
        entry = self.current()
        return entry is not None and entry.image_path == image_path and entry.status == UNLABELLED

    def to_prefetch(self) -> LabelEntry | None:
        """The next unlabelled picture after this one if its suggestion is not in yet: asked for now, it is
        ready when the user gets there."""
        for entry in self.entries[self.index + 1:]:
            if entry.status == UNLABELLED:
                return entry if entry.image_path not in self.suggestions else None
        return None

    # --------------------------------------------------------------------------------- engines
    def engine_error(self, engine: Engine | str) -> str:
        """Why a pretrained engine cannot suggest ("" when it can, and for the others)."""
        return {MTCNN: self.mtcnn_error, BLAZEFACE: self.blazeface_error}.get(Engine(engine), "")

    def default_engine(self) -> Engine:
        """MTCNN when it can be loaded (the surest: see ENGINE_TIP); else BlazeFace, the other pretrained
        detector; else the user's model; else the classic finder."""
        for engine in _PRETRAINED_ENGINES:
            if not self.engine_error(engine):
                return engine
        return MODEL if self.detector is not None else CLASSIC

    def use_engine(self, engine: Engine | str, force: bool = False) -> bool:
        """Suggest with ``engine`` (the default one instead when it cannot: no model, MTCNN or BlazeFace
        unavailable). True when the suggestions so far were dropped (another engine, or ``force``): the
        view asks again for the picture shown."""
        engine = Engine(engine)
        if (engine == MODEL and self.detector is None) or self.engine_error(engine):
            engine = self.default_engine()
        changed = engine != self.engine
        self.engine = engine
        self.events.engine.emit()
        if changed or force:
            self.generation += 1
            self.suggestions.clear()
            self._asked.clear()
            return True
        return False

    def choose_engine(self, engine: Engine | str) -> bool:
        """The user picked ``engine``: it stays the choice whatever models come and go (see use_engine)."""
        if engine not in ENGINE_NAMES:
            raise ValueError(f"unknown suggestion engine {engine!r}; expected one of {', '.join(ENGINE_NAMES)}")
        self.engine_chosen = True
        return self.use_engine(engine)

    def set_detector(self, detector: Any) -> bool:
        """The user's trained Detector (None: none yet): an engine to choose, and the fallback without the
        pretrained ones. Its suggestions are asked again (True, as use_engine)."""
        self.detector = detector
        if not self.engine_chosen or (self.engine == MODEL and detector is None):
            engine = self.default_engine()
        else:
            engine = self.engine
        return self.use_engine(engine, force=True)

    def mtcnn_failed(self, message: str) -> bool:
        """MTCNN cannot be loaded (``message`` says why): said from now on, and suggestions come from the
        default engine if MTCNN was the one (True, as use_engine)."""
        return self.engine_failed(MTCNN, message)

    def engine_failed(self, engine: Engine | str, message: str) -> bool:
        """A pretrained engine (MTCNN, BlazeFace) cannot be loaded (``message`` says why): said from now on,
        and suggestions come from the default engine if it was the one (True, as use_engine)."""
        engine = Engine(engine)
        if engine not in _PRETRAINED_ENGINES:
            return False
        if not self.engine_error(engine):
            error = f"it cannot be loaded: {message}"
            if engine == MTCNN:
                self.mtcnn_error = error
            else:
                self.blazeface_error = error
        if self.engine == engine:
            return self.use_engine(self.default_engine(), force=True)
        self.events.engine.emit()
        return False

    def model_name(self) -> str:
        """"your model (best.keras)", or "your model" without a file name."""
        path = self.detector.path if self.detector is not None else None
        return f"your model ({Path(path).name})" if path else "your model"

    def source_text(self) -> str:
        """The line that says who suggests boxes, and why a pretrained engine does not where it cannot."""
        path = self.detector.path if self.detector is not None else None
        model = f"your model {Path(path).name}" if path else "your model"
        if self.engine == MTCNN:
            text = "Suggestions: MTCNN, a pretrained face detector"
            if self.detector is not None:
                text += f" (choose {model} in the list to see how it does)"
        elif self.engine == BLAZEFACE:
            text = "Suggestions: BlazeFace, a pretrained face detector (fast; MTCNN is surer on small faces)"
        elif self.engine == MODEL:
            text = f"Suggestions: {model}"
        else:
            text = "Suggestions: the classic face finder"
            if self.detector is None:
                text += " (until you have trained a model)"
        for engine in _PRETRAINED_ENGINES:
            if self.engine_error(engine) and self.engine != engine:
                text += f". {ENGINE_NAMES[engine]} is unavailable ({self.engine_error(engine)})"
        return text

    def engine_tip(self) -> str:
        return ENGINE_TIP + "".join(f"\n{ENGINE_NAMES[engine]} is unavailable: {self.engine_error(engine)}"
                                    for engine in _PRETRAINED_ENGINES if self.engine_error(engine))

    def suggest_all_min_score(self) -> float:
        """The score from which "Suggest all" writes a face: the model's own threshold, BlazeFace's own, else
        MTCNN's minimum."""
        if self.engine == MODEL:
            return float(self.detector.threshold if self.detector is not None else FACE_THRESHOLD)
        if self.engine == BLAZEFACE:
            return PRETRAINED_THRESHOLD
        return DEFAULT_MIN_SCORE


def _move_to(folder: Path, path: Path) -> Path:
    """Move ``path`` into ``folder``, numbering the name ("x-2.jpg") when one is already there."""
    target = folder / path.name
    n = 2
    while target.exists():
        target = folder / f"{path.stem}-{n}{path.suffix}"
        n += 1
    shutil.move(str(path), str(target))
    return target

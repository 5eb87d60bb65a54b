"""Keep this frame: the Detect tab's way from a face the model missed to a picture to learn from.

Three parts, so the Detect tab only forwards to them:

* :class:`KeepPolicy` (plain Python) decides which live frames the optional "keep unsure frames" mode
  keeps: a frame whose best score sits in a band around the threshold (the model was unsure), or a frame
  in which a face's track was drawn through a miss and the face came back in the next frame (the tracks
  disagreed with the detector: it missed a face that was there), at most one every few seconds and a
  limited number per session.
* :class:`FrameKeeper` (a QObject) writes kept frames off the UI thread (its own one-thread QThreadPool:
  the JPEG encoding and fsynced writes never hold up the live view), with the model's boxes from a low
  score as unreviewed suggestions (:func:`training.data.kept_frames.write_kept_frame`), and keeps the caps:
  files and megabytes of kept frames in the dataset, and free disk space, so it never fills a disk.
* :class:`KeptReview` helps the Label tab offer "Review kept frames": how many wait, and the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QCheckBox, QPushButton, QToolButton, QWidget

from training.core import MODEL_LABEL, FaceDetector, iou_matrix
from training.data import (
    REASONS,
    SUGGEST_MIN_SCORE,
    KeptFrame,
    free_bytes,
    is_kept,
    kept_usage,
    suggest_from,
    write_kept_frame,
)
from training.inference import PRETRAINED_TAG

MB = 2**20


@dataclass(frozen=True)
class KeepLimits:
    """The automatic mode's limits (a frame kept with K only needs the free space)."""

    interval_s: float = 3.0  # at most one frame kept automatically every this many seconds
    per_session: int = 30  # frames kept automatically until the mode is switched on again
    max_files: int = 500  # kept frames in the dataset, from every session (K's included)
    max_megabytes: float = 300.0  # their pictures and labels
    min_free_megabytes: float = 500.0  # nothing is kept (not even with K) when the disk has less free
    band: float = 0.15  # unsure: the best score within the threshold plus or minus this


@dataclass
class FrameFacts:
    """What the policy needs of one processed frame (``desktop.workers.FrameResult``)."""

    best_score: float | None  # the detector's best score, under the threshold too (None: no box at all)
    seen: frozenset[int]  # ids of the tracks the detector found in this frame
    bridged: frozenset[int]  # ids of the tracks drawn through a miss in this frame (not found, still shown)

    @classmethod
    def of(cls, result: Any) -> FrameFacts:
        scores = [float(d.score) for d in getattr(result, "detections", ())]
        faces = getattr(result, "faces", ())
        return cls(max(scores) if scores else None,
                   frozenset(f.id for f in faces if f.missed == 0),
                   frozenset(f.id for f in faces if f.missed > 0))


@dataclass
class KeepPolicy:
    """Which frames the automatic mode keeps (see the module docstring). Off by default.

    :meth:`observe` is called with every frame shown; it returns the frame to keep (this one, or for a
    track that came back the one before, where the detector missed it) and why, or None.
    """

    limits: KeepLimits = field(default_factory=KeepLimits)
    enabled: bool = False
    kept_this_session: int = 0
    _last_kept_at: float = -1e18
    _pending: tuple[Any, frozenset[int]] | None = None  # the last frame with a bridged track, and its ids

    def start_session(self) -> None:
        """The mode was switched on: the session's count starts again."""
        self.kept_this_session = 0
        self._last_kept_at = -1e18
        self._pending = None

    def unsure(self, best_score: float | None, threshold: float) -> bool:
        """Whether the best score sits in the uncertain band around the threshold."""
        return best_score is not None and abs(best_score - threshold) <= self.limits.band

    def observe(self, frame: Any, facts: FrameFacts, threshold: float, now: float | None = None
                ) -> tuple[Any, str] | None:
        """The frame to keep now and its reason ("unsure" or "track"), or None."""
        if not self.enabled:
            return None
        now = time.monotonic() if now is None else now
        pending, self._pending = self._pending, (frame, facts.bridged) if facts.bridged else None
        if self.kept_this_session >= self.limits.per_session or now - self._last_kept_at < self.limits.interval_s:
            return None
        choice = None
        if pending is not None and pending[1] & facts.seen:
            choice = (pending[0], "track")  # the face is back: the frame before is the one the detector missed
        elif self.unsure(facts.best_score, threshold):
            choice = (frame, "unsure")
        if choice is not None:
            self.kept_this_session += 1
            self._last_kept_at = now
        return choice


def suggestion_boxes(result: Any, min_score: float = SUGGEST_MIN_SCORE) -> list[tuple[float | None, tuple]]:
    """(score, box) of what a kept frame suggests: the detector's boxes from ``min_score`` and the boxes the
    tracker drew through a miss (no score) where no such box lies (IoU under 0.3)."""
    found = [(float(d.score), tuple(float(v) for v in d.box)) for d in getattr(result, "detections", ())
             if float(d.score) >= min_score]
    tracked = [tuple(float(v) for v in f.box) for f in getattr(result, "faces", ()) if f.missed > 0]
    if tracked and found:
        overlaps = iou_matrix(tracked, [box for _, box in found]).max(axis=1)
        tracked = [box for box, overlap in zip(tracked, overlaps, strict=True) if overlap < 0.3]
    return found + [(None, box) for box in tracked]


def model_name(detector: FaceDetector | None) -> str:
    """How the suggestions' mark names the detector: "your model (best.keras)", "BlazeFace (pretrained)", or a
    stand-in's own name ("the classic finder"), read from its declared ``label`` and ``name``."""
    if detector is None:
        return "your model"
    if detector.label == PRETRAINED_TAG:
        return "BlazeFace (pretrained)"
    if detector.label != MODEL_LABEL:
        return detector.name
    path = detector.path  # a light copy says which .keras it was made from (desktop.runtime)
    return f"your model ({Path(path).name})" if path else "your model"


class FrameKeeper(QObject):
    """Keeps live frames into the dataset, off the UI thread, within :class:`KeepLimits`.

    ``dataset()`` gives the dataset folder chosen in Collect/Train ("" when none). ``message`` carries
    what to tell the user (the frame kept and where, or why not); ``kept`` each frame written.
    """

    kept = Signal(object)  # KeptFrame
    message = Signal(str, bool)  # text, is an error
    _written = Signal(object, str, bool)  # KeptFrame or None, error, automatic

    def __init__(self, dataset: Callable[[], str], limits: KeepLimits | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dataset = dataset
        self.policy = KeepPolicy(limits or KeepLimits())
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one write at a time, in order
        self.kept_by_key = 0  # frames written this session, by reason
        self.kept_auto = 0
        self.pending = 0  # writes queued or running
        self._usage: tuple[str, int, int] | None = None  # (dataset, files, bytes) of kept frames there
        self._written.connect(self._on_written)

    @property
    def limits(self) -> KeepLimits:
        return self.policy.limits

    @property
    def auto_enabled(self) -> bool:
        return self.policy.enabled

    def set_auto(self, enabled: bool) -> None:
        """Switch the automatic mode on (a new session: its count starts again) or off."""
        if enabled and not self.policy.enabled:
            self.policy.start_session()
            self.kept_auto = 0
        self.policy.enabled = bool(enabled)

    def status_part(self) -> str:
        """The status line's part: "kept 3 (2 unsure)"; "" before any."""
        total = self.kept_by_key + self.kept_auto
        if not total and not self.policy.enabled:
            return ""
        auto = f" ({self.kept_auto} of at most {self.limits.per_session} automatic)" if self.policy.enabled else ""
        return f"kept {total}{auto}"

    # --- deciding -------------------------------------------------------------------------------
    def keep(self, result: Any, model: str, threshold: float, reason: str = "key") -> bool:
        """Keep ``result``'s frame now (the user pressed K), suggesting the boxes from a little under
        ``threshold``; False (and a message saying why) when it cannot."""
        if result is None:
            self.message.emit("No frame to keep yet.", True)
            return False
        problem = self._problem(automatic=False)
        if problem:
            self.message.emit(problem, True)
            return False
        self._submit(result, model, threshold, reason, automatic=False)
        return True

    def observe(self, result: Any, threshold: float, model: str) -> bool:
        """Every frame shown: the automatic mode keeps it (or the one before) when the policy says so.
        Cheap when the mode is off; never blocks (the write is queued)."""
        if not self.policy.enabled or result is None:
            return False
        choice = self.policy.observe(result, FrameFacts.of(result), threshold)
        if choice is None:
            return False
        if self.pending >= 2 or self._problem(automatic=True):
            self.policy.kept_this_session -= 1  # not kept: it does not count
            return False
        frame, reason = choice
        self._submit(frame, model, threshold, reason, automatic=True)
        return True

    def _problem(self, automatic: bool) -> str:
        """Why nothing can be kept now ("" when it can): no dataset, a cap reached, a nearly full disk."""
        folder = self.dataset()
        if not folder:
            return "Choose a dataset folder in the Collect or Train tab first: kept frames go into it."
        limits = self.limits
        if free_bytes(folder) < limits.min_free_megabytes * MB:
            return (f"Not kept: less than {limits.min_free_megabytes:.0f} MB free on the disk of {folder}. "
                    "Free some space first.")
        if automatic:
            files, size = self.usage(folder)
            if files >= limits.max_files or size >= limits.max_megabytes * MB:
                self.set_auto(False)
                self.message.emit(f"Keeping unsure frames stopped: {folder} holds {files} kept frames "
                                  f"({size / MB:.0f} MB), the limit is {limits.max_files} files or "
                                  f"{limits.max_megabytes:.0f} MB. Review them in the Label tab.", True)
                return "cap"
        return ""

    def usage(self, folder: str) -> tuple[int, int]:
        """(files, bytes) of kept frames in ``folder``'s dataset: counted once, then added to as they are written."""
        if self._usage is None or self._usage[0] != folder:
            files, size = kept_usage(folder)
            self._usage = (folder, files, size)
        return self._usage[1], self._usage[2]

    # --- writing --------------------------------------------------------------------------------
    def _submit(self, result: Any, model: str, threshold: float, reason: str, automatic: bool) -> None:
        folder, frame = self.dataset(), result.frame
        detections = suggestion_boxes(result, suggest_from(threshold))
        self.pending += 1

        def write() -> None:  # in the pool's thread
            try:
                kept = write_kept_frame(frame, folder, detections, reason=reason, model_name=model, min_score=0.0)
            except Exception as exc:  # KeepError names the file; anything else is said too, never a crash
                self._written.emit(None, str(exc) or type(exc).__name__, automatic)
            else:
                self._written.emit(kept, "", automatic)

        self.pool.start(write)

    @Slot(object, str, bool)
    def _on_written(self, kept: KeptFrame | None, error: str, automatic: bool) -> None:
        self.pending -= 1
        if kept is None:
            self.message.emit(f"The frame could not be kept: {error}", True)
            return
        if automatic:
            self.kept_auto += 1
        else:
            self.kept_by_key += 1
        if self._usage is not None:
            folder, files, size = self._usage
            self._usage = (folder, files + 1, size + kept.bytes_written)
        faces = len(kept.boxes)
        boxes = "no box" if not faces else f"{faces} suggested {'box' if faces == 1 else 'boxes'}"
        why = "" if kept.reason == "key" else f" ({REASONS[kept.reason]})"
        self.message.emit(f"Kept {kept.image_path.name}{why} with {boxes} in {kept.image_path.parent}: "
                          "review it in the Label tab (Review kept frames).", False)
        self.kept.emit(kept)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Let the writes in progress finish (a kept frame is never left half written)."""
        self.set_auto(False)
        self.pool.waitForDone(wait_ms)


# ------------------------------------------------------------------------------------------------ review


class KeptReview:
    """The Label tab's "Review kept frames": which listed pictures are kept frames still to review, the button
    offering them (shown while any waits), and the words that go with each step.

    ``entries`` are the Label tab's ``LabelEntry`` list (image_path, unreviewed, status).
    """

    def __init__(self) -> None:
        self.button = QPushButton("Review kept frames")
        self.button.setToolTip("Go through the frames kept in the Detect tab, with your model's boxes as "
                               "suggestions: → accepts them, or correct them first")
        self.button.setStyleSheet("QPushButton { font-weight: bold; }")
        self.button.hide()
        self.first_on_next_scan = False  # the Detect tab kept frames: the next reading shows the first one

    @staticmethod
    def waiting(entries: Sequence[Any]) -> list[int]:
        """Indexes of the kept frames not reviewed yet (suggested, or not labelled at all), in list order."""
        return [i for i, e in enumerate(entries) if is_kept(e.image_path)
                and (e.unreviewed or str(e.status) == "unlabelled")]

    @classmethod
    def next_index(cls, entries: Sequence[Any], current: int) -> int | None:
        """The first kept frame to review after ``current`` (wrapping round to the first); None when none waits."""
        waiting = cls.waiting(entries)
        if not waiting:
            return None
        return next((i for i in waiting if i > current), waiting[0])

    @classmethod
    def button_text(cls, entries: Sequence[Any]) -> str:
        count = len(cls.waiting(entries))
        return f"Review kept frames ({count})"

    def after_scan(self, entries: Sequence[Any]) -> tuple[int, str] | None:
        """Once the dataset is read: the first kept frame to show and what to say, when frames were kept since."""
        waiting, first = self.waiting(entries), self.first_on_next_scan
        self.first_on_next_scan = False
        if not (first and waiting):
            return None
        return waiting[0], (f"{len(waiting)} kept frame{'s' if len(waiting) != 1 else ''} to review: → accepts the "
                            "suggested boxes and goes on; correct them first where they are wrong.")

    def step_text(self, entries: Sequence[Any], index: int) -> str:
        waiting = self.waiting(entries)
        return (f"Kept frame {waiting.index(index) + 1} of {len(waiting)} to review: → accepts the suggested "
                "boxes and goes on; correct them first where they are wrong.")

    def update(self, entries: Sequence[Any], current: Any) -> str | None:
        """The button's count after an edit; the words for the Train tab's turn when the last kept frame was
        just reviewed."""
        waiting = len(self.waiting(entries))
        done = not waiting and self.button.isVisible() and current is not None and is_kept(current.image_path)
        self.button.setText(self.button_text(entries))
        self.button.setVisible(waiting > 0)
        return ("Every kept frame is reviewed: fine-tune your model on them in the Train tab (Fine-tune the "
                "model in use).") if done else None


class KeepControls(QObject):
    """The Detect tab's "Keep frame (K)" action and button and its "Keep unsure frames" box, wired to a
    :class:`FrameKeeper`. ``current()`` gives what to keep: the frame result shown, its detector, the threshold."""

    def __init__(self, keeper: FrameKeeper, current: Callable[[], tuple[Any, FaceDetector | None, float]],
                 parent: QWidget) -> None:
        super().__init__(parent)
        self.keeper, self._current = keeper, current
        self.action = QAction("Keep frame (K)", parent)
        self.action.setShortcut(QKeySequence(Qt.Key.Key_K))
        self.action.setToolTip("Save this frame into the dataset (Collect/Train) with the model's boxes as "
                               "suggestions to review in the Label tab: a face it missed or a box on no face "
                               "becomes a picture to learn from (K)")
        self.action.triggered.connect(self.keep)
        parent.addAction(self.action)  # K works wherever the focus is while the tab is shown
        self.button = QToolButton()
        self.button.setDefaultAction(self.action)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        limits = keeper.limits
        self.unsure_box = QCheckBox("Keep unsure frames")
        self.unsure_box.setToolTip(
            f"While detecting, keep at most one frame every {limits.interval_s:g} s where the model was "
            f"unsure (its best score within {limits.band:g} of the threshold) or missed a face its "
            f"track says was there, up to {limits.per_session} a session; never past "
            f"{limits.max_files} kept frames or {limits.max_megabytes:.0f} MB in the dataset")
        self.unsure_box.toggled.connect(keeper.set_auto)
        keeper.message.connect(self._on_message)

    @Slot()
    def keep(self) -> bool:
        """Keep the frame shown (written in the background); False when it cannot be (the message says why)."""
        result, detector, threshold = self._current()
        return self.keeper.keep(result, model_name(detector), threshold)

    def observe(self, result: Any, detector: FaceDetector | None, threshold: float) -> None:
        """Every frame shown: the unsure mode decides whether to keep it."""
        if self.keeper.auto_enabled:
            self.keeper.observe(result, threshold, model_name(detector))

    @Slot(str, bool)
    def _on_message(self, _text: str, error: bool) -> None:
        if error and not self.keeper.auto_enabled and self.unsure_box.isChecked():
            self.unsure_box.setChecked(False)  # a cap switched the mode off

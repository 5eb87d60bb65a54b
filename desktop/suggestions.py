"""Suggestion engines for the Label tab, the threads they run on, and the row of controls that drives them.

:class:`Suggester` owns what takes time behind the Label tab's suggestions: the finders (MTCNN, BlazeFace,
the classic finder, made once off the UI thread; the user's model), one suggestion at a time for the
picture shown, and "Suggest all" (``training.inference.autolabel.autolabel_dataset``) in the background.
Answers come back to the UI thread as signals; the tab decides what they mean (``desktop.label_session``).
:class:`SuggestBar` is the row under the picture: who suggests, the engine list, Suggest all and its progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from desktop.label_session import (
    BLAZEFACE,
    CLASSIC,
    ENGINE_NAMES,
    ENGINE_TIP,
    MODEL,
    MTCNN,
    LabelSession,
    Suggestion,
    capitalised,
    make_suggestion,
)
from training.inference import AutolabelReport, autolabel_dataset, find_faces


class _ModelFinder:
    """A trained Detector as a suggestion engine (a FaceDetector named "your model"), so "Suggest all" can use
    the user's model."""

    label = "face (your model)"
    name = ENGINE_NAMES[MODEL]

    def __init__(self, detector) -> None:
        self._detector = detector
        self.threshold, self.device, self.multi_face = detector.threshold, detector.device, detector.multi_face

    def detect(self, frame_bgr: np.ndarray):
        return self._detector.detect(frame_bgr)

    def detect_all(self, frame_bgr: np.ndarray, threshold: float | None = None):
        """Every face the model finds (a single-face model: its one answer, kept only when it is a face)."""
        return self._detector.detect_all(frame_bgr, threshold=threshold)


def run_suggest_all(
    root: Path,
    make_finder: Callable[[], object],
    min_score: float,
    stop: threading.Event,
    on_progress: Callable[[int, int, Path], None],
) -> AutolabelReport:
    """What "Suggest all" runs off the UI thread: build the finder (MTCNN loads TensorFlow: seconds),
    then pre-label every unlabelled picture, stopping between two pictures once ``stop`` is set."""
    return autolabel_dataset(root, finder=make_finder(), min_score=min_score, on_progress=on_progress,
                             should_stop=stop.is_set)


class Suggester(QObject):
    """The suggestion engines and their threads (see the module's doc), for a label session.

    A suggestion asked for (:meth:`request`) lands in the session; ``arrived`` says the picture shown has
    one now (draw it), ``ask_again`` that the session dropped its suggestions (the engine could not load:
    another took over), ``status`` what the status line should say. The session's ``generation`` travels
    with each request, so answers for an engine or model no longer in use are dropped."""

    arrived = Signal()                                # a suggestion for the picture shown arrived
    ask_again = Signal()                              # the suggestions were dropped: the picture shown asks anew
    status = Signal(str, bool)                        # text, is a warning
    _suggestion_done = Signal(int, str, object)       # engine generation, image path, Suggestion
    _engine_failed = Signal(int, str, str)            # engine generation, engine, why it cannot load
    suggest_all_progress = Signal(int, int, str)      # pictures done, pictures to label, the last picture
    suggest_all_done = Signal(object, str)            # AutolabelReport (None when it failed), error
    _suggest_all_ended = Signal(object, str)

    def __init__(self, session: LabelSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._suggestion_done.connect(self._on_suggestion_done)
        self._engine_failed.connect(self._on_engine_failed)
        # Suggestion engines run TensorFlow (MTCNN, your model) on Python threads, not QThreadPool's: TensorFlow's
        # pybind11 code re-takes the GIL by the thread's registered state, and a Qt-made thread froze the
        # whole app once that way (under Xvfb; both threads waiting for the GIL). One thread owns the finder,
        # so suggestions come in order.
        self._suggest_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetracker-suggest")
        self._finders: dict[str, object] = {}  # MTCNN / BlazeFace / classic finder, made off the UI thread on first use
        self._finders_lock = threading.Lock()   # the suggestion thread and "Suggest all" share them
        self._suggest_all_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetracker-suggest-all")
        self._suggest_all_stop: threading.Event | None = None  # set while "Suggest all" runs; set() cancels
        self.suggest_all_engine: str | None = None  # the engine of the last "Suggest all"
        self._suggest_all_ended.connect(self._on_suggest_all_ended)

    def finder_for(self, engine: str, detector=None):
        """The finder of an engine, made once (MTCNN and BlazeFace load TensorFlow: call this off the UI thread)."""
        if engine == MODEL:
            return _ModelFinder(detector)
        if engine in (MTCNN, BLAZEFACE):
            from training.core import import_tensorflow

            import_tensorflow()  # never beside another thread's first import (the Detect tab's loader)
        with self._finders_lock:
            finder = self._finders.get(engine)
            if finder is None:
                if engine == MTCNN:
                    from training.inference import PretrainedFaceFinder

                    finder = PretrainedFaceFinder()
                elif engine == BLAZEFACE:
                    from training.inference import BlazeFaceFinder

                    finder = BlazeFaceFinder()
                else:
                    from training.inference import ClassicFaceFinder

                    finder = ClassicFaceFinder()
                self._finders[engine] = finder
            return finder

    def has_loaded(self, engine: str) -> bool:
        """Whether ``engine``'s finder was ever made (it loaded at least once)."""
        return engine in self._finders

    def request(self, entry) -> None:
        """Ask the session's engine for the faces of ``entry``'s picture (unless the session has or awaits them)."""
        if not self.session.ask(entry):
            return
        path = entry.image_path
        generation, engine, detector = self.session.generation, self.session.engine, self.session.detector

        def suggest() -> None:
            try:
                finder = self.finder_for(engine, detector)
            except Exception as exc:  # MTCNN not installed, BlazeFace's weights missing: the tab falls back, says so
                self._engine_failed.emit(generation, engine, str(exc) or type(exc).__name__)
                return
            try:
                from training.data import load_image

                result = make_suggestion(engine, find_faces(finder, load_image(path)), detector)
            except Exception as exc:  # a suggestion is a help, never a crash
                result = Suggestion(None, None, ENGINE_NAMES[engine], error=str(exc) or type(exc).__name__)
            self._suggestion_done.emit(generation, str(path), result)

        try:
            self._suggest_pool.submit(suggest)
        except RuntimeError:  # the tab is closing (shutdown): nothing more starts
            return

    @Slot(int, str, str)
    def _on_engine_failed(self, generation: int, engine: str, message: str) -> None:
        if not self.session.engine_error(engine) and self.session.engine_failed(engine, message):
            self.ask_again.emit()
        if generation == self.session.generation:
            self.status.emit(f"{ENGINE_NAMES[engine]} cannot suggest: {message}", True)

    @Slot(int, str, object)
    def _on_suggestion_done(self, generation: int, path: str, suggestion: object) -> None:
        if self.session.suggestion_arrived(generation, Path(path), suggestion):
            self.arrived.emit()

    # ------------------------------------------------------------------------------------ suggest all
    def start_suggest_all(self, root: Path, engine: str, detector, min_score: float) -> bool:
        """Pre-label every unlabelled picture of ``root`` in the background (False: one runs, or closing)."""
        if self.is_suggesting_all():
            return False
        stop = threading.Event()
        self._suggest_all_stop = stop
        self.suggest_all_engine = engine

        def job() -> None:
            try:
                report = run_suggest_all(
                    root, lambda: self.finder_for(engine, detector), min_score, stop,
                    lambda done, total, path: self.suggest_all_progress.emit(done, total, str(path)),
                )
            except Exception as exc:  # the engine cannot load, the folder went away: said, never a crash
                self._suggest_all_ended.emit(None, str(exc) or type(exc).__name__)
            else:
                self._suggest_all_ended.emit(report, "")

        try:
            self._suggest_all_pool.submit(job)
        except RuntimeError:  # the tab is closing (shutdown): nothing more starts
            self._suggest_all_stop = None
            return False
        return True

    def is_suggesting_all(self) -> bool:
        return self._suggest_all_stop is not None

    def cancel_suggest_all(self) -> bool:
        """Stop "Suggest all" after the picture in hand (False: none runs)."""
        if self._suggest_all_stop is None:
            return False
        self._suggest_all_stop.set()
        return True

    @Slot(object, str)
    def _on_suggest_all_ended(self, report: AutolabelReport | None, error: str) -> None:
        self._suggest_all_stop = None
        self.suggest_all_done.emit(report, error)

    def shutdown(self) -> None:
        """Stop "Suggest all" and let the suggestion in hand end (they are short), so no thread outlives the window."""
        if self._suggest_all_stop is not None:
            self._suggest_all_stop.set()
        self._suggest_pool.shutdown(wait=False, cancel_futures=True)  # what has not started never will
        self._suggest_all_pool.shutdown(wait=True)  # stops between two pictures; loading MTCNN takes seconds
        self._suggest_pool.shutdown(wait=True)


def suggest_all_text(engine: str, report: AutolabelReport | None, error: str) -> tuple[str, bool]:
    """What the status line says when "Suggest all" ends, and whether it is a warning."""
    if report is None:
        return f"Suggest all: {ENGINE_NAMES[engine]} could not run: {error}", True
    text = report.summary_text()
    if report.written:
        text += "\nReview them one by one: → accepts a suggestion, or correct the box (U: next to review)."
    return f"{capitalised(report.engine)}: {text}", bool(report.skipped)


class SuggestBar(QWidget):
    """"<who suggests>  Suggest with: [engine]  [Suggest all]  [progress] [Cancel]", and a "Suggest all" run of
    ``suggester`` from start to end: :meth:`start` it, Cancel stops it, ``status`` says how it goes, ``finished``
    (report or None, error) once the row is back as it was. The Label tab connects the engine list's
    ``activated`` and Suggest all's ``clicked``."""

    status = Signal(str, bool)  # text, is a warning
    finished = Signal(object, str)  # AutolabelReport (None when it failed), error

    def __init__(self, suggester: Suggester, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.suggester = suggester
        suggester.suggest_all_progress.connect(self._on_progress)
        suggester.suggest_all_done.connect(self._on_done)
        self.source_label = QLabel()
        self.source_label.setStyleSheet("color: #606060;")
        self.source_label.setWordWrap(True)
        self.engine_combo = QComboBox()
        self.engine_combo.addItem("MTCNN (pretrained)", MTCNN)
        self.engine_combo.addItem("BlazeFace (pretrained, fast)", BLAZEFACE)
        self.engine_combo.addItem("your model", MODEL)
        self.engine_combo.addItem("classic finder", CLASSIC)
        self.engine_combo.setToolTip(ENGINE_TIP)
        self.engine_combo.model().item(self.engine_combo.findData(MODEL)).setEnabled(False)  # until a model
        self.suggest_all_button = QPushButton("Suggest all")
        self.suggest_all_button.setToolTip("Pre-label every unlabelled picture in the background; "
                                           "then review them one by one (→ accepts, or correct the box)")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the picture in hand; the labels written so far stay")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        engine_row = QHBoxLayout(self)
        engine_row.setContentsMargins(0, 0, 0, 0)
        engine_row.addWidget(self.source_label, 1)
        engine_row.addWidget(QLabel("Suggest with:"))
        engine_row.addWidget(self.engine_combo)
        engine_row.addWidget(self.suggest_all_button)
        engine_row.addWidget(self.progress)
        engine_row.addWidget(self.cancel_button)

    def show_engine(self, session: LabelSession) -> None:
        """Show the engine: the list's choice and which items can be chosen, the line under the picture."""
        combo = self.engine_combo
        combo.setCurrentIndex(combo.findData(session.engine))
        for engine in (MTCNN, BLAZEFACE):
            combo.model().item(combo.findData(engine)).setEnabled(not session.engine_error(engine))
        combo.model().item(combo.findData(MODEL)).setEnabled(session.detector is not None)
        combo.setItemText(combo.findData(MODEL), session.model_name())
        self.source_label.setText(session.source_text())
        combo.setToolTip(session.engine_tip())

    def start(self, root: Path, engine: str, detector, min_score: float) -> bool:
        """Pre-label every unlabelled picture of ``root`` with ``engine`` (False: not started)."""
        if not self.suggester.start_suggest_all(root, engine, detector, min_score):
            return False
        # No other engine or run meanwhile; busy until the first picture (loading the engine).
        self.suggest_all_button.setEnabled(False)
        self.engine_combo.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("")
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.status.emit(f"Suggest all: {ENGINE_NAMES[engine]} is looking at every unlabelled picture "
                         "(you can go on labelling meanwhile) …", False)
        return True

    @Slot()
    def cancel(self) -> None:
        """Stop "Suggest all" after the picture in hand; the labels written so far stay."""
        if self.suggester.cancel_suggest_all():
            self.cancel_button.setEnabled(False)
            self.status.emit("Suggest all: stopping after this picture …", False)

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, path: str) -> None:
        if not self.suggester.is_suggesting_all():
            return
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total}")
        if self.cancel_button.isEnabled():
            self.status.emit(f"Suggest all: {ENGINE_NAMES[self.suggester.suggest_all_engine]} looked at {done} of "
                             f"{total} unlabelled pictures ({Path(path).name})", False)

    @Slot(object, str)
    def _on_done(self, report: AutolabelReport | None, error: str) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.suggest_all_button.setEnabled(True)
        self.engine_combo.setEnabled(True)
        self.finished.emit(report, error)

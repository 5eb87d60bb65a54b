"""Suggestion engines for the Label tab, and the threads they run on.

:class:`Suggester` owns what takes time behind the Label tab's suggestions: the finders (MTCNN, BlazeFace,
the classic finder, made once off the UI thread; the user's model), one suggestion at a time for the
picture shown, and "Suggest all" (``training.inference.autolabel.autolabel_dataset``) in the background.
Answers come back to the UI thread as signals; the tab decides what they mean (``desktop.label_session``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from desktop.label_session import BLAZEFACE, ENGINE_NAMES, MODEL, MTCNN, Suggestion, make_suggestion
from training.inference import AutolabelReport, autolabel_dataset, find_faces


class _ModelFinder:
    """A trained Detector behind the finders' interface, so "Suggest all" can use the user's model."""

    label = "face (your model)"
    name = ENGINE_NAMES[MODEL]

    def __init__(self, detector) -> None:
        self._detector = detector

    def detect(self, frame_bgr: np.ndarray):
        return self._detector.detect(frame_bgr)

    def detect_all(self, frame_bgr: np.ndarray):
        """Every face the model finds (a single-face model: its one answer, kept only when it is a face)."""
        detect_all = getattr(self._detector, "detect_all", None)
        return list(detect_all(frame_bgr)) if detect_all is not None else [self._detector.detect(frame_bgr)]


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
    """The suggestion engines and their threads (see the module's doc).

    ``generation`` numbers (the session's) travel with each request, so the tab can drop answers for
    an engine or model no longer in use."""

    suggestion_done = Signal(int, str, object)        # engine generation, image path, Suggestion
    engine_failed = Signal(int, str, str)             # engine generation, engine, why it cannot load
    suggest_all_progress = Signal(int, int, str)      # pictures done, pictures to label, the last picture
    suggest_all_done = Signal(object, str)            # AutolabelReport (None when it failed), error
    _suggest_all_ended = Signal(object, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
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

    def request(self, generation: int, engine: str, detector, path: Path) -> None:
        """Ask ``engine`` for the faces of picture ``path``; ``suggestion_done`` (or ``engine_failed``) answers."""

        def suggest() -> None:
            try:
                finder = self.finder_for(engine, detector)
            except Exception as exc:  # MTCNN not installed, BlazeFace's weights missing: the tab falls back, says so
                self.engine_failed.emit(generation, engine, str(exc) or type(exc).__name__)
                return
            try:
                from training.data import load_image

                result = make_suggestion(engine, find_faces(finder, load_image(path)), detector)
            except Exception as exc:  # a suggestion is a help, never a crash
                result = Suggestion(None, None, ENGINE_NAMES[engine], error=str(exc) or type(exc).__name__)
            self.suggestion_done.emit(generation, str(path), result)

        try:
            self._suggest_pool.submit(suggest)
        except RuntimeError:  # the tab is closing (shutdown): nothing more starts
            return

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

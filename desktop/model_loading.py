"""Which detector the Detect tab runs, loaded in the background: the user's model, the pretrained face
detector, or the classic finder.

:class:`ModelLoading` loads one at a time in a :class:`desktop.workers.DetectorLoader` thread (a newer
request retires the older one), keeps :class:`desktop.detector_state.DetectorState` up to date, remembers the
user's last model, and falls back (the pretrained detector, then the classic finder) when nothing runs yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSettings, QThread, Signal, Slot

from desktop import settings as keys
from desktop.detector_state import PRETRAINED, DetectorState
from desktop.runtime import RUNTIMES
from desktop.settings import read_choice
from desktop.workers import DetectorLoader
from training.inference import ClassicFaceFinder


class ModelLoading(QObject):
    """``loading``: a load started (say so now); ``loaded(detector, users_model)``: run ``detector`` from now on
    (``users_model``: the same when it is the user's own model, else None), ``state`` already says which it is;
    ``failed``: a load failed, and the detector in use (or a fallback being loaded) stays.

    ``retire(worker)`` lets a finished or replaced loader thread end (the tab keeps it until it has)."""

    loading = Signal()
    loaded = Signal(object, object)
    failed = Signal()

    def __init__(self, settings: QSettings, retire: Callable[[QThread], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.retire = retire
        self.state = DetectorState()  # what it detects with, and what the tab says about it
        self.loader: DetectorLoader | None = None
        #: What runs a .keras model (desktop.runtime.RUNTIMES): a light runtime's copy unless TensorFlow is asked.
        self.runtime = read_choice(settings, keys.RUNTIME, RUNTIMES, "auto")

    def load(self, path: str | None) -> None:
        """Load a model file, the pretrained detector (PRETRAINED) or the classic finder (None) in the background;
        the detector in use keeps running meanwhile."""
        self.state.start_loading(path)
        self._start_loader(path)

    def _start_loader(self, path: str | None) -> None:
        if self.loader is not None:
            self.retire(self.loader)
        loader = DetectorLoader(path, parent=self, runtime=self.runtime)
        loader.loaded.connect(self._on_detector_loaded)
        loader.failed.connect(self._on_detector_failed)
        loader.progress.connect(self._on_loader_progress)
        self.loader = loader
        loader.start()
        self.loading.emit()  # "model: loading…" now, not at the next status tick

    @Slot(str)
    def _on_loader_progress(self, text: str) -> None:
        """The loader is busy with something slow (a model's one-time LiteRT copy): say so now."""
        if self.sender() is self.loader and self.loader is not None:
            self.state.preparing(text)
            self.loading.emit()

    @Slot(object)
    def _on_detector_loaded(self, detector: Any) -> None:
        loader = self.loader
        if self.sender() is not loader or loader is None:
            return
        self.loader = None
        self.retire(loader)
        metadata = {} if isinstance(detector, ClassicFaceFinder) else detector.metadata  # a Detector's file's
        users_model = None
        if isinstance(detector, ClassicFaceFinder):
            self.state.loaded_classic()
        elif loader.model_path == PRETRAINED:
            self.state.loaded_pretrained()  # not the user's model: the Label tab has its own pretrained engines
        else:
            self.state.loaded_model(str(detector.path) if detector.path
                                    else loader.model_path, pretrained=bool(metadata.get("pretrained")))
            self.settings.setValue(keys.LAST_MODEL, self.state.model_path)
            users_model = detector
        self.loaded.emit(detector, users_model)

    @Slot(str, str)
    def _on_detector_failed(self, path: str, message: str) -> None:
        loader = self.loader
        if self.sender() is not loader or loader is None:
            return
        self.loader = None
        self.retire(loader)
        if self.state.load_failed(path, message):
            # Nothing ran yet (a bad --model at start, weights missing): the pretrained detector, else the
            # classic finder, takes over.
            self._start_loader(self.state.loading)
            return
        self.failed.emit()

    def shutdown(self) -> None:
        """Let the loader in hand end (the window closes)."""
        if self.loader is not None:
            self.retire(self.loader)
            self.loader = None

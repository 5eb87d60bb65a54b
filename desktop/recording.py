"""Snapshot and Record: what the Detect tab shows, boxes included, as a PNG or an MP4 video.

:class:`Recording` holds the two buttons and what they do: a snapshot is encoded and written in the
background (never half-written), a recording is fed by the inference worker (``InferenceWorker.start_recording``)
frame by frame. Files go to the folders remembered in the settings, else ``Pictures/FaceTracker`` and
``Movies/FaceTracker``. ``notice`` says what was saved where.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import cv2
from PySide6.QtCore import QObject, QSettings, QStandardPaths, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QPushButton

from desktop import settings as keys
from desktop.settings import read_str
from desktop.workers import FrameResult, InferenceWorker, VideoRecorder


def output_folder(settings: QSettings, key: str, location: QStandardPaths.StandardLocation) -> Path:
    """The folder remembered under ``key``, else ``<the user's location>/FaceTracker``."""
    folder = read_str(settings, key, "")
    if not folder:
        base = QStandardPaths.writableLocation(location) or str(Path.home())
        folder = str(Path(base) / "FaceTracker")
    return Path(folder)


class Recording(QObject):
    """The Snapshot and Record buttons of the Detect tab, and what they do.

    ``last_result()`` is the picture on screen (None: none yet); ``source_fps()`` the source's frame rate,
    for a recording's when the inference rate is not known yet."""

    notice = Signal(str)

    def __init__(self, settings: QSettings, inference: InferenceWorker, last_result: Callable[[], FrameResult | None],
                 source_fps: Callable[[], float | None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.inference = inference
        self.last_result = last_result
        self.source_fps = source_fps
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.setToolTip("Save the picture shown, box included, as PNG")
        self.snapshot_button.clicked.connect(self.snapshot)
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record what is shown, boxes included, to an MP4 video")
        self.record_button.toggled.connect(self._on_record_toggled)

    def set_enabled(self, enabled: bool) -> None:
        """Snapshot and Record need a picture on screen (Stop recording stays while one runs)."""
        self.snapshot_button.setEnabled(enabled)
        self.record_button.setEnabled(enabled or self.record_button.isChecked())

    def is_recording(self) -> bool:
        return self.record_button.isChecked()

    def stop(self) -> None:
        """Finish the recording, if one runs (the source stopped, the window closes)."""
        if self.record_button.isChecked():
            self.record_button.setChecked(False)

    @Slot()
    def snapshot(self) -> Path | None:
        """Save the picture on screen (box included) as a PNG; the file is written in the background."""
        result = self.last_result()
        if result is None:
            return None
        folder = output_folder(self.settings, keys.SNAPSHOT_FOLDER, QStandardPaths.StandardLocation.PicturesLocation)
        path = folder / f"facetracker-{datetime.now():%Y%m%d-%H%M%S-%f}.png"
        pixels = result.annotated

        def write() -> None:  # encode, then rename: the PNG never exists half-written
            ok, encoded = cv2.imencode(".png", pixels)
            if ok:
                folder.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(path.name + ".part")
                partial.write_bytes(encoded.tobytes())
                partial.replace(path)

        QThreadPool.globalInstance().start(write)
        self.notice.emit(f"Snapshot saved: {path}")
        return path

    @Slot(bool)
    def _on_record_toggled(self, checked: bool) -> None:
        if checked:
            self._start_recording()
        else:
            recorder = self.inference.stop_recording()
            self.record_button.setText("Record")
            if recorder is not None:
                self.notice.emit(f"Recording saved: {recorder.path} ({recorder.frames_written} frames)")
            self.set_enabled(self.last_result() is not None)

    def _start_recording(self) -> None:
        result = self.last_result()
        if result is None:
            self.record_button.setChecked(False)
            return
        fps = self.inference.results_per_second() or self.source_fps() or 30.0
        folder = output_folder(self.settings, keys.RECORDING_FOLDER, QStandardPaths.StandardLocation.MoviesLocation)
        path = folder / f"facetracker-{datetime.now():%Y%m%d-%H%M%S}.mp4"
        height, width = result.frame.shape[:2]
        try:
            recorder = VideoRecorder(path, fps=min(max(fps, 1.0), 60.0), frame_size=(width, height))
        except OSError as exc:
            self.record_button.setChecked(False)
            self.notice.emit(f"Cannot record: {exc}")
            return
        self.inference.start_recording(recorder)
        self.record_button.setText("■ Stop recording")
        self.notice.emit(f"Recording to {path}…")

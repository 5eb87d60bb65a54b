"""The Collect tab: take pictures for a dataset from the live source, like the tutorial's capture loop.

The tutorial grabbed ``number_images`` frames from ``cv2.VideoCapture``, one every half second,
into ``data/images/`` with unique names. Here the live frames come from the main window's capture
(:meth:`CollectTab.on_frame`); a countdown gives the user time to get in place, each picture is
shown as it is taken, and JPEG encoding and writing happen on a worker thread so the preview
never stutters. Pictures without a face in view are wanted: they teach the model "no face".
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSettings, QSize, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop import settings as keys
from desktop.imaging import bgr_to_qimage
from desktop.settings import read_float, read_int, read_str
from desktop.widgets import FolderField
from training.core import atomic_write_bytes

#: The tutorial's capture settings.
DEFAULT_COUNT = 30
DEFAULT_INTERVAL_S = 0.5
DEFAULT_COUNTDOWN_S = 3
JPEG_QUALITY = 95
THUMBNAIL_SIZE = QSize(128, 96)
MAX_THUMBNAILS = 200
PREVIEW_MIN_INTERVAL_S = 1 / 30  # the live preview is redrawn at most this often
STALE_SOURCE_S = 3.0  # no new live frame for this long (and 3 intervals) while taking pictures: stop

# Keys of this tab's settings (the dataset folder is shared: desktop.settings.DATASET).
SETTINGS_COUNT = "collect/count"
SETTINGS_INTERVAL = "collect/interval"
SETTINGS_COUNTDOWN = "collect/countdown"


def unique_picture_name(now: datetime | None = None) -> str:
    """A file name that sorts by capture time and never repeats: ``YYYYmmdd-HHMMSS-ffffff-xxxxxxxx.jpg``.

    (The tutorial's uuid1 names are unique too, but embed the computer's MAC address and sort randomly.)
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S-%f")
    return f"{stamp}-{uuid.uuid4().hex[:8]}.jpg"


def save_jpeg(frame_bgr: np.ndarray, path: Path, quality: int = JPEG_QUALITY) -> None:
    """Encode and write a JPEG atomically; OSError naming the file when that fails.

    cv2.imencode + an atomic write instead of cv2.imwrite: imwrite cannot open non-ASCII paths on
    Windows and reports failure only as False; and a write that fails (a full disk) must leave no
    empty or half picture for training to trip over (``training.core.files``).
    """
    ok, encoded = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError(f"{path}: could not encode the picture as JPEG (shape {frame_bgr.shape})")
    try:
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as exc:
        raise OSError(f"{path}: could not write the picture: {exc.strerror or exc}") from exc


class CollectTab(QWidget):
    """Count, interval and countdown; Start/Stop; the live picture and what was taken."""

    picture_saved = Signal(str)        # path of each JPEG written
    capture_finished = Signal(int)     # how many pictures this session wrote
    dataset_chosen = Signal(str)
    _write_done = Signal(str, object, str)  # path, thumbnail (BGR array) or None, error message

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # pictures are written in the order they were taken
        self._latest_frame: np.ndarray | None = None
        self._frame_serial = 0        # counts live frames, so a picture is never the same frame twice
        self._taken_serial = -1
        self._stale_since: float | None = None
        self._last_preview = 0.0
        self._countdown_left = 0
        self._requested = 0       # pictures asked for in this session
        self._taken = 0           # frames handed to the writer
        self._written = 0         # frames on disk
        self._pending = 0         # frames being written
        self._capturing = False
        self.saved_paths: list[Path] = []
        self._write_done.connect(self._on_write_done)

        self._countdown_timer = QTimer(self)
        self._countdown_timer.setInterval(1000)
        self._countdown_timer.timeout.connect(self._countdown_tick)
        self._capture_timer = QTimer(self)
        self._capture_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._capture_timer.timeout.connect(self._take_picture)

        self._build_ui()
        self._restore_settings()
        # Only now: restoring one field must not save the others before they are restored.
        for spin in (self.count_spin, self.countdown_spin):
            spin.valueChanged.connect(self._save_settings)
        self.interval_spin.valueChanged.connect(self._save_settings)
        self._update_controls()

    # ------------------------------------------------------------------------------------ layout
    def _build_ui(self) -> None:
        self.dataset_field = FolderField("Dataset:", "dataset folder: pictures are saved in its images/ folder",
                                         "Choose or create a dataset folder")
        self.dataset_field.chosen.connect(lambda _path: self._on_dataset_edited())
        self.dataset_edit = self.dataset_field.edit
        self.target_label = QLabel()
        self.target_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 10_000)
        self.count_spin.setSuffix(" pictures")
        self.interval_spin = QDoubleSpinBox()
        self.interval_spin.setRange(0.05, 60.0)
        self.interval_spin.setDecimals(2)
        self.interval_spin.setSingleStep(0.1)
        self.interval_spin.setSuffix(" s apart")
        self.countdown_spin = QSpinBox()
        self.countdown_spin.setRange(0, 30)
        self.countdown_spin.setSuffix(" s countdown")
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start_capture)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_capture)
        controls = QHBoxLayout()
        for widget in (QLabel("Take"), self.count_spin, self.interval_spin, self.countdown_spin):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.start_button)
        controls.addWidget(self.stop_button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%v / %m")
        self.status_label = QLabel(
            "Move around while pictures are taken, and let some show no face at all: "
            "the detector also needs to learn what “no face” looks like."
        )
        self.status_label.setWordWrap(True)
        self.countdown_label = QLabel()
        self.countdown_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.countdown_label.font()
        font.setPointSize(28)
        font.setBold(True)
        self.countdown_label.setFont(font)

        self.live_view = QLabel("No live picture yet: start a camera or video source.")
        self.live_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.live_view.setMinimumSize(320, 240)
        self.live_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.live_view.setStyleSheet("background: #202020; color: #d0d0d0;")
        self.last_view = QLabel("The last picture taken appears here.")
        self.last_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.last_view.setMinimumSize(240, 180)
        self.last_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.last_view.setStyleSheet("background: #202020; color: #d0d0d0;")
        views = QHBoxLayout()
        live_col = QVBoxLayout()
        live_col.addWidget(QLabel("Live"))
        live_col.addWidget(self.live_view, 1)
        last_col = QVBoxLayout()
        last_col.addWidget(QLabel("Last taken"))
        last_col.addWidget(self.last_view, 1)
        views.addLayout(live_col, 3)
        views.addLayout(last_col, 2)

        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListView.ViewMode.IconMode)
        self.thumbnails.setFlow(QListView.Flow.LeftToRight)
        self.thumbnails.setWrapping(False)
        self.thumbnails.setIconSize(THUMBNAIL_SIZE)
        self.thumbnails.setFixedHeight(THUMBNAIL_SIZE.height() + 40)
        self.thumbnails.setMovement(QListView.Movement.Static)

        layout = QVBoxLayout(self)
        layout.addWidget(self.dataset_field)
        layout.addWidget(self.target_label)
        layout.addLayout(controls)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.countdown_label)
        layout.addLayout(views, 1)
        layout.addWidget(self.thumbnails)

    # ------------------------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = self.settings
        self.dataset_edit.setText(read_str(s, keys.DATASET))
        self.count_spin.setValue(read_int(s, SETTINGS_COUNT, DEFAULT_COUNT))
        self.interval_spin.setValue(read_float(s, SETTINGS_INTERVAL, DEFAULT_INTERVAL_S))
        self.countdown_spin.setValue(read_int(s, SETTINGS_COUNTDOWN, DEFAULT_COUNTDOWN_S))
        self._show_target()

    @Slot()
    def _save_settings(self) -> None:
        self.settings.setValue(SETTINGS_COUNT, self.count_spin.value())
        self.settings.setValue(SETTINGS_INTERVAL, self.interval_spin.value())
        self.settings.setValue(SETTINGS_COUNTDOWN, self.countdown_spin.value())

    def images_folder(self) -> Path | None:
        """Where pictures go: ``DATASET/images`` (the tutorial's ``data/images``)."""
        text = self.dataset_edit.text().strip()
        return Path(text) / "images" if text else None

    def _show_target(self) -> None:
        folder = self.images_folder()
        self.target_label.setText(f"Pictures are saved in {folder}" if folder else "Choose a dataset folder.")

    def set_dataset(self, path: str | Path) -> None:
        self.dataset_edit.setText(str(path))
        self._on_dataset_edited()

    @Slot()
    def _on_dataset_edited(self) -> None:
        text = self.dataset_edit.text().strip()
        self.settings.setValue(keys.DATASET, text)
        self._show_target()
        self._update_controls()
        if text:
            self.dataset_chosen.emit(text)

    # ------------------------------------------------------------------------------------ frames
    @Slot(object)
    def on_frame(self, frame_bgr: np.ndarray) -> None:
        """Keep the newest live frame (the next picture taken is this one) and show it."""
        if frame_bgr is None or frame_bgr.ndim not in (2, 3) or frame_bgr.size == 0:
            return
        self._latest_frame = frame_bgr
        self._frame_serial += 1
        now = time.monotonic()
        if self.isVisible() and now - self._last_preview >= PREVIEW_MIN_INTERVAL_S:
            self._last_preview = now
            self._show_image(self.live_view, frame_bgr)

    @staticmethod
    def _show_image(label: QLabel, frame_bgr: np.ndarray) -> None:
        size = label.size()
        pixmap = QPixmap.fromImage(bgr_to_qimage(frame_bgr)).scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        label.setPixmap(pixmap)

    # ------------------------------------------------------------------------------------ capture
    def is_capturing(self) -> bool:
        return self._capturing

    @Slot()
    def start_capture(self) -> None:
        """Check the folder, then count down and take ``count`` pictures ``interval`` apart."""
        if self._capturing:
            return
        folder = self.images_folder()
        if folder is None:
            self._set_status("Choose a dataset folder first.", error=True)
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._set_status(f"{folder}: cannot create the pictures folder: {exc.strerror or exc}", error=True)
            return
        self._save_settings()
        self._capturing = True
        self._requested = self.count_spin.value()
        self._taken = self._written = 0
        self.progress_bar.setRange(0, self._requested)
        self.progress_bar.setValue(0)
        self._countdown_left = self.countdown_spin.value()
        self._update_controls()
        if self._countdown_left > 0:
            self._show_countdown()
            self._countdown_timer.start()
        else:
            self._begin_taking()

    def _show_countdown(self) -> None:
        self.countdown_label.setText(f"{self._countdown_left}…")
        self._set_status(f"Get ready: taking {self._requested} pictures in {self._countdown_left} s.")

    @Slot()
    def _countdown_tick(self) -> None:
        self._countdown_left -= 1
        if self._countdown_left > 0:
            self._show_countdown()
        else:
            self._countdown_timer.stop()
            self._begin_taking()

    def _begin_taking(self) -> None:
        self.countdown_label.setText("")
        self._capture_timer.start(round(self.interval_spin.value() * 1000))
        self._take_picture()

    @Slot()
    def _take_picture(self) -> None:
        if not self._capturing:
            return
        frame = self._latest_frame
        if frame is None:
            self._finish(f"No live picture to take: start a camera or video source first "
                         f"({self._written} of {self._requested} saved).", error=True)
            return
        if self._frame_serial == self._taken_serial:  # no new frame since the last picture
            now = time.monotonic()
            self._stale_since = self._stale_since or now
            if now - self._stale_since > max(STALE_SOURCE_S, 3 * self.interval_spin.value()):
                self._finish(f"The live source stopped sending pictures ({self._written} of {self._requested} "
                             "saved).", error=True)
            return
        self._stale_since = None
        self._taken_serial = self._frame_serial
        folder = self.images_folder()
        path = folder / unique_picture_name()
        self._taken += 1
        self._pending += 1
        self._set_status(f"Taking picture {self._taken} of {self._requested} …")
        frame = frame.copy()  # the capture may reuse its buffer; the writer needs a stable one

        def write() -> None:
            try:
                save_jpeg(frame, path)
                height, width = frame.shape[:2]
                scale = min(THUMBNAIL_SIZE.width() / width, THUMBNAIL_SIZE.height() / height)
                thumbnail = cv2.resize(frame, (max(1, round(width * scale)), max(1, round(height * scale))),
                                       interpolation=cv2.INTER_AREA)
            except Exception as exc:  # a full disk, a read-only folder: told to the user, not a crash
                self._write_done.emit(str(path), None, str(exc) or type(exc).__name__)
            else:
                self._write_done.emit(str(path), thumbnail, "")

        self._pool.start(write)
        self._show_image(self.last_view, frame)
        if self._taken >= self._requested:
            self._capture_timer.stop()

    @Slot(str, object, str)
    def _on_write_done(self, path: str, thumbnail: object, error: str) -> None:
        self._pending -= 1
        if error:
            self._finish(f"Stopped: {error}", error=True)
            return
        self._written += 1
        self.saved_paths.append(Path(path))
        self.progress_bar.setValue(self._written)
        item = QListWidgetItem(QIcon(QPixmap.fromImage(bgr_to_qimage(thumbnail))), f"#{len(self.saved_paths)}")
        item.setToolTip(path)
        self.thumbnails.insertItem(0, item)
        while self.thumbnails.count() > MAX_THUMBNAILS:
            self.thumbnails.takeItem(self.thumbnails.count() - 1)
        self.picture_saved.emit(path)
        if self._capturing and self._written >= self._requested:
            self._finish(f"Saved {self._written} pictures in {self.images_folder()}.")

    @Slot()
    def stop_capture(self) -> None:
        if self._capturing:
            self._finish(f"Stopped: {self._written} of {self._requested} pictures saved.")

    def _finish(self, message: str, error: bool = False) -> None:
        was_capturing = self._capturing
        self._capturing = False
        self._countdown_timer.stop()
        self._capture_timer.stop()
        self.countdown_label.setText("")
        self._set_status(message, error=error)
        self._update_controls()
        if was_capturing:
            self.capture_finished.emit(self._written)

    def _update_controls(self) -> None:
        self.start_button.setEnabled(not self._capturing and self.images_folder() is not None)
        self.stop_button.setEnabled(self._capturing)
        for widget in (self.dataset_edit, self.count_spin, self.interval_spin, self.countdown_spin):
            widget.setEnabled(not self._capturing)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b00020;" if error else "")

    def shutdown(self) -> None:
        """Stop taking pictures and let the ones already taken reach the disk."""
        self._capturing = False
        self._countdown_timer.stop()
        self._capture_timer.stop()
        self._pool.waitForDone(10_000)

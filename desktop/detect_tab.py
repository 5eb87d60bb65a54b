"""The Detect tab: a live view of a camera, video file or picture folder, boxed by the current model.

The tab owns the live pipeline (capture and inference workers, the model loader). The UI thread
only takes finished pictures out of a mailbox and paints them, and reads counters four times a
second for the status line, so the window stays responsive whatever the camera and model do.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QObject,
    QRectF,
    QSettings,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop import settings as keys
from desktop.detector_state import PRETRAINED, BannerKind, ModelState, status_line
from desktop.kept_frames import FrameKeeper, KeepControls
from desktop.model_loading import ModelLoading
from desktop.recording import Recording
from desktop.retiring import Retiring
from desktop.runtime import runtime_text
from desktop.settings import read_bool, read_float, read_str
from desktop.source_picker import SourcePicker
from desktop.sources import FrameSource, SourceError, camera_index, open_source
from desktop.threshold_control import ThresholdControl
from desktop.workers import (
    SHUTDOWN_WAIT_MS,
    CameraScanner,
    CaptureWorker,
    DetectorLoader,
    FrameResult,
    InferenceWorker,
    redrawn,
)
from training.data import SUGGEST_MIN_SCORE
from training.inference import ClassicFaceFinder

ERROR_STYLE = "QFrame#banner { background: #fde2e1; border: 1px solid #d9534f; border-radius: 4px; } QLabel { color: #5a1411; }"
INFO_STYLE = "QFrame#banner { background: #e8f1fb; border: 1px solid #6aa0d8; border-radius: 4px; } QLabel { color: #12324f; }"
NOTICE_STYLE = "QFrame#banner { background: #fff4d6; border: 1px solid #e0a800; border-radius: 4px; } QLabel { color: #4a3800; }"


class FrameView(QWidget):
    """Paints the newest picture scaled to fit, keeping its shape, with a text when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._placeholder = ""
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def set_placeholder(self, text: str) -> None:
        """The text shown while there is no picture (and the picture is cleared)."""
        self._placeholder = text
        self._image = None
        self.update()

    def placeholder(self) -> str:
        return self._placeholder

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if self._image is None or self._image.isNull():
            painter.setPen(Qt.GlobalColor.lightGray)
            painter.drawText(self.rect().adjusted(20, 20, -20, -20),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        scale = min(self.width() / self._image.width(), self.height() / self._image.height())
        width, height = self._image.width() * scale, self._image.height() * scale
        target = QRectF((self.width() - width) / 2, (self.height() - height) / 2, width, height)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self._image)


class Banner(QFrame):
    """A one-line message with an optional action button and busy bar (errors, notices, progress)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # "busy" animation
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.button = QPushButton()
        self.button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.busy)
        layout.addWidget(self.button)
        self.hide()

    def show_message(self, text: str, style: str, button: str | None = None, busy: bool = False) -> None:
        self.label.setText(text)
        self.setStyleSheet(style)
        self.button.setVisible(button is not None)
        if button:
            self.button.setText(button)
        self.busy.setVisible(busy)
        self.show()

    def text(self) -> str:
        return self.label.text()


class DetectTab(QWidget):
    """Live detection on a chosen source with the current model; without one, the pretrained face detector
    (the classic finder where that cannot be loaded)."""

    frame_captured = Signal(object)  # every live frame the UI takes (BGR ndarray): for the Collect tab
    detector_changed = Signal(object)  # the user's Detector now in use, or None (pretrained or classic finder)

    def __init__(self, settings: QSettings, parent: QWidget | None = None, *, realtime: bool = True) -> None:
        super().__init__(parent)
        self.settings = settings
        self.realtime = realtime
        self.source_spec = read_str(settings, keys.SOURCE, keys.DEFAULT_SOURCE)
        self.capture: CaptureWorker | None = None
        self._retiring = Retiring(self)  # workers asked to stop, kept alive until they finish
        self.models = ModelLoading(settings, self._retiring.add, self)  # the detector, loaded in the background
        self.detector_state = self.models.state  # what it detects with, and what the tab says about it
        self._last_result: FrameResult | None = None
        self._source_running = False
        self._capture_paused = False
        self.frames_shown = 0  # counters a user (and the tests) can watch
        self.boxes_drawn = 0  # frames shown with at least one face boxed

        self.inference = InferenceWorker(
            self,
            threshold=read_float(settings, keys.THRESHOLD, keys.DEFAULT_THRESHOLD, 0.0, 1.0),
            smoothing=read_bool(settings, keys.SMOOTHING, True),
        )
        self.inference.result_available.connect(self._show_result)
        self.models.loading.connect(self._update_status)
        self.models.loaded.connect(self._on_detector_loaded)
        self.models.failed.connect(self._update_status)
        self.inference.detection_floor = SUGGEST_MIN_SCORE  # a kept frame suggests the faces it nearly missed
        # Keep frame (K) and the optional "keep unsure frames" mode (desktop.kept_frames), into the shared dataset.
        self.keeper = FrameKeeper(lambda: read_str(self.settings, keys.DATASET, ""), parent=self)
        self._build_ui()
        self.detector_state.changed.connect(self._show_detector_state)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(250)
        self.status_timer.timeout.connect(self._update_status)

    # --- layout ----------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.source_picker = SourcePicker(self.source_spec)  # "Source: [list] [⟳]" (desktop.source_picker)
        self.source_combo, self.scan_button = self.source_picker.combo, self.source_picker.scan_button
        self.source_picker.chosen.connect(self.open_source)
        self.scan_button.clicked.connect(self.scan_cameras)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setToolTip("Play a video file or picture folder again when it ends")
        self.loop_box.setChecked(read_bool(self.settings, keys.LOOP, False))
        self.loop_box.toggled.connect(self._on_loop_toggled)
        self.play_button = QPushButton("Stop")
        self.play_button.clicked.connect(self._on_play_clicked)
        self.model_label = QLabel("Model: —")
        self.open_model_button = QPushButton("Open model…")
        self.open_model_button.clicked.connect(self.choose_model)

        top = QHBoxLayout()
        top.addWidget(self.source_picker)
        top.addWidget(self.loop_box)
        top.addWidget(self.play_button)
        top.addStretch(1)
        top.addWidget(self.model_label)
        top.addWidget(self.open_model_button)

        self.model_banner = Banner()
        self.model_banner.button.clicked.connect(self._on_model_banner_button)
        self.source_banner = Banner()
        self.source_banner.button.clicked.connect(self.retry)
        self.retry_button = self.source_banner.button

        self.view = FrameView()
        self.view.set_placeholder("Starting…")

        self.threshold_control = ThresholdControl(self.inference.threshold, self.inference.smoothing)
        self.threshold_control.threshold_changed.connect(self._on_threshold_changed)
        self.threshold_control.smoothing_changed.connect(self._on_smoothing_toggled)
        self.threshold_slider, self.threshold_label, self.smoothing_box = (
            self.threshold_control.slider, self.threshold_control.label, self.threshold_control.smoothing_box)
        self.recording = Recording(self.settings, self.inference, self.last_result,
                                   lambda: self.capture.source.fps if self.capture is not None else None, self)
        self.snapshot_button, self.record_button = self.recording.snapshot_button, self.recording.record_button
        self.notice_label = QLabel()
        self.notice_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.recording.notice.connect(self.notice_label.setText)
        self.notice_label.setWordWrap(True)
        self.keeping = KeepControls(self.keeper, lambda: (self._last_result, self.inference.detector,
                                                          self.inference.threshold), self)
        self.keeper.message.connect(self._on_keeper_message)
        self.keep_action, self.keep_button, self.unsure_box = (self.keeping.action, self.keeping.button,
                                                               self.keeping.unsure_box)

        controls = QHBoxLayout()
        controls.addWidget(self.threshold_control, 1)
        controls.addSpacing(12)
        controls.addWidget(self.snapshot_button)
        controls.addWidget(self.record_button)
        controls.addSpacing(12)
        controls.addWidget(self.keep_button)
        controls.addWidget(self.unsure_box)

        self.status_label = QLabel("")
        # wraps rather than widening the window: the line grows with the face count, device and model names
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setStyleSheet("color: palette(dark);")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.model_banner)
        layout.addWidget(self.source_banner)
        layout.addWidget(self.view, 1)
        layout.addLayout(controls)
        layout.addWidget(self.notice_label)
        layout.addWidget(self.status_label)
        self._set_frame_buttons_enabled(False)
        # One "Open model…" in view at a time: the banner's, when it offers one, else the top row's.
        for widget in (self.model_banner, self.model_banner.button):
            widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.ShowToParent, QEvent.Type.HideToParent) and (
                watched is self.model_banner or watched is self.model_banner.button):
            banner_offers = self.model_banner.isVisibleTo(self) and self.model_banner.button.isVisibleTo(self)
            self.open_model_button.setVisible(not banner_offers)
        return super().eventFilter(watched, event)

    # --- starting ----------------------------------------------------------------------------
    def start(self, source: str | None = None, model: str | None = None) -> None:
        """Open the source and the model: the ones given, else the remembered ones (camera 0, and the pretrained
        face detector while there is no model)."""
        if not self.inference.isRunning():
            self.inference.start()
        self.status_timer.start()
        self.open_source(source if source is not None else self.source_spec)
        remembered = read_str(self.settings, keys.LAST_MODEL, "")
        if model:
            self.load_model(model)
        elif remembered and Path(remembered).is_file():
            self.load_model(remembered)
        else:
            self.use_pretrained_detector()
            if remembered:
                self.notice_label.setText(f"The last model used, {remembered}, is no longer there.")
        self.scan_cameras()

    def open_source(self, spec: str | int | FrameSource) -> None:
        """Switch the live view to a camera index, a video file or a picture folder (or a ready FrameSource)."""
        self._retire_capture()
        self.source_banner.hide()
        self._last_result = None
        self._set_frame_buttons_enabled(False)
        if isinstance(spec, FrameSource):
            source = spec
        else:
            self.source_spec = str(spec)
            self.source_picker.show_source(self.source_spec)
            try:
                source = open_source(self.source_spec, loop=self.loop_box.isChecked())
            except SourceError as exc:
                self._show_source_problem(str(exc))
                return
            self.settings.setValue(keys.SOURCE, self.source_spec)  # remembered only once it names a source
        self.view.set_placeholder(f"Opening {source.name}…")
        self.inference.reset_counters()
        capture = CaptureWorker(source, realtime=self.realtime, parent=self)
        capture.add_sink(self.inference.submit)
        capture.opened.connect(self._on_source_opened)
        capture.frame_available.connect(self._on_live_frame)
        capture.failed.connect(self._on_source_failed)
        capture.ended.connect(self._on_source_ended)
        capture.set_paused(self._capture_paused)
        self.capture = capture
        self._source_running = True
        self.play_button.setText("Stop")
        capture.start()

    def stop_source(self) -> None:
        """Stop the live view (the last picture stays on screen)."""
        self._retire_capture()
        self.play_button.setText("Play")
        self.source_banner.hide()

    def retry(self) -> None:
        """Open the current source again (after a fault, or to replay a video)."""
        self.open_source(self.source_spec)

    def _retire_capture(self) -> None:
        """Ask the capture thread to stop without waiting for it (a camera read can block a while)."""
        if self.capture is not None:
            self.recording.stop()
            self._retiring.add(self.capture)
            self.capture = None
        self._source_running = False

    # --- source signals (queued from the capture thread) ---------------------------------------
    @Slot(str, float)
    def _on_source_opened(self, name: str, fps: float) -> None:
        if self.sender() is not self.capture:
            return
        self.view.set_placeholder(f"Waiting for the first picture from {name}…")

    @Slot()
    def _on_live_frame(self) -> None:
        capture = self.capture
        if self.sender() is not capture or capture is None:
            return
        frame = capture.take_frame()
        if frame is not None:
            self.frame_captured.emit(frame)

    def _mark_source_stopped(self) -> None:
        """The source failed or ended: Play starts it again, and a recording is finished."""
        self._source_running = False
        self.play_button.setText("Play")
        self.recording.stop()

    @Slot(str)
    def _on_source_failed(self, message: str) -> None:
        if self.sender() is not self.capture:
            return
        self._mark_source_stopped()
        self._show_source_problem(message)

    @Slot(str)
    def _on_source_ended(self, message: str) -> None:
        if self.sender() is not self.capture:
            return
        self._mark_source_stopped()
        self.source_banner.show_message(html.escape(message), INFO_STYLE, button="Play again")

    def _show_source_problem(self, message: str) -> None:
        self.source_banner.show_message(f"<b>No picture.</b> {html.escape(message)}", ERROR_STYLE, button="Retry")
        if self._last_result is None:
            self.view.set_placeholder(message)

    # --- results -----------------------------------------------------------------------------
    @Slot()
    def _show_result(self) -> None:
        result = self.inference.take_result()
        if result is None:
            return
        self._last_result = result
        self.frames_shown += 1
        if result.shown is not None:
            self.boxes_drawn += 1
        self.view.set_image(result.image)
        if not self.snapshot_button.isEnabled():
            self._set_frame_buttons_enabled(True)
        self.keeping.observe(result, self.inference.detector, self.inference.threshold)

    def last_result(self) -> FrameResult | None:
        return self._last_result

    # --- model -------------------------------------------------------------------------------
    @property
    def model_state(self) -> ModelState:
        """NONE, LOADING, CLASSIC or MODEL (a str: ``tab.model_state == "model"`` holds)."""
        return self.detector_state.state

    @property
    def model_path(self) -> str | None:
        """The model file in use (None: none, the pretrained detector or the classic finder)."""
        return self.detector_state.model_path

    @property
    def loader(self) -> DetectorLoader | None:
        """The model loader thread at work (None: none)."""
        return self.models.loader

    def load_model(self, path: str) -> None:
        """Load a .keras model in the background; the current detector keeps running meanwhile."""
        self.models.load(str(path))

    def use_pretrained_detector(self) -> None:
        """Detect with the pretrained face detector (no model of the user's own yet); the classic finder
        stands in, saying why, when it cannot be loaded."""
        self.models.load(PRETRAINED)

    def use_classic_finder(self) -> None:
        """Use the classic face finder as the live detector (no model, and no pretrained detector)."""
        self.models.load(None)

    @Slot(object, object)
    def _on_detector_loaded(self, detector: Any, users_model: Any) -> None:
        self.inference.set_detector(detector)
        note = getattr(detector, "runtime_note", None)
        if note:  # TensorFlow stands in for a light runtime: why, in words (the status line says it short)
            self.notice_label.setText(f"Running the model in TensorFlow: {note}.")
        if "score_threshold" in ({} if isinstance(detector, ClassicFaceFinder) else detector.metadata):
            # The threshold chosen on validation when the model was trained (the pretrained one's own): the best start.
            self.threshold_slider.setValue(round(detector.threshold * 100))
        self.detector_changed.emit(users_model)  # None: not the user's model (the pretrained one, the classic finder)
        self._redraw_last()
        self._update_status()  # now, not at the next status tick: the label above already names the model

    @Slot()
    def _show_detector_state(self) -> None:
        """Render the detector state: the model label and the model banner."""
        state = self.detector_state
        self.model_label.setText(state.label)
        self.model_label.setToolTip(state.tooltip)
        banner = state.banner
        if banner.kind is BannerKind.HIDDEN:
            self.model_banner.hide()
        else:
            style = {BannerKind.BUSY: INFO_STYLE, BannerKind.NOTICE: NOTICE_STYLE, BannerKind.ERROR: ERROR_STYLE}
            self.model_banner.show_message(banner.text, style[banner.kind], button=banner.button,
                                           busy=banner.kind is BannerKind.BUSY)

    def current_detector(self) -> Any:
        return self.inference.detector

    @Slot()
    def choose_model(self) -> None:
        start = self.model_path or read_str(self.settings, keys.LAST_MODEL, "") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a FaceTracker model", start,
                                              "FaceTracker models (*.keras *.onnx *.tflite);;Keras (*.keras);;"
                                              "ONNX (*.onnx);;TFLite / LiteRT (*.tflite);;All files (*)")
        if path:
            self.load_model(path)

    @Slot()
    def _on_model_banner_button(self) -> None:
        self.choose_model()

    # --- controls ----------------------------------------------------------------------------
    @Slot()
    def choose_video(self) -> bool:
        """Ask for a video file and show it (the source list and the File menu); False if cancelled."""
        return self.source_picker.choose_video()

    @Slot()
    def choose_picture_folder(self) -> bool:
        """Ask for a folder of pictures and show it (the source list and the File menu); False if cancelled."""
        return self.source_picker.choose_picture_folder()

    def cameras(self) -> list[int]:
        """The camera indexes found by the last scan (0 always listed: the usual webcam)."""
        return self.source_picker.cameras()

    @Slot()
    def scan_cameras(self) -> None:
        """Look for cameras in the background and list them in the source menu."""
        camera = camera_index(self.source_spec)
        skip = {camera} if camera is not None and self._source_running else set()
        scanner = CameraScanner(skip=skip, parent=self)
        scanner.found.connect(self.source_picker.set_cameras)
        self.scan_button.setEnabled(False)
        self._retiring.add(scanner)  # it finishes on its own; kept until then
        scanner.start()

    @Slot(bool)
    def _on_loop_toggled(self, checked: bool) -> None:
        self.settings.setValue(keys.LOOP, checked)
        if self.capture is not None:
            self.capture.source.loop = checked

    @Slot()
    def _on_play_clicked(self) -> None:
        if self._source_running:
            self.stop_source()
        else:
            self.retry()

    @Slot(int)
    @Slot(float)
    def _on_threshold_changed(self, threshold: float) -> None:
        self.inference.set_threshold(threshold)
        self.settings.setValue(keys.THRESHOLD, threshold)
        if not self._source_running:
            self._redraw_last()

    @Slot(bool)
    def _on_smoothing_toggled(self, checked: bool) -> None:
        self.inference.set_smoothing(checked)
        self.settings.setValue(keys.SMOOTHING, checked)

    def _redraw_last(self) -> None:
        """Draw the last frame again (threshold changed while nothing plays): cheap, one frame."""
        if self._last_result is not None and not self._source_running:
            self._last_result = redrawn(self._last_result, self.inference.threshold, self.inference.detector)
            self.view.set_image(self._last_result.image)

    def _set_frame_buttons_enabled(self, enabled: bool) -> None:
        """Snapshot, record and keep need a frame on screen."""
        self.recording.set_enabled(enabled)
        self.keep_action.setEnabled(enabled)

    def set_active(self, active: bool) -> None:
        """Run the model only while the tab is shown (the camera keeps feeding the Collect tab)."""
        self.inference.set_enabled(active)

    def set_capture_paused(self, paused: bool) -> None:
        """Stop reading the source while no tab needs frames (Label, Train), keeping it open."""
        self._capture_paused = paused
        if self.capture is not None:
            self.capture.set_paused(paused)

    # --- keeping frames (desktop.kept_frames) ----------------------------------------------------
    @Slot(str, bool)
    def _on_keeper_message(self, text: str, error: bool) -> None:
        self.notice_label.setText(text)
        self.notice_label.setStyleSheet("color: #b00020;" if error else "")
        self._update_status()

    # --- snapshot and recording (desktop.recording) ------------------------------------------------
    @Slot()
    def snapshot(self) -> Path | None:
        """Save the picture on screen (box included) as a PNG; the file is written in the background."""
        return self.recording.snapshot()

    # --- status ------------------------------------------------------------------------------
    @Slot()
    def _update_status(self) -> None:
        self.status_label.setText(self.status_text())
        if self.inference.error and not self.model_banner.isVisible():
            self.model_banner.show_message(html.escape(self.inference.error), ERROR_STYLE, button="Open model…")

    def status_text(self) -> str:
        """The status line: source and its fps, faces on the picture shown, inference time, dropped frames,
        device, model."""
        if self.capture is not None:
            source, live = self.capture.source.name, self.capture.source.live
        else:
            source, live = _source_name(self.source_spec), camera_index(self.source_spec) is not None
        running = self.capture is not None and self._source_running
        line = status_line(
            source, live, running, self.capture.frames_per_second() if running else 0.0,
            self.inference.inference_ms(), self.inference.dropped,
            runtime_text(self.inference.detector), self.detector_state.status_part(),
        )
        kept = self.keeper.status_part()
        line = f"{line}  ·  {kept}" if kept else line
        result = self._last_result
        if result is None or self.inference.detector is None:
            return line
        head, separator, rest = line.partition("  ·  ")  # the faces go right after the source
        return f"{head}{separator}{face_count_text(result.face_count)}{separator}{rest}"

    # --- closing -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every worker and wait for them: called when the window closes."""
        self.status_timer.stop()
        self.recording.stop()
        self._retire_capture()
        self.models.shutdown()
        self._retiring.wait_all(SHUTDOWN_WAIT_MS)
        self.inference.stop()
        self.keeper.shutdown()  # kept frames being written
        QThreadPool.globalInstance().waitForDone(5000)  # snapshots being written


def face_count_text(count: int) -> str:
    """"no face", "1 face", "3 faces": the status line's count of the faces on the picture shown."""
    if count == 0:
        return "no face"
    return f"{count} face" if count == 1 else f"{count} faces"


def _source_name(spec: str) -> str:
    return f"Camera {camera_index(spec)}" if camera_index(spec) is not None else Path(spec).name


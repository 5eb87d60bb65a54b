"""The live pipeline's threads: capture, inference, model loading, camera scanning, recording.

Frames flow capture thread -> inference thread -> UI thread through one-slot mailboxes
(:class:`LatestSlot`), never through a queue: when a stage is slower than the one before it, the
older frame is dropped (and counted), so what the window shows is at most one frame old.
Each mailbox raises a Qt signal only when it goes from empty to full, so the UI thread's event
queue cannot fill up either.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from desktop.detector_state import PRETRAINED
from desktop.face_tracks import FaceTracks, Track, preload_matcher
from desktop.imaging import bgr_to_qimage
from desktop.sources import FrameSource, SourceError, list_cameras
from training.core import (
    BOX_COLOUR_BGR,
    CLASSIC_BOX_COLOUR_BGR,
    MODEL_LABEL,
    PRETRAINED_BOX_COLOUR_BGR,
    FaceDetector,
    draw_detections,
    filtered_native_stderr,
)
from training.inference import PRETRAINED_TAG

T = TypeVar("T")

CAMERA_SILENCE_S = 2.0  # a camera that gives no frame for this long is reported as stopped
WARM_UP_FRAME_SHAPE = (480, 640, 3)


class LatestSlot(Generic[T]):
    """A one-item mailbox: ``put`` replaces what is there (counting it as dropped), ``take`` empties it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; return True when the slot was empty (the reader should be told)."""
        with self._condition:
            was_empty = self._item is None
            if not was_empty:
                self.dropped += 1
            self._item = item
            self._condition.notify()
            return was_empty

    def take(self, timeout: float | None = None) -> T | None:
        """Return and remove the item; wait up to ``timeout`` seconds for one (no wait when None)."""
        with self._condition:
            if self._item is None and timeout:
                self._condition.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        with self._condition:
            self._item = None


@dataclass(frozen=True)
class FrameResult:
    """One processed frame, ready to show."""

    frame: np.ndarray  # the captured BGR frame, untouched
    detection: Any  # the detector's best Detection, or None (no detector yet / no face found)
    shown: Any  # the first face drawn (tracked box, best score first), or None when nothing was drawn
    image: QImage  # the frame with every face in ``faces`` drawn, as a Qt image
    annotated: np.ndarray  # the same picture as BGR pixels (snapshots, recordings)
    inference_ms: float  # time in the detector, 0 when there was none
    index: int  # 1-based count of frames processed
    detections: tuple = ()  # every Detection the detector gave (a single-face model's even under the threshold)
    faces: tuple[Track, ...] = ()  # the tracked faces drawn, best score first (``Track.detection`` is what is drawn)
    tracking_ms: float = 0.0  # time spent matching and smoothing the tracks

    @property
    def face_count(self) -> int:
        """Faces drawn on this frame (the status line's "3 faces")."""
        return len(self.faces)


class VideoRecorder:
    """Writes annotated frames to a video file (MJPG ``.avi`` or mp4v ``.mp4``), resizing if needed."""

    def __init__(self, path: str | os.PathLike, fps: float, frame_size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        fourcc = "mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), float(fps), self.frame_size)
        if not self._writer.isOpened():
            raise OSError(f"{self.path}: cannot write a video here (codec {fourcc} unavailable or folder not writable)")
        self.frames_written = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        if (frame_bgr.shape[1], frame_bgr.shape[0]) != self.frame_size:
            frame_bgr = cv2.resize(frame_bgr, self.frame_size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame_bgr)
        self.frames_written += 1

    def close(self) -> None:
        self._writer.release()


class CaptureWorker(QThread):
    """Reads a :class:`FrameSource` in its own thread and hands each frame on.

    Frames go to the ``sinks`` (called in this thread; they must be quick and thread-safe, like
    :meth:`InferenceWorker.submit`) and to a one-slot mailbox for the UI thread
    (``frame_available`` then :meth:`take_frame`). Video files and picture folders are paced to
    their frame rate unless ``realtime`` is False (tests, benchmarks).
    """

    opened = Signal(str, float)  # source name, frames per second (0 when the source does not say)
    frame_available = Signal()
    failed = Signal(str)  # a message for the user; the source is closed
    ended = Signal(str)  # a video or picture folder reached its end

    def __init__(self, source: FrameSource, *, realtime: bool = True, parent=None) -> None:
        super().__init__(parent)
        self.source = source
        self.realtime = realtime
        self.frames_captured = 0
        self._frame_times: deque[float] = deque(maxlen=240)
        self._slot: LatestSlot[np.ndarray] = LatestSlot()
        self._sinks: list[Callable[[np.ndarray], Any]] = []
        self._paused = False

    def add_sink(self, sink: Callable[[np.ndarray], Any]) -> None:
        """Call ``sink(frame)`` in the capture thread for every frame (add before ``start()``)."""
        self._sinks.append(sink)

    def take_frame(self) -> np.ndarray | None:
        """The newest frame not yet taken (UI thread)."""
        return self._slot.take()

    def frames_per_second(self) -> float:
        """Frames read per second over the last two seconds (0 when stopped or paused)."""
        return _rate(self._frame_times)

    def set_paused(self, paused: bool) -> None:
        """Stop reading without closing the source (the camera stays open, a video keeps its place)."""
        self._paused = paused

    def stop(self) -> None:
        """Ask the thread to finish and wait for it (the source is closed by the thread)."""
        self.requestInterruption()
        self.wait()

    def _sleep(self, seconds: float) -> None:
        """Sleep in short steps so that stop() is honoured quickly."""
        deadline = time.perf_counter() + seconds
        while not self.isInterruptionRequested():
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def run(self) -> None:
        source = self.source
        try:
            source.open()
        except SourceError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # an OpenCV backend error, a permission problem...
            self.failed.emit(f"{source.name}: could not be opened ({type(exc).__name__}: {exc})")
            return
        try:
            self.opened.emit(source.name, float(source.fps or 0.0))
            self._read_loop(source)
        except Exception as exc:
            self.failed.emit(f"{source.name}: stopped with an error ({type(exc).__name__}: {exc})")
        finally:
            source.close()

    def _read_loop(self, source: FrameSource) -> None:
        period = 1.0 / source.fps if (self.realtime and source.fps) else 0.0
        next_due = time.perf_counter()
        last_frame_at = time.perf_counter()
        while not self.isInterruptionRequested():
            if self._paused:
                self._sleep(0.05)
                next_due = last_frame_at = time.perf_counter()
                continue
            frame = source.read()
            now = time.perf_counter()
            if frame is None:
                if not source.live:
                    self.ended.emit(self._end_message(source))
                    return
                if now - last_frame_at > CAMERA_SILENCE_S:
                    self.failed.emit(
                        f"{source.name} stopped delivering frames (unplugged, or taken by another program?). "
                        "Check it and press Retry."
                    )
                    return
                self._sleep(0.02)
                continue
            last_frame_at = now
            self.frames_captured += 1
            self._frame_times.append(now)
            for sink in self._sinks:
                sink(frame)
            if self._slot.put(frame):
                self.frame_available.emit()
            if period:
                next_due += period
                if next_due < now - period:  # fell behind (slow disk, paused machine): do not race to catch up
                    next_due = now
                self._sleep(next_due - time.perf_counter())

    @staticmethod
    def _end_message(source: FrameSource) -> str:
        skipped = getattr(source, "skipped", [])
        extra = f" ({len(skipped)} unreadable picture(s) skipped)" if skipped else ""
        return f"{source.name} ended{extra}. Press Play again, or tick Loop to play it in a loop."


class InferenceWorker(QThread):
    """Runs the current detector on the newest submitted frame, tracks its faces, draws them and makes
    the Qt image.

    Frames submitted while the detector is busy replace each other in a one-slot inbox; every
    replaced frame is counted in :attr:`dropped`. The detector is a
    :class:`training.core.detection.FaceDetector` (a :class:`training.inference.detector.Detector` or the
    classic face finder): a multi-face one reports every face above the live threshold (``detect_all``), a
    single-face model (``multi_face`` False) its one answer (``detect``: its score is drawn whatever the
    threshold). The faces go through :class:`~desktop.face_tracks.FaceTracks`, so each keeps a
    steady box. With no detector set, frames are shown without a box.
    """

    result_available = Signal()

    def __init__(self, parent=None, *, threshold: float = 0.5, smoothing: bool = True) -> None:
        super().__init__(parent)
        self._inbox: LatestSlot[np.ndarray] = LatestSlot()
        self._outbox: LatestSlot[FrameResult] = LatestSlot()
        self._lock = threading.Lock()
        self._detector: FaceDetector | None = None
        self._new_detector = False
        self._recorder: VideoRecorder | None = None
        self._tracks = FaceTracks(alpha=0.5 if smoothing else 1.0)
        self._reset_tracks = False
        self._timings_ms: deque[float] = deque(maxlen=60)
        self._tracking_ms: deque[float] = deque(maxlen=60)
        self._result_times: deque[float] = deque(maxlen=120)
        self.threshold = float(threshold)
        #: Detections down to this score are reported in ``FrameResult.detections`` even under the threshold
        #: (None: only faces), so a kept frame can suggest the faces the model nearly missed
        #: (``desktop.kept_frames``); only faces above the threshold are tracked and drawn.
        self.detection_floor: float | None = None
        self.smoothing = bool(smoothing)
        self.processed = 0
        self.enabled = True
        self.error: str | None = None  # the last detector error, shown by the tab

    # --- called from other threads -------------------------------------------------------------
    def submit(self, frame: np.ndarray) -> None:
        """Offer a frame (any thread); it replaces an unprocessed one, which counts as dropped."""
        if self.enabled:
            self._inbox.put(frame)

    def set_enabled(self, enabled: bool) -> None:
        """Process frames or ignore them (the Detect tab is hidden: save the CPU)."""
        self.enabled = bool(enabled)
        if not enabled:
            self._inbox.clear()

    @property
    def dropped(self) -> int:
        return self._inbox.dropped

    def take_result(self) -> FrameResult | None:
        """The newest processed frame not yet shown (UI thread)."""
        return self._outbox.take()

    def set_detector(self, detector: FaceDetector | None) -> None:
        with self._lock:
            self._detector = detector
            self._new_detector = True  # the worker resets its tracks and timings on the next frame
            self.error = None

    @property
    def detector(self) -> FaceDetector | None:
        return self._detector

    def set_threshold(self, threshold: float) -> None:
        self.threshold = float(threshold)

    def set_smoothing(self, enabled: bool) -> None:
        self.smoothing = bool(enabled)  # the worker gives its tracks the new smoothing on the next frame

    def start_recording(self, recorder: VideoRecorder) -> None:
        with self._lock:
            self._recorder = recorder

    def stop_recording(self) -> VideoRecorder | None:
        with self._lock:
            recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.close()
        return recorder

    def reset_counters(self) -> None:
        """A new source: counters from zero, and its faces are new faces (the tracks start again)."""
        self._inbox.clear()
        self._inbox.dropped = 0
        self.processed = 0
        self._timings_ms.clear()
        self._tracking_ms.clear()
        self._result_times.clear()
        with self._lock:
            self._reset_tracks = True

    def inference_ms(self) -> tuple[float, float] | None:
        """Median and worst detector time over the last frames, or None before the first."""
        timings = list(self._timings_ms)
        return (statistics.median(timings), max(timings)) if timings else None

    def tracking_ms(self) -> tuple[float, float] | None:
        """Median and worst time spent tracking (matching and smoothing) over the last frames."""
        timings = list(self._tracking_ms)
        return (statistics.median(timings), max(timings)) if timings else None

    def results_per_second(self) -> float:
        """Processed frames per second over the last two seconds."""
        return _rate(self._result_times)

    def stop(self) -> None:
        self.requestInterruption()
        self.wait()
        self.stop_recording()

    # --- the worker thread ---------------------------------------------------------------------
    def run(self) -> None:
        while not self.isInterruptionRequested():
            frame = self._inbox.take(timeout=0.05)
            if frame is None:
                continue
            try:
                result = self.process(frame)
            except Exception as exc:  # never let one bad frame end the live view
                self.error = f"A frame could not be shown: {type(exc).__name__}: {exc}"
                continue
            if self._outbox.put(result):
                self.result_available.emit()

    def process(self, frame: np.ndarray) -> FrameResult:
        """Detect, track, draw and convert one frame (the whole per-frame work, in this thread)."""
        with self._lock:
            detector, recorder, new_detector = self._detector, self._recorder, self._new_detector
            reset_tracks = self._reset_tracks or new_detector
            self._new_detector = self._reset_tracks = False
        if new_detector:
            self._timings_ms.clear()
            self._tracking_ms.clear()
        if reset_tracks:
            self._tracks.reset()
        threshold = self.threshold
        detections: list = []
        elapsed_ms = 0.0
        if detector is not None:
            started = time.perf_counter()
            try:
                if detector.multi_face:  # down to the floor: a kept frame suggests the faces it nearly missed
                    floor = self.detection_floor
                    detections = list(detector.detect_all(frame, threshold=threshold if floor is None
                                                          else min(threshold, floor)))
                else:  # a single-face model: detect() gives its score even under the threshold
                    detection = detector.detect(frame)
                    detections = [] if detection is None else [detection]
            except Exception as exc:  # a detector fault must not kill the live view
                self.error = f"The detector failed on a frame: {type(exc).__name__}: {exc}"
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            self._timings_ms.append(elapsed_ms)
        started = time.perf_counter()
        self._tracks.alpha = 0.5 if self.smoothing else 1.0
        tracks = self._tracks.update([d for d in detections if d.is_face(threshold)])
        faces = _faces_to_draw(tracks, threshold)
        tracking_ms = (time.perf_counter() - started) * 1000.0
        self._tracking_ms.append(tracking_ms)
        label, colour = box_style(detector)
        annotated = draw_detections(frame, [face.detection for face in faces], threshold, label=label, colour=colour)
        if recorder is not None:
            recorder.write(annotated)
        self.processed += 1
        self._result_times.append(time.perf_counter())
        best = max(detections, key=lambda d: d.score) if detections else None
        return FrameResult(frame, best, faces[0].detection if faces else None, bgr_to_qimage(annotated), annotated,
                           elapsed_ms, self.processed, tuple(detections), faces, tracking_ms)


def redrawn(last: FrameResult, threshold: float, detector: FaceDetector | None) -> FrameResult:
    """The last frame drawn again at a new threshold (the slider moved while nothing plays): cheap, one frame.

    The tracked faces still above the threshold keep their steady boxes; a detection that was under the old
    threshold (so never tracked) and is above the new one is drawn as detected (id 0).
    """
    tracked = {face.raw_box for face in last.faces if face.missed == 0}
    faces = [face for face in last.faces if face.score > threshold]
    faces += [Track(0, tuple(d.box), tuple(d.box), float(d.score), 1, 0, True) for d in last.detections
              if d.is_face(threshold) and tuple(float(v) for v in d.box) not in tracked]
    faces.sort(key=lambda face: (-face.score, face.id))
    label, colour = box_style(detector)
    annotated = draw_detections(last.frame, [face.detection for face in faces], threshold, label=label,
                                colour=colour)
    return FrameResult(last.frame, last.detection, faces[0].detection if faces else None, bgr_to_qimage(annotated),
                       annotated, last.inference_ms, last.index, last.detections, tuple(faces), last.tracking_ms)


def box_style(detector: FaceDetector | None) -> tuple[str | None, tuple[int, int, int]]:
    """The tag and colour of a detector's boxes (its ``label``), so no one takes a stand-in for their own model:
    the user's model green ("face 0.93"), the pretrained detector blue ("face (pretrained) 0.91"), the classic
    finder and other stand-ins amber ("face (classic) 1.00")."""
    if detector is None or detector.label == MODEL_LABEL:
        return None, BOX_COLOUR_BGR
    if detector.label == PRETRAINED_TAG:
        return PRETRAINED_TAG, PRETRAINED_BOX_COLOUR_BGR
    return detector.label, CLASSIC_BOX_COLOUR_BGR


def _faces_to_draw(tracks: list[Track], threshold: float) -> tuple[Track, ...]:
    """The visible tracks scoring above the threshold (the slider may have moved since), best score first."""
    return tuple(sorted((t for t in tracks if t.visible and t.score > threshold), key=lambda t: (-t.score, t.id)))


def _rate(times: deque[float], window_s: float = 2.0) -> float:
    """Events per second among the timestamps of the last ``window_s`` seconds (0 when fewer than two)."""
    now = time.perf_counter()
    recent = [t for t in list(times) if now - t <= window_s]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


# The extension modules whose loading holds the GIL longest (the first pulls in libtensorflow_cc
# and libtensorflow_framework, 1.2 GB; the profiler plugin is 88 MB), relative to the package.
_TENSORFLOW_NATIVE_LIBRARIES = (
    "python/platform/_pywrap_cpu_feature_guard.so",
    "python/profiler/internal/_pywrap_profiler_plugin.so",
    "python/_pywrap_tfe.so",
    "python/client/_pywrap_tf_session.so",
)


def preload_tensorflow_native_libraries() -> None:
    """dlopen TensorFlow's big native libraries through ctypes, which lets other threads run meanwhile.

    ``import tensorflow`` loads about 1.3 GB of shared libraries while holding Python's GIL, which
    froze the window for 0.5-1.3 s when a model loaded in the background. A ctypes call releases
    the GIL, and the import then finds the libraries already loaded. Linux only; any failure
    just leaves the work to the import.
    """
    if not sys.platform.startswith("linux") or "tensorflow" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or spec.origin is None:
            return
        dlopen = ctypes.CDLL(None).dlopen
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        dlopen.restype = ctypes.c_void_p
        root = Path(spec.origin).parent
        with filtered_native_stderr():  # loading them prints TensorFlow's start-up lines (see quiet_tensorflow_logs)
            for library in _TENSORFLOW_NATIVE_LIBRARIES:
                if (root / library).is_file():
                    dlopen(os.fsencode(root / library), os.RTLD_NOW | os.RTLD_LOCAL)
    except (OSError, AttributeError, ImportError, ValueError):
        pass


@contextmanager
def _no_full_collections() -> Iterator[None]:
    """Hold Python's cyclic GC off while TensorFlow and a model load, then freeze what they made.

    With TensorFlow loaded a full collection walks millions of objects: 100-400 ms with the GIL held,
    on whichever thread happens to allocate (the UI thread included). What the load creates lives
    as long as the app, so ``gc.freeze()`` moves it out of every later collection's way.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def load_detector(model_path: str | os.PathLike | None, *, runtime: str = "auto",
                  on_progress: Callable[[str], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Any:
    """Build the live detector: a model file's, the pretrained face detector's (``model_path``
    :data:`~desktop.detector_state.PRETRAINED`), or the classic finder (None).

    A ``.keras`` model and the pretrained detector run from their light copy (:mod:`desktop.runtime`:
    LiteRT, made once by an export child, kept for the next time) unless ``runtime`` or the machine says
    TensorFlow; when no copy can be made, TensorFlow runs the model here and the detector's
    ``runtime_note`` says why. ``.tflite`` and ``.onnx`` files run in their runtime. ``on_progress`` hears
    what takes a while (the export); ``should_stop`` (polled) abandons it: :class:`~desktop.runtime.LoadCancelled`.

    Slow (an export the first time, a model load, one warm-up frame so the first live frame is not late):
    call it from :class:`DetectorLoader`. Raises ``training.core.detection.ModelFileError`` for a file
    that is not a FaceTracker model.
    """
    from desktop import runtime as light

    if model_path is None:
        with _no_full_collections():
            from training.inference import ClassicFaceFinder

            return ClassicFaceFinder()
    path = str(model_path)
    if path != PRETRAINED and Path(path).suffix.lower() in light.SUFFIXES.values():
        if Path(path).suffix.lower() == ".tflite" and light.light_format("litert") is None:
            _import_tensorflow()  # TensorFlow's own tf.lite interpreter stands in for LiteRT
        with _no_full_collections():
            from training.inference import Detector

            return _warmed(Detector.from_file(path))
    source = light.pretrained_source() if path == PRETRAINED else light.keras_source(path)  # checks, no TensorFlow
    fmt = light.light_format(runtime)
    choice, note = light.choose_runtime(runtime, fmt, light.recorded_tensorflow_device())
    if choice == "light":
        try:
            detector = light.open_light_detector(source, fmt, on_progress=on_progress or (lambda _text: None),
                                                 should_stop=should_stop or (lambda: False))
        except light.PrepareError as exc:
            note = f"no {light.RUNTIME_NAMES[fmt]} copy: {exc}"
        else:
            with _no_full_collections():
                return _warmed(detector)
    if on_progress is not None:
        on_progress(f"loading {source.label} in TensorFlow…")
    detector = _tensorflow_detector(path)
    detector.runtime_note = note
    return detector


def _warmed(detector: Any) -> Any:
    """The detector after one blank frame: the first live frame is then as fast as the rest."""
    detector.detect(np.zeros(WARM_UP_FRAME_SHAPE, dtype=np.uint8))
    return detector


def _import_tensorflow() -> None:
    """TensorFlow imported in this process: its libraries first, with the GIL free, then the import behind
    the process's one lock (the Label tab's engines import it on their own threads)."""
    preload_tensorflow_native_libraries()
    from training.core import import_tensorflow

    import_tensorflow()


def _tensorflow_detector(model_path: str) -> Any:
    """A model file or the pretrained detector run by TensorFlow in this process (the GPU when it has one)."""
    _import_tensorflow()
    with _no_full_collections():
        if model_path == PRETRAINED:
            from training.inference import pretrained_detector

            detector = pretrained_detector()  # raises WeightsUnavailableError when its weights are missing
        else:
            from training.inference import Detector

            detector = Detector.from_file(model_path)
        return _warmed(detector)


#: How long closing the window waits for a worker thread before leaving it behind (see :func:`abandon`).
SHUTDOWN_WAIT_MS = 3000
#: Worker threads still running when the window closed (a read that never returns); kept referenced, so
#: Qt never destroys a running thread, and the process ends without waiting for them (:func:`exit_code`).
_abandoned: list[QThread] = []


def abandon(worker: QThread) -> None:
    """Leave a worker thread that does not finish in time: the window closes anyway, the process does not
    wait for it at exit."""
    worker.setParent(None)
    _abandoned.append(worker)


def abandoned_workers() -> int:
    """How many worker threads were left running when the window closed."""
    return sum(1 for worker in _abandoned if worker.isRunning())


class DetectorLoader(QThread):
    """Loads a model file, or builds the pretrained detector (``model_path`` PRETRAINED) or the classic finder
    (None), off the UI thread."""

    loaded = Signal(object)  # the detector
    failed = Signal(str, str)  # model path, message naming the file and the problem
    progress = Signal(str)  # what takes a while now ("preparing best.keras for LiteRT …")

    def __init__(self, model_path: str | None, parent=None, *, runtime: str = "auto") -> None:
        super().__init__(parent)
        self.model_path = model_path
        self.runtime = runtime

    def run(self) -> None:
        from desktop.runtime import LoadCancelled

        try:
            detector = load_detector(self.model_path, runtime=self.runtime, on_progress=self.progress.emit,
                                     should_stop=self.isInterruptionRequested)
        except LoadCancelled:  # another model was chosen, or the window closed: its export child is stopped
            return
        except Exception as exc:
            self.failed.emit(self.model_path or "", _load_error_message(self.model_path, exc))
            return
        self.loaded.emit(detector)
        # The face tracks' solver (scipy.optimize: 0.2-2 s to import), here in the background rather than on
        # the first frame with faces; after the detector is handed over, which it does not delay.
        preload_matcher()


def _load_error_message(model_path: str | None, exc: Exception) -> str:
    if model_path is None:
        return f"The classic face finder could not start: {type(exc).__name__}: {exc}"
    if model_path == PRETRAINED:  # the cause names the missing or damaged weights file
        cause = exc.__cause__ or exc
        return f"{type(cause).__name__}: {cause}"
    from training.core import ModelFileError

    if isinstance(exc, ModelFileError):  # its message already names the file and the problem
        return str(exc)
    return f"{model_path}: could not be loaded as a FaceTracker model ({type(exc).__name__}: {exc})"


class CameraScanner(QThread):
    """Looks for cameras off the UI thread (opening each takes a moment)."""

    found = Signal(list)

    def __init__(self, max_index: int = 5, skip: set[int] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.max_index = max_index
        self.skip = frozenset(skip or ())

    def run(self) -> None:
        try:
            cameras = list_cameras(self.max_index, skip=self.skip)
        except Exception:  # a broken camera driver: report none rather than crash
            cameras = []
        self.found.emit(cameras)

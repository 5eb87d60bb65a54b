"""FaceTracker's main window and the ``facetracker`` command.

``facetracker [--source CAMERA_INDEX|VIDEO_FILE|IMAGE_FOLDER] [--model FILE.keras]`` opens the
window straight on that source and model (the remembered ones without options). TensorFlow is
not imported here: the window appears first and the model loads in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QInputDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import settings as keys
from desktop.collect_tab import CollectTab
from desktop.detect_tab import DetectTab
from desktop.label_tab import LabelTab
from desktop.platform_check import check_platform
from desktop.runtime import CHILD_FLAG as RUNTIME_CHILD_FLAG
from desktop.runtime import RUNTIMES
from desktop.settings import make_settings, read_int
from desktop.train_tab import TrainTab
from desktop.workers import abandoned_workers
from training.core import quiet_tensorflow_logs

APP_NAME = "FaceTracker"
TRAIN_CHILD_FLAG = "--train-child"  # the frozen app runs the training CLI as its own child process
SELF_CHECK_FLAG = "--self-check"
FIRST_SIZE = QSize(1100, 780)  # the window at first start, shrunk to fit smaller screens
#: Room the window manager takes around the window (title bar, borders) when it is sized to fit the screen.
WINDOW_FRAME = QSize(16, 48)
MAX_CAMERA_INDEX = 63  # "Open camera → Other…": V4L2 numbers /dev/video0 … /dev/video63


def icon_path() -> Path | None:
    """The app icon: beside the code in a checkout, under ``assets/`` in a PyInstaller bundle."""
    roots = [Path(__file__).resolve().parent.parent]
    if hasattr(sys, "_MEIPASS"):
        roots.insert(0, Path(sys._MEIPASS))
    for root in roots:
        for candidate in (root / "assets" / "facetracker.png", root / "facetracker.png"):
            if candidate.is_file():
                return candidate
    return None


class _PageLayout(QVBoxLayout):
    """Holds one tab page; says it has no height-for-width, so that its scroll area stretches the page to
    the space there is and scrolls only below the page's minimum (with height-for-width, QScrollArea
    asks for the page's preferred height, and scrolls a Detect tab that would fit)."""

    def hasHeightForWidth(self) -> bool:
        return False


class ScrollingTabs(QTabWidget):
    """Tabs whose pages scroll when the window is smaller than a page needs, so that the window fits a
    1366x768 laptop screen whatever a tab shows (the Train tab after a run, both Detect banners).

    Each page sits in a frameless QScrollArea; ``widget``, ``currentWidget``, ``setCurrentWidget`` and
    ``indexOf`` speak of the pages, not of their scroll areas.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pages: list[QWidget] = []

    def addTab(self, page: QWidget, label: str) -> int:  # type: ignore[override]
        holder = QWidget()
        layout = _PageLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(page)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(holder)
        self._pages.append(page)
        return super().addTab(scroll, label)

    def scroll_area(self, index: int) -> QScrollArea | None:
        scroll = super().widget(index)
        return scroll if isinstance(scroll, QScrollArea) else None

    def widget(self, index: int) -> QWidget | None:  # type: ignore[override]
        return self._pages[index] if 0 <= index < len(self._pages) else None

    def currentWidget(self) -> QWidget | None:  # type: ignore[override]
        return self.widget(self.currentIndex())

    def indexOf(self, page: QWidget) -> int:  # type: ignore[override]
        return next((i for i, known in enumerate(self._pages) if known is page), -1)

    def setCurrentWidget(self, page: QWidget) -> None:  # type: ignore[override]
        index = self.indexOf(page)
        if index >= 0:
            self.setCurrentIndex(index)


class MainWindow(QMainWindow):
    """The four tabs (Detect, Collect, Label, Train) and the wiring between them.

    Args:
        settings: where everything is remembered (tests pass an INI file in a temporary folder).
        source, model: what to open at :meth:`start` instead of the remembered ones.
        realtime: play video files at their frame rate (False: as fast as they decode; tests).
    """

    def __init__(self, settings: QSettings, *, source: str | None = None, model: str | None = None,
                 realtime: bool = True, runtime: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        if runtime is not None:  # --runtime: kept for the next starts too (desktop.runtime.RUNTIMES)
            settings.setValue(keys.RUNTIME, runtime)
        self._start_source, self._start_model = source, model
        self._started = False
        self._closed = False
        self._syncing_dataset = False
        self.setWindowTitle(APP_NAME)
        icon = icon_path()
        if icon is not None:
            self.setWindowIcon(QIcon(str(icon)))

        self.detect_tab = DetectTab(settings, realtime=realtime)
        self.collect_tab = CollectTab(settings)
        self.label_tab = LabelTab(settings)
        self.train_tab = TrainTab(settings)
        self.tabs = ScrollingTabs()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.detect_tab, "Detect")
        self.tabs.addTab(self.collect_tab, "Collect")
        self.tabs.addTab(self.label_tab, "Label")
        self.tabs.addTab(self.train_tab, "Train")
        self.setCentralWidget(self.tabs)

        self.detect_tab.frame_captured.connect(self.collect_tab.on_frame)
        self.detect_tab.detector_changed.connect(self.label_tab.set_detector)
        self.detect_tab.detector_changed.connect(self.train_tab.set_model_in_use)  # what a fine-tune starts from
        self.detect_tab.keeper.kept.connect(lambda _kept: self.label_tab.kept_frames_added())
        self.train_tab.model_ready.connect(self.use_trained_model)
        for tab in (self.collect_tab, self.label_tab, self.train_tab):
            tab.dataset_chosen.connect(self._share_dataset)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._build_menu()
        self._restore_window()

    def _build_menu(self) -> None:
        """File: every source the Detect tab can show (what its banner tells a newcomer to open), the
        model, Snapshot and Quit."""
        file_menu = self.menuBar().addMenu("&File")

        def add(text: str, slot: Callable[[], object],
                shortcut: QKeySequence | QKeySequence.StandardKey | None = None) -> QAction:
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
            return action

        self.open_video_action = add("Open &video…", self._detect(self.detect_tab.choose_video))
        self.open_folder_action = add("Open &picture folder…", self._detect(self.detect_tab.choose_picture_folder))
        self.camera_menu = QMenu("Open &camera", self)
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        file_menu.addMenu(self.camera_menu)
        self._fill_camera_menu()
        file_menu.addSeparator()
        self.open_model_action = add("Open &model…", self.detect_tab.choose_model, QKeySequence.StandardKey.Open)
        self.snapshot_action = add("&Snapshot", self.detect_tab.snapshot, QKeySequence("Ctrl+S"))
        file_menu.addSeparator()
        add("&Quit", self.close, QKeySequence.StandardKey.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About FaceTracker", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _detect(self, choose: Callable[[], bool]) -> Callable[[], None]:
        """A File menu action that asks for a source: the Detect tab comes to the front to show it."""

        def run() -> None:
            if choose():
                self.tabs.setCurrentWidget(self.detect_tab)

        return run

    @Slot()
    def _fill_camera_menu(self) -> None:
        """The cameras the last scan found (the Detect tab scans at start and on ⟳), and any other index."""
        self.camera_menu.clear()
        for index in self.detect_tab.cameras():
            action = self.camera_menu.addAction(f"Camera {index}")
            action.triggered.connect(lambda _checked=False, index=index: self.open_camera(index))
        self.camera_menu.addSeparator()
        other = self.camera_menu.addAction("Other index…")
        other.triggered.connect(self._ask_camera_index)

    def open_camera(self, index: int) -> None:
        """Show camera ``index`` in the Detect tab."""
        self.detect_tab.open_source(str(index))
        self.tabs.setCurrentWidget(self.detect_tab)

    @Slot()
    def _ask_camera_index(self) -> None:
        current = self.detect_tab.source_spec
        index, ok = QInputDialog.getInt(self, "Open camera", "Camera index (0 is usually the built-in webcam):",
                                        int(current) if current.isdigit() else 0, 0, MAX_CAMERA_INDEX)
        if ok:
            self.open_camera(index)

    def _restore_window(self) -> None:
        geometry = self.settings.value(keys.WINDOW_GEOMETRY)
        if not (isinstance(geometry, QByteArray | bytes) and self.restoreGeometry(QByteArray(geometry))):
            self.resize(first_size(self.screen().availableGeometry().size() if self.screen() else None))
        tab = read_int(self.settings, keys.WINDOW_TAB, 0)
        self.tabs.setCurrentIndex(tab if 0 <= tab < self.tabs.count() else 0)

    def start(self) -> None:
        """Open the source and the model (once): call after ``show()`` so the window is up first."""
        if self._started:
            return
        self._started = True
        self.detect_tab.start(self._start_source, self._start_model)
        self._on_tab_changed(self.tabs.currentIndex())

    @Slot(str)
    def use_trained_model(self, path: str) -> None:
        """A model the Train tab offers: load it for detection and show the Detect tab."""
        self.detect_tab.load_model(path)
        self.tabs.setCurrentWidget(self.detect_tab)

    @Slot(str)
    def _share_dataset(self, path: str) -> None:
        """One dataset folder for Collect, Label and Train: a choice in one tab reaches the others."""
        if self._syncing_dataset:
            return
        self._syncing_dataset = True
        try:
            for tab in (self.collect_tab, self.label_tab, self.train_tab):
                if tab is not self.sender():
                    tab.set_dataset(path)
        finally:
            self._syncing_dataset = False

    @Slot(int)
    def _on_tab_changed(self, index: int) -> None:
        current = self.tabs.widget(index)
        self.detect_tab.set_active(current is self.detect_tab)
        # Label and Train need no live frames: stop reading the camera (it stays open) to spare the CPU.
        self.detect_tab.set_capture_paused(current not in (self.detect_tab, self.collect_tab))

    def _about(self) -> None:
        QMessageBox.about(self, "About FaceTracker",
                          "<b>FaceTracker</b><br>Build your own real-time face detector: collect pictures, "
                          "label them, train a model and run it live.")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop every worker and child process, and remember the window, before closing."""
        if not self._closed:
            self._closed = True
            self.settings.setValue(keys.WINDOW_GEOMETRY, self.saveGeometry())
            self.settings.setValue(keys.WINDOW_TAB, self.tabs.currentIndex())
            self.hide()  # gone at once, even if a worker needs a moment (a model still loading) to finish
            for tab in (self.detect_tab, self.collect_tab, self.label_tab, self.train_tab):
                tab.shutdown()
            self.settings.sync()
        event.accept()


def first_size(available: QSize | None) -> QSize:
    """The window's size at first start: FIRST_SIZE, shrunk to the screen's free area (a 1366x768 laptop
    with a panel has about 1366x736) less the window manager's frame."""
    if available is None or available.isEmpty():
        return QSize(FIRST_SIZE)
    return FIRST_SIZE.boundedTo(available - WINDOW_FRAME)


def _close_after(window: MainWindow, seconds: float, after_ready: float | None = None) -> None:
    """Close the window after ``seconds``, printing what tests and benchmarks read (hidden ``--quit-after``);
    with ``after_ready`` (hidden ``--quit-after-ready``), already that long after the model became ready.

    Also keeps a 10 ms timer on the UI thread and reports its worst gap: how long the window could
    not have repainted, model loading and TensorFlow's first import included.
    """
    started = time.perf_counter()
    ticks = {"last": started, "worst": 0.0, "shown": started, "model_ready": None}

    def tick() -> None:
        now = time.perf_counter()
        ticks["worst"] = max(ticks["worst"], now - ticks["last"])
        ticks["last"] = now

    heartbeat = QTimer(window)
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(tick)

    def shown() -> None:
        print(f"window shown; event loop running {time.perf_counter() - started:.2f} s after show()", flush=True)
        print(f"window shown at: {time.time():.3f}", flush=True)  # the clock a launcher can compare with
        ticks["last"] = ticks["shown"] = time.perf_counter()
        heartbeat.start()

    def model_ready(detector: object) -> None:
        if detector is not None and ticks["model_ready"] is None:
            ticks["model_ready"] = time.perf_counter() - ticks["shown"]
            if after_ready is not None:
                QTimer.singleShot(round(after_ready * 1000), report_and_close)

    reported = []

    def report_and_close() -> None:
        from desktop.runtime import resident_megabytes, runtime_text, tensorflow_in_process

        if reported:
            return
        reported.append(True)
        heartbeat.stop()
        detect, label = window.detect_tab, window.label_tab
        print(f"status: {detect.status_text()}", flush=True)
        print(f"frames shown: {detect.frames_shown}", flush=True)
        print(f"worst UI timer gap: {ticks['worst'] * 1000:.0f} ms", flush=True)
        if ticks["model_ready"] is not None:
            print(f"model ready: {ticks['model_ready'] * 1000:.0f} ms after the window showed", flush=True)
        print(f"runtime: {runtime_text(detect.current_detector()) or '—'}", flush=True)
        print(f"model banner: {detect.model_banner.text() if detect.model_banner.isVisible() else '—'}", flush=True)
        held = tensorflow_in_process()
        print(f"tensorflow in process: {', '.join(held) if held else 'no'}", flush=True)
        rss = resident_megabytes()
        print(f"resident memory: {f'{rss:.0f} MB' if rss is not None else 'unknown'}", flush=True)
        session = label.session
        engine_errors = [f"{e}: {session.engine_error(e)}" for e in ("mtcnn", "blazeface") if session.engine_error(e)]
        failed = [str(s.error) for s in session.suggestions.values() if getattr(s, "error", None)]
        print(f"label suggestions: {len(session.suggestions) - len(failed)} made, {len(failed)} failed"
              f"{' (' + failed[0] + ')' if failed else ''}; engine {session.engine}; failed engines: "
              f"{'; '.join(engine_errors) or 'none'}", flush=True)
        window.close()

    window.detect_tab.detector_changed.connect(model_ready)
    QTimer.singleShot(0, shown)
    QTimer.singleShot(round(seconds * 1000), report_and_close)


@contextlib.contextmanager
def signals_close(window: QMainWindow) -> Iterator[QTimer]:
    """While inside, SIGINT (Ctrl+C) and SIGTERM close the window as its close button does; on the way
    out the handlers that were there before come back (main() may run in a process that goes on, e.g.
    a test run, where Ctrl+C must raise KeyboardInterrupt again rather than close a closed window).

    Python runs signal handlers only between bytecodes, and Qt's event loop is C++: a heartbeat
    timer (yielded) gives Python a moment five times a second.
    """

    def close_window(signum: int, frame: object) -> None:
        QTimer.singleShot(0, window.close)

    previous = {number: signal.signal(number, close_window) for number in (signal.SIGINT, signal.SIGTERM)}
    heartbeat = QTimer(window)
    heartbeat.setInterval(200)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start()
    try:
        yield heartbeat
    finally:
        heartbeat.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="facetracker",
        description="FaceTracker: build your own real-time face detector (collect, label, train, detect).",
    )
    parser.add_argument("--source", metavar="CAMERA_INDEX|VIDEO_FILE|IMAGE_FOLDER",
                        help="what to show in the Detect tab (default: the last one used, camera 0 at first)")
    parser.add_argument("--model", metavar="FILE.keras",
                        help="the model to detect with (default: the last one used)")
    parser.add_argument("--settings", metavar="FILE.ini",
                        help="keep settings in this INI file instead of the user's configuration")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="what runs a .keras model: auto (a LiteRT copy made once in the background, or "
                        "TensorFlow where it sees a GPU), litert, onnx, or tensorflow; remembered (default: the "
                        "last one, auto at first)")
    parser.add_argument("--verbose", action="store_true",
                        help="let OpenCV and TensorFlow print their own log lines on the terminal (the app "
                        "reports camera and model problems itself)")
    # For smoke tests of a build: close after SECONDS, printing when the window showed and the
    # Detect tab's status line (frames, inference, device, model) just before closing.
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    parser.add_argument("--quit-after-ready", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    return parser.parse_args(list(argv))


def _ensure_std_streams() -> None:
    """Give a windowed bundle (PyInstaller sets ``sys.stdout``/``sys.stderr`` to None there) real streams.

    The training child reports progress as JSON lines on stdout: use the pipe the app handed it
    when there is one, else discard output rather than crash on the first ``print``.
    """
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is not None:
            continue
        try:
            stream = open(fd, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as sys.stdout
        except OSError:
            stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        setattr(sys, name, stream)


def quiet_opencv_logs(verbose: bool = False) -> None:
    """Keep OpenCV's own warnings (``[ WARN:0@0.463] global cap_v4l.cpp ... can't open camera by index``)
    off the terminal: the Detect tab says in its banner when a camera cannot be opened. An
    ``OPENCV_LOG_LEVEL`` the user set, or ``--verbose``, lets them through."""
    if verbose or "OPENCV_LOG_LEVEL" in os.environ:
        return
    os.environ["OPENCV_LOG_LEVEL"] = "ERROR"  # for child processes, and for OpenCV not imported yet
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; ``--train-child ARGS`` runs the training CLI instead (no window)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    _ensure_std_streams()
    quiet_tensorflow_logs()
    if args_list[:1] == [TRAIN_CHILD_FLAG]:
        from training.cli import main as training_main

        return int(training_main(args_list[1:]) or 0)
    if args_list[:1] == [RUNTIME_CHILD_FLAG]:
        from desktop.runtime_child import main as runtime_child_main

        return runtime_child_main(args_list[1:])
    if args_list[:1] == [SELF_CHECK_FLAG]:
        from desktop.self_check import run_self_check

        return run_self_check()
    args = parse_args(args_list)
    quiet_opencv_logs(verbose=args.verbose)
    if args.verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # TensorFlow is imported later, by the model loader
    if QApplication.instance() is None:
        code = check_platform()  # Qt would abort on a missing xcb library: say which, and how to install it
        if code is not None:
            return code

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setOrganizationName(keys.ORGANISATION)
    app.setApplicationName(keys.APPLICATION)
    app.setDesktopFileName("facetracker")
    icon = icon_path()
    if icon is not None:
        app.setWindowIcon(QIcon(str(icon)))
    try:
        settings = make_settings(args.settings)
    except ValueError as exc:
        print(f"facetracker: error: {exc}", file=sys.stderr)
        return 2
    window = MainWindow(settings, source=args.source, model=args.model, runtime=args.runtime)
    with signals_close(window):
        window.show()
        if args.quit_after is not None:  # first, so that its UI timer also watches window.start
            _close_after(window, args.quit_after, args.quit_after_ready)
        QTimer.singleShot(0, window.start)
        code = app.exec()
    if abandoned_workers():  # a thread stuck in a read that never returns: end without waiting for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())

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
from collections.abc import Iterator, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QTabWidget, QWidget

from desktop import settings as keys
from desktop.collect_tab import CollectTab
from desktop.detect_tab import DetectTab
from desktop.label_tab import LabelTab
from desktop.settings import make_settings, read_int
from desktop.train_tab import TrainTab
from desktop.workers import abandoned_workers
from training.device import quiet_tensorflow_logs

APP_NAME = "FaceTracker"
TRAIN_CHILD_FLAG = "--train-child"  # the frozen app runs the training CLI as its own child process
SELF_CHECK_FLAG = "--self-check"


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


class MainWindow(QMainWindow):
    """The four tabs (Detect, Collect, Label, Train) and the wiring between them.

    Args:
        settings: where everything is remembered (tests pass an INI file in a temporary folder).
        source, model: what to open at :meth:`start` instead of the remembered ones.
        realtime: play video files at their frame rate (False: as fast as they decode; tests).
    """

    def __init__(self, settings: QSettings, *, source: str | None = None, model: str | None = None,
                 realtime: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
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
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.detect_tab, "Detect")
        self.tabs.addTab(self.collect_tab, "Collect")
        self.tabs.addTab(self.label_tab, "Label")
        self.tabs.addTab(self.train_tab, "Train")
        self.setCentralWidget(self.tabs)

        self.detect_tab.frame_captured.connect(self.collect_tab.on_frame)
        self.detect_tab.detector_changed.connect(self.label_tab.set_detector)
        self.train_tab.model_ready.connect(self.use_trained_model)
        for tab in (self.collect_tab, self.label_tab, self.train_tab):
            tab.dataset_chosen.connect(self._share_dataset)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._build_menu()
        self._restore_window()

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        actions = [
            ("Open &model…", QKeySequence.StandardKey.Open, self.detect_tab.choose_model),
            ("&Snapshot", QKeySequence("Ctrl+S"), self.detect_tab.snapshot),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ]
        for text, shortcut, slot in actions:
            action = QAction(text, self)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About FaceTracker", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _restore_window(self) -> None:
        geometry = self.settings.value(keys.WINDOW_GEOMETRY)
        if not (isinstance(geometry, QByteArray | bytes) and self.restoreGeometry(QByteArray(geometry))):
            self.resize(1100, 780)
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


def _close_after(window: MainWindow, seconds: float) -> None:
    """Close the window after ``seconds``, printing what tests and benchmarks read (hidden ``--quit-after``).

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
        ticks["last"] = ticks["shown"] = time.perf_counter()
        heartbeat.start()

    def model_ready(detector: object) -> None:
        if detector is not None and ticks["model_ready"] is None:
            ticks["model_ready"] = time.perf_counter() - ticks["shown"]

    def report_and_close() -> None:
        heartbeat.stop()
        print(f"status: {window.detect_tab.status_text()}", flush=True)
        print(f"frames shown: {window.detect_tab.frames_shown}", flush=True)
        print(f"worst UI timer gap: {ticks['worst'] * 1000:.0f} ms", flush=True)
        if ticks["model_ready"] is not None:
            print(f"model ready: {ticks['model_ready'] * 1000:.0f} ms after the window showed", flush=True)
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
    # For smoke tests of a build: close after SECONDS, printing when the window showed and the
    # Detect tab's status line (frames, inference, device, model) just before closing.
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; ``--train-child ARGS`` runs the training CLI instead (no window)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    _ensure_std_streams()
    quiet_tensorflow_logs()
    if args_list[:1] == [TRAIN_CHILD_FLAG]:
        from training.cli import main as training_main

        return int(training_main(args_list[1:]) or 0)
    if args_list[:1] == [SELF_CHECK_FLAG]:
        from desktop.self_check import run_self_check

        return run_self_check()
    args = parse_args(args_list)

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
    window = MainWindow(settings, source=args.source, model=args.model)
    with signals_close(window):
        window.show()
        if args.quit_after is not None:  # first, so that its UI timer also watches window.start
            _close_after(window, args.quit_after)
        QTimer.singleShot(0, window.start)
        code = app.exec()
    if abandoned_workers():  # a thread stuck in a read that never returns: end without waiting for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())

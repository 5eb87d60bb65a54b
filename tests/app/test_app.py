"""The main window as a user meets it: start-up, wiring between tabs, responsiveness, closing, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QSize, QTimer
from PySide6.QtWidgets import QFileDialog, QInputDialog

from desktop import settings as keys
from desktop.app import MainWindow, first_size, main, parse_args
from desktop.detect_tab import NOTICE_STYLE
from desktop.settings import make_settings

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two untrained models (different files), enough for the wiring."""
    from training.model.build import build_model

    folder = tmp_path_factory.mktemp("models")
    first, second = folder / "first.keras", folder / "second.keras"
    build_model("multiface", weights=None, input_size=48).save(first)
    build_model("multiface", weights=None, input_size=32).save(second)
    return first, second


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def open_window(qtbot, settings_file: Path):
    windows = []

    def make(**kwargs) -> MainWindow:
        window = MainWindow(make_settings(settings_file), **kwargs)
        qtbot.addWidget(window)
        window.show()
        window.start()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def test_importing_the_app_does_not_import_tensorflow() -> None:
    code = "import sys, desktop.app; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_command_line_options() -> None:
    args = parse_args(["--source", "2", "--model", "best.keras"])
    assert (args.source, args.model) == ("2", "best.keras")
    assert parse_args([]).source is None


def test_train_child_runs_the_training_cli_without_a_window(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["--train-child", "make-demo-data", str(out), "--count", "6"]) == 0
    assert any(out.rglob("*.jpg"))


def test_window_wires_the_tabs_together(qtbot, open_window, face_video, model_files) -> None:
    first, second = model_files
    window = open_window(source=str(face_video), model=str(first))
    detect, collect, label = window.detect_tab, window.collect_tab, window.label_tab
    detect.loop_box.setChecked(True)
    detect.threshold_slider.setValue(0)
    qtbot.waitUntil(lambda: detect.model_state == "model", timeout=60_000)
    assert "model: first.keras" in detect.status_label.text()  # the status line says so at once
    assert "first.keras" in label.source_label.text()  # the Label tab suggests with the same model
    qtbot.waitUntil(lambda: detect.boxes_drawn > 3, timeout=20_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SCREENSHOTS / "main_window_detect.png"))

    # Live frames reach the Collect tab; the model rests while the Detect tab is hidden.
    window.tabs.setCurrentWidget(collect)
    assert not detect.inference.enabled
    qtbot.waitUntil(lambda: not collect.live_view.pixmap().isNull(), timeout=10_000)
    window.grab().save(str(SCREENSHOTS / "main_window_collect.png"))

    # Label and Train need no camera: capture pauses.
    window.tabs.setCurrentWidget(label)
    qtbot.wait(300)
    captured = detect.capture.frames_captured
    qtbot.wait(400)
    assert detect.capture.frames_captured == captured
    window.grab().save(str(SCREENSHOTS / "main_window_label.png"))
    window.tabs.setCurrentWidget(window.train_tab)
    window.grab().save(str(SCREENSHOTS / "main_window_train.png"))

    # A model the Train tab offers goes to the Detect tab, which comes to the front.
    window.train_tab.model_ready.emit(str(second))
    assert window.tabs.currentWidget() is detect and detect.inference.enabled
    qtbot.waitUntil(lambda: detect.model_path == str(second), timeout=60_000)
    qtbot.waitUntil(lambda: detect.capture.frames_captured > captured + 5, timeout=10_000)


def test_closing_stops_every_worker_and_the_next_start_remembers(qtbot, open_window, settings_file, face_video,
                                                                  model_files) -> None:
    first, _ = model_files
    window = open_window(source=str(face_video), model=str(first))
    detect = window.detect_tab
    detect.threshold_slider.setValue(35)
    detect.smoothing_box.setChecked(False)
    qtbot.waitUntil(lambda: detect.model_state == "model", timeout=60_000)
    window.resize(720, 520)  # inside the offscreen screen (800x600): restoreGeometry clamps
    size = (window.width(), window.height())  # the tabs' minimum height may win over 520
    assert size[0] == 720 and 520 <= size[1] < 780, size  # the user's size, not the first-start 1100x780
    capture, inference = detect.capture, detect.inference
    window.close()
    assert capture.isFinished() and inference.isFinished()
    assert detect.capture is None and detect.loader is None

    again = open_window()  # no options: the remembered source, model, threshold and smoothing
    detect = again.detect_tab
    assert detect.source_spec == str(face_video)
    assert detect.threshold_slider.value() == 35 and not detect.smoothing_box.isChecked()
    assert (again.width(), again.height()) == size
    qtbot.waitUntil(lambda: detect.model_state == "model", timeout=60_000)
    assert detect.model_path == str(first)


#: What a 1366x768 laptop leaves a window: the screen less a desktop panel (GNOME's top bar, 32 px) and
#: the window's title bar (37 px).
LAPTOP_WINDOW = QSize(1366, 768 - 32 - 37)


def test_the_window_fits_a_1366x768_laptop_in_every_tab(qtbot, open_window, tmp_path) -> None:
    """Each tab in its fullest state (both Detect banners, the Train tab's result pictures) in the window a
    1366x768 laptop leaves: the window's minimum fits, no tab scrolls sideways, and only the Train tab
    scrolls down (its contents need about 655 px before a run, 845 after: the pages scroll rather than push
    the window off the screen)."""
    assert first_size(QSize(1366, 768 - 32)).boundedTo(LAPTOP_WINDOW) == first_size(QSize(1366, 768 - 32))
    assert first_size(QSize(2560, 1440)) == QSize(1100, 780)

    window = open_window(source=str(tmp_path / "no such video.mp4"))  # the source banner: an error
    detect = window.detect_tab
    qtbot.waitUntil(lambda: detect.source_banner.isVisible() and detect.model_state != "loading", timeout=60_000)
    detect.model_banner.show_message("<b>No model yet.</b> " + "A long notice that wraps. " * 12, NOTICE_STYLE,
                                     button="Open model…")
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    cv2.imwrite(str(run / "test_predictions.jpg"), np.full((1024, 1024, 3), 90, np.uint8))
    cv2.imwrite(str(run / "pr_curve.png"), np.full((500, 1500, 3), 250, np.uint8))
    window.resize(LAPTOP_WINDOW)

    minimum = window.minimumSizeHint()
    assert minimum.width() <= LAPTOP_WINDOW.width() and minimum.height() <= LAPTOP_WINDOW.height(), minimum
    for with_results in (False, True):
        assert window.train_tab.result_pictures.show_run(run if with_results else None) is with_results
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            qtbot.wait(50)
            scroll, name = window.tabs.scroll_area(index), window.tabs.tabText(index)
            assert window.size() == LAPTOP_WINDOW
            assert scroll.horizontalScrollBar().maximum() == 0, (name, window.tabs.widget(index).minimumSizeHint())
            if name != "Train":
                assert scroll.verticalScrollBar().maximum() == 0, (name, window.tabs.widget(index).minimumSizeHint())
    assert window.tabs.currentWidget() is window.train_tab and window.train_tab.result_pictures.isVisible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SCREENSHOTS / "main_window_laptop_train_after_a_run.png"))


def test_the_file_menu_opens_videos_picture_folders_and_cameras(qtbot, open_window, face_video, tmp_path,
                                                                 monkeypatch) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    cv2.imwrite(str(pictures / "one.png"), np.full((120, 160, 3), 128, np.uint8))
    window = open_window(source=str(face_video))
    detect = window.detect_tab
    file_menu = window.menuBar().actions()[0].menu()
    assert [a.text() for a in file_menu.actions() if not a.isSeparator()] == [
        "Open &video…", "Open &picture folder…", "Open &camera", "Open &model…", "&Snapshot", "&Quit"]

    # Each source the Detect tab's banner mentions, from the File menu; the Detect tab comes to the front.
    answers = {"video": (str(face_video), ""), "folder": str(pictures)}
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *args, **kwargs: answers["video"]))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *args, **kwargs: answers["folder"]))
    window.tabs.setCurrentWidget(window.train_tab)
    window.open_folder_action.trigger()
    assert detect.source_spec == str(pictures) and window.tabs.currentWidget() is detect
    qtbot.waitUntil(lambda: detect.frames_shown > 0, timeout=20_000)
    window.tabs.setCurrentWidget(window.label_tab)
    window.open_video_action.trigger()
    assert detect.source_spec == str(face_video) and window.tabs.currentWidget() is detect

    # A cancelled dialog changes nothing.
    answers.update(video=("", ""), folder="")
    window.tabs.setCurrentWidget(window.collect_tab)
    window.open_folder_action.trigger()
    window.open_video_action.trigger()
    assert detect.source_spec == str(face_video) and window.tabs.currentWidget() is window.collect_tab

    # Cameras: the ones the scan found (camera 0 always listed), and any other index.
    window.camera_menu.aboutToShow.emit()
    cameras = [a.text() for a in window.camera_menu.actions() if not a.isSeparator()]
    assert cameras[0] == "Camera 0" and cameras[-1] == "Other index…"
    next(a for a in window.camera_menu.actions() if a.text() == "Camera 0").trigger()
    assert detect.source_spec == "0" and window.tabs.currentWidget() is detect
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *args, **kwargs: (7, True)))
    window.camera_menu.actions()[-1].trigger()
    assert detect.source_spec == "7"
    qtbot.waitUntil(lambda: detect.source_banner.isVisible(), timeout=20_000)  # no camera 7: said in the tab


def test_first_start_uses_camera_0_and_the_pretrained_detector(qtbot, open_window) -> None:
    window = open_window()
    detect = window.detect_tab
    assert detect.source_spec == "0" and detect.source_combo.currentText() == "Camera 0"
    qtbot.waitUntil(lambda: detect.model_state == "pretrained", timeout=120_000)
    assert detect.model_label.text() == "Model: pretrained (BlazeFace), not yet yours"
    # This machine has no camera: the user is told so, with a Retry.
    qtbot.waitUntil(lambda: detect.source_banner.isVisible(), timeout=10_000)
    assert "No camera found at index 0" in detect.source_banner.text() and detect.retry_button.isVisible()
    qtbot.wait(300)  # let the layout settle around the two messages
    assert "stopped" in detect.status_label.text() and "pretrained (BlazeFace), not yet yours" in detect.status_label.text()
    window.grab().save(str(SCREENSHOTS / "main_window_first_start.png"))


def timer_gaps_ms(qtbot, duration_ms: int, during=None) -> tuple[list[float], object]:
    """Gaps between the ticks of a 10 ms UI-thread timer over ``duration_ms`` (after ``during()`` starts)."""
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    result = during() if during else None
    last[0] = time.perf_counter()
    timer.start()
    qtbot.wait(duration_ms)
    timer.stop()
    return gaps, result


def test_window_stays_responsive_while_capture_inference_and_model_loading_run(qtbot, open_window, face_video,
                                                                               model_files) -> None:
    """A 10 ms UI timer keeps firing while the video plays, the model loads and then runs.

    Limits, each plus the worst gap of the same timer with nothing running (measured first: on a
    2-core machine the OS alone can hold a thread back): 100 ms once the model runs, 500 ms while it
    loads (Keras deserialising and tracing in the loader thread still slows the UI thread's turns
    at Python's lock: 40-300 ms measured here). TensorFlow is imported first: its one-time import
    holds that lock longer in C code whichever thread runs it; the next test measures it in a fresh app.

    A shared 2-core VM now and then stalls a whole process for a second or more (seen once in a CI
    run, never again in repeats), so a window that misses a limit gets one more, fresh try: work on
    the UI thread misses it every time.
    """
    import tensorflow  # noqa: F401 - see above

    baseline = max(timer_gaps_ms(qtbot, 1000)[0])
    failures = []
    for model_file in model_files:

        def start(model_file: Path = model_file) -> MainWindow:
            window = open_window(source=str(face_video), model=str(model_file))
            window.detect_tab.loop_box.setChecked(True)
            return window

        gaps, window = timer_gaps_ms(qtbot, 3000, during=start)  # model loading, then detection
        detect = window.detect_tab
        qtbot.waitUntil(lambda detect=detect: detect.model_state == "model", timeout=60_000)
        shown = detect.frames_shown
        live_gaps, _ = timer_gaps_ms(qtbot, 1000)
        assert detect.frames_shown > shown + 10, "frames kept coming"
        worst, worst_live = max(gaps), max(live_gaps)
        median = sorted(gaps)[len(gaps) // 2]
        print(f"\nUI timer gaps: idle worst {baseline:.0f} ms; loading + detecting median {median:.1f} ms, "
              f"worst {worst:.0f} ms ({len(gaps)} ticks); detecting only worst {worst_live:.0f} ms")
        window.close()
        failures = [message for broken, message in (
            (worst_live >= 100 + baseline, f"the UI thread was blocked for {worst_live:.0f} ms while detecting"),
            (worst >= 500 + baseline, f"the UI thread was blocked for {worst:.0f} ms while the model loaded"),
        ) if broken]
        if not failures:
            break
    assert not failures, failures


def sigterm_is_caught(pid: int) -> bool:
    """Whether the process has installed its SIGTERM handler (Linux: SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to know when the app is up")
def test_a_fresh_app_never_looks_frozen_while_tensorflow_and_the_model_load(tmp_path: Path, long_face_video: Path,
                                                                           model_files) -> None:
    """The real app in its own process, TensorFlow's first import included: the window never looks hung.

    The bar is 1 s, where a window starts to look hung; the figure printed is the one to watch
    (37-600 ms here). A shared VM sometimes stalls a whole process for a second or more (1.5 s seen
    in CI), so a longer gap still passes when it is under half the time the model took to become
    ready: loading on the UI thread would freeze it for all of that time. One more fresh start if
    both miss. The video outlasts the run, so the model must still be detecting when the app reports.
    """
    for attempt in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "desktop", "--source", str(long_face_video), "--model", str(model_files[0]),
             "--settings", str(tmp_path / f"app{attempt}.ini"), "--quit-after", "10"],
            cwd=REPO, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
        worst = float(lines["worst UI timer gap"].removesuffix(" ms"))
        ready = float(lines["model ready"].split(" ms")[0])
        print(f"\nfresh app: worst UI timer gap {worst:.0f} ms; model ready {ready:.0f} ms after show; "
              f"{lines['status']}")
        assert "long.avi: video" in lines["status"]  # still playing when the app reported
        assert "model: " + model_files[0].name in lines["status"]  # the model did load ...
        assert "inference —" not in lines["status"]  # ... and run on the frames
        assert int(lines["frames shown"]) > 40
        limit = max(1000.0, ready / 2)
        if worst < limit:
            break
    assert worst < limit, f"the window stopped for {worst:.0f} ms while the model took {ready:.0f} ms, twice"


def test_sigterm_closes_the_app_cleanly(tmp_path: Path, face_video: Path) -> None:
    ini = tmp_path / "app.ini"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    process = subprocess.Popen(
        [sys.executable, "-m", "desktop", "--source", str(face_video), "--settings", str(ini)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not sigterm_is_caught(process.pid):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the app never installed its SIGTERM handler"
            time.sleep(0.1)
        time.sleep(1.0)  # the window is up and the video playing
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    for trouble in ("Traceback", "QThread: Destroyed", "Segmentation fault", "Aborted"):
        assert trouble not in stderr, stderr
    saved = make_settings(ini)
    assert saved.value(keys.WINDOW_GEOMETRY) is not None  # the close handler ran
    assert saved.value(keys.SOURCE) == str(face_video)


def test_signals_close_the_window_and_the_old_handlers_come_back(qtbot) -> None:
    """Ctrl+C / SIGTERM close the window as its close button does while the app runs; afterwards the
    process's own handlers are back (Ctrl+C raises KeyboardInterrupt again)."""
    import signal

    from PySide6.QtWidgets import QMainWindow

    from desktop.app import signals_close

    window = QMainWindow()
    qtbot.addWidget(window)
    window.show()
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    with signals_close(window):
        assert all(signal.getsignal(number) is not handler for number, handler in before.items())
        signal.raise_signal(signal.SIGTERM)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
    assert {number: signal.getsignal(number) for number in before} == before


RACE = """
import sys, threading
from desktop.detector_state import PRETRAINED
from desktop.workers import load_detector
from training.core.device import import_tensorflow
errors = []

def detect_tab_loader():  # what DetectorLoader runs at start without a model of the user's, in TensorFlow
    try:
        load_detector(PRETRAINED, runtime="tensorflow")
    except Exception as exc:
        errors.append(f"loader: {type(exc).__name__}: {exc}")

def label_tab_engine():  # what LabelTab._finder_for runs for MTCNN
    try:
        if sys.argv[1] == "guarded":
            import_tensorflow()
        from training.inference.autolabel import PretrainedFaceFinder
        PretrainedFaceFinder()
    except Exception as exc:
        errors.append(f"engine: {type(exc).__name__}: {exc}")

threads = [threading.Thread(target=detect_tab_loader), threading.Thread(target=label_tab_engine)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("errors:", errors)
"""


def test_tensorflow_is_imported_by_one_thread_at_a_time() -> None:
    """The Detect tab's loader (the pretrained detector at start) and the Label tab's engine (MTCNN) import
    TensorFlow on two threads at once in a fresh app. Unguarded, that broke it for the process (a deadlock
    in one thread, "dataset_ops has no attribute 'DatasetV2'" in the other: the app then fell back to the
    classic finder and no model loaded); both go through training.core.device.import_tensorflow now. (Run with
    "unguarded", the script shows the race: it did on 4 of 4 tries on a 2-core machine; not asserted here, as
    a race need not happen on every machine.)"""
    done = subprocess.run([sys.executable, "-c", RACE, "guarded"], capture_output=True, text=True, timeout=300,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "errors: []", done.stdout


def test_the_window_minimum_fits_a_laptop_with_the_train_tab_after_a_run(qtbot, open_window, tmp_path) -> None:
    """Issue 21: the Train tab after a finished run (the verdict in its status line, the log, the result
    pictures) made the window taller than a 1366x768 screen. The window's minimum size hint fits what such a
    laptop leaves a window; the tab scrolls down to its last widget instead, never sideways."""
    run = tmp_path / "runs" / "faces-20260101-120000"
    run.mkdir(parents=True)
    cv2.imwrite(str(run / "test_predictions.jpg"), np.full((1024, 1024, 3), 90, np.uint8))
    cv2.imwrite(str(run / "pr_curve.png"), np.full((500, 1500, 3), 250, np.uint8))
    (run / "best.keras").write_bytes(b"a model")
    window = open_window(source=str(tmp_path / "no such video.mp4"))
    train = window.train_tab
    verdict = ("Your model: AP50 0.81, F1 0.77 over 312 faces in 90 test pictures; classic finder: AP50 0.42, F1 "
               "0.51. It does better than the classic finder on your test pictures, but not on real photographs "
               "(120 faces in 40 frames): AP50 0.30 (classic finder 0.45). It has learned the look of your "
               "training pictures more than faces: add pictures from your own webcam (your room, near and far, "
               "several people) and fewer pasted or look-alike ones.")
    train._on_succeeded({"run_dir": str(run), "best_model": str(run / "best.keras"), "metrics": {
        "epochs_completed": 20, "stop_reason": "finished 20 epochs", "verdict": verdict,
        "test": {"ap50": 0.81}, "test_classic": {"ap50": 0.42}}})
    window.tabs.setCurrentWidget(train)
    qtbot.wait(100)
    assert train.result_pictures.isVisible() and verdict in train.status_label.text()
    assert train.use_button.isEnabled() and train.export_button.isEnabled()

    minimum = window.minimumSizeHint()
    assert minimum.width() <= LAPTOP_WINDOW.width() and minimum.height() <= LAPTOP_WINDOW.height(), minimum
    assert train.minimumSizeHint().height() > LAPTOP_WINDOW.height() - 100, "the tab needs no scrolling? (test stale)"
    window.resize(LAPTOP_WINDOW)
    qtbot.wait(100)
    assert window.size() == LAPTOP_WINDOW
    scroll = window.tabs.scroll_area(window.tabs.indexOf(train))
    assert scroll.horizontalScrollBar().maximum() == 0
    scroll.ensureWidgetVisible(train.result_pictures)
    qtbot.wait(50)
    bottom = train.result_pictures.mapTo(scroll.viewport(), train.result_pictures.rect().bottomLeft()).y()
    assert 0 < bottom <= scroll.viewport().height(), "the result pictures can be scrolled into view"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SCREENSHOTS / "main_window_laptop_train_verdict.png"))

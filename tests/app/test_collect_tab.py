"""The Collect tab, driven through its widgets with frames read from a real video file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt, QTimer

from desktop.collect_tab import CollectTab, unique_picture_name
from training.data.pictures import load_image

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
FRAME_W, FRAME_H, FRAME_COUNT = 160, 120, 24


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture(scope="module")
def video_frames(tmp_path_factory) -> list[np.ndarray]:
    """Frames as the live capture gives them: written to an AVI, then read back with cv2.VideoCapture."""
    path = tmp_path_factory.mktemp("video") / "capture.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (FRAME_W, FRAME_H))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(FRAME_COUNT):
        frame = np.full((FRAME_H, FRAME_W, 3), (40 + 8 * i) % 256, np.uint8)
        frame[:, :, 1] = rng.integers(0, 60)
        cv2.circle(frame, (10 + 5 * i, 60), 18, (200, 200, 255), -1)  # a "face" moving across
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == FRAME_COUNT
    return frames


@pytest.fixture
def feed(qtbot, video_frames):
    """A timer that plays the video into a tab's on_frame at ~50 fps, looping, like the main window's capture."""
    timers = []

    def start(tab: CollectTab) -> QTimer:
        position = {"i": 0}
        timer = QTimer()
        timer.setInterval(20)

        def push():
            tab.on_frame(video_frames[position["i"] % len(video_frames)])
            position["i"] += 1

        timer.timeout.connect(push)
        timer.start()
        timers.append(timer)
        push()
        return timer

    yield start
    for timer in timers:
        timer.stop()


def make_tab(qtbot, settings, dataset: Path | None, count: int, interval: float, countdown: int) -> CollectTab:
    tab = CollectTab(settings)
    qtbot.addWidget(tab)
    tab.resize(900, 620)
    tab.show()
    qtbot.waitExposed(tab)
    if dataset is not None:
        tab.dataset_edit.clear()
        qtbot.keyClicks(tab.dataset_edit, str(dataset))
        qtbot.keyClick(tab.dataset_edit, Qt.Key.Key_Return)  # editingFinished
    tab.count_spin.setValue(count)
    tab.interval_spin.setValue(interval)
    tab.countdown_spin.setValue(countdown)
    return tab


def matches_a_frame(picture: np.ndarray, frames: list[np.ndarray]) -> bool:
    """True when the JPEG on disk is one of the live frames (up to JPEG loss)."""
    return min(float(np.mean(cv2.absdiff(picture, f))) for f in frames) < 4.0


def test_collect_saves_count_pictures_as_unique_jpegs(qtbot, settings, tmp_path, feed, video_frames):
    dataset = tmp_path / "my data"
    tab = make_tab(qtbot, settings, dataset, count=5, interval=0.05, countdown=0)
    feed(tab)
    assert tab.target_label.text().endswith(str(dataset / "images"))

    saved = []
    tab.picture_saved.connect(saved.append)
    with qtbot.waitSignal(tab.capture_finished, timeout=10_000) as finished:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == [5]

    files = sorted((dataset / "images").glob("*.jpg"))
    assert len(files) == 5 and len(set(p.name for p in files)) == 5
    assert sorted(saved) == [str(p) for p in files]
    for path in files:
        picture = load_image(path)
        assert picture.shape == (FRAME_H, FRAME_W, 3)
        assert matches_a_frame(picture, video_frames)
    assert tab.progress_bar.value() == 5 and tab.progress_bar.maximum() == 5
    assert tab.thumbnails.count() == 5
    assert "Saved 5 pictures" in tab.status_label.text()
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()

    # The settings come back in a new tab (a restarted app).
    again = CollectTab(settings)
    qtbot.addWidget(again)
    assert again.dataset_edit.text() == str(dataset)
    assert (again.count_spin.value(), again.interval_spin.value()) == (5, 0.05)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert tab.grab().save(str(SCREENSHOTS / "collect_tab.png"))


def test_countdown_then_stop_keeps_what_was_taken(qtbot, settings, tmp_path, feed):
    dataset = tmp_path / "data"
    tab = make_tab(qtbot, settings, dataset, count=500, interval=0.05, countdown=1)
    feed(tab)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert tab.countdown_label.text() == "1…"
    assert tab.stop_button.isEnabled() and not tab.count_spin.isEnabled()
    assert not list((dataset / "images").glob("*.jpg"))  # nothing before the countdown ends
    qtbot.waitUntil(lambda: len(tab.saved_paths) >= 3, timeout=10_000)
    qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert not tab.is_capturing()
    tab.shutdown()  # lets the writes already started finish
    on_disk = list((dataset / "images").glob("*.jpg"))
    assert 3 <= len(on_disk) < 500
    assert tab.status_label.text().startswith("Stopped:")


def test_without_live_frames_it_says_so(qtbot, settings, tmp_path):
    dataset = tmp_path / "data"
    tab = make_tab(qtbot, settings, dataset, count=3, interval=0.05, countdown=0)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert "No live picture" in tab.status_label.text()
    assert not tab.is_capturing() and not list((dataset / "images").glob("*"))


def test_a_dataset_path_that_is_a_file_is_reported(qtbot, settings, tmp_path, feed):
    blocker = tmp_path / "not a folder"
    blocker.write_text("x")
    tab = make_tab(qtbot, settings, blocker, count=3, interval=0.05, countdown=0)
    feed(tab)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert str(blocker / "images") in tab.status_label.text()
    assert "cannot create" in tab.status_label.text()
    assert not tab.is_capturing()


def test_unique_picture_names_sort_by_time_and_never_repeat():
    names = [unique_picture_name() for _ in range(200)]
    assert len(set(names)) == 200
    assert all(name.endswith(".jpg") for name in names)
    assert names == sorted(names, key=lambda n: n[:22])  # the time stamp leads


def test_a_source_that_stops_sending_is_not_saved_twice(qtbot, settings, tmp_path, video_frames, monkeypatch):
    monkeypatch.setattr("desktop.collect_tab.STALE_SOURCE_S", 0.3)
    dataset = tmp_path / "data"
    tab = make_tab(qtbot, settings, dataset, count=10, interval=0.05, countdown=0)
    tab.on_frame(video_frames[0])  # one frame, then the video ends
    with qtbot.waitSignal(tab.capture_finished, timeout=10_000) as finished:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == [1]
    assert len(list((dataset / "images").glob("*.jpg"))) == 1
    assert "stopped sending pictures" in tab.status_label.text()

"""The Detect tab and its workers, driven through real widgets on real videos (pytest-qt, offscreen).

The model is an untrained FaceTracker model (weights=None, 48 px): its scores mean nothing, but
with the threshold at 0 every frame gets a box, which is what the plumbing tests need.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from desktop import settings as keys
from desktop import workers
from desktop.detect_tab import DetectTab
from desktop.settings import make_settings
from desktop.sources import VideoFileSource
from desktop.workers import CaptureWorker, InferenceWorker, LatestSlot
from training.inference.classic import ClassicFaceFinder

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"



@pytest.fixture
def settings(tmp_path: Path):
    settings = make_settings(tmp_path / "settings.ini")
    settings.setValue(keys.SNAPSHOT_FOLDER, str(tmp_path / "snapshots"))
    settings.setValue(keys.RECORDING_FOLDER, str(tmp_path / "recordings"))
    return settings


@pytest.fixture
def make_tab(qtbot, settings):
    tabs = []

    def make(**kwargs) -> DetectTab:
        tab = DetectTab(settings, **kwargs)
        qtbot.addWidget(tab)
        tab.resize(800, 620)
        tab.show()
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.shutdown()


def wait_until_played(qtbot, tab: DetectTab, timeout: int = 20_000) -> None:
    """Wait for the end of the file and for its last processed frame to be on screen."""

    def done() -> bool:
        capture, inference, last = tab.capture, tab.inference, tab.last_result()
        return (tab.source_banner.isVisible() and capture is not None and last is not None
                and inference.processed + inference.dropped == capture.frames_captured
                and last.index == inference.processed)

    qtbot.waitUntil(done, timeout=timeout)


def wait_for_model(qtbot, tab: DetectTab, state: str = "model", timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: tab.model_state == state, timeout=timeout)


# --- pure parts -------------------------------------------------------------------------------------
def test_latest_slot_keeps_only_the_newest_and_counts_the_rest() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is True  # was empty: tell the reader
    assert slot.put(2) is False
    assert slot.put(3) is False
    assert slot.dropped == 2
    assert slot.take() == 3
    assert slot.take() is None
    threading.Timer(0.05, slot.put, args=(4,)).start()
    started = time.perf_counter()
    assert slot.take(timeout=5.0) == 4  # a waiting reader wakes when a frame comes
    assert time.perf_counter() - started < 2.0


# --- workers --------------------------------------------------------------------------------------
class UnpluggedCamera(VideoFileSource):
    """A "camera" that delivers a few frames of a real video and then nothing, like a pulled cable."""

    live = True


def test_a_camera_that_stops_delivering_is_reported(qtbot, face_video: Path, monkeypatch) -> None:
    monkeypatch.setattr(workers, "CAMERA_SILENCE_S", 0.3)
    worker = CaptureWorker(UnpluggedCamera(face_video), realtime=False)
    with qtbot.waitSignal(worker.failed, timeout=10_000) as failed:
        worker.start()
    worker.wait()
    assert "stopped delivering frames" in failed.args[0]
    assert worker.frames_captured == 40


def test_inference_drops_frames_instead_of_queueing_them(qtbot, face_video: Path, multiface_model_file: Path) -> None:
    """Capture as fast as the file decodes, with a model that is slower: frames are dropped and counted."""
    inference = InferenceWorker(threshold=0.0)
    inference.set_detector(workers.load_detector(multiface_model_file))
    capture = CaptureWorker(VideoFileSource(face_video), realtime=False)
    capture.add_sink(inference.submit)
    inference.start()
    try:
        with qtbot.waitSignal(capture.ended, timeout=20_000):
            capture.start()
        capture.wait()
        qtbot.waitUntil(lambda: inference.processed + inference.dropped == capture.frames_captured, timeout=10_000)
    finally:
        inference.stop()
    assert capture.frames_captured == 40
    assert inference.dropped > 0, "the model keeps up with a free-running decoder?"
    assert inference.processed >= 1
    result = inference.take_result()
    assert result is not None and result.detection is not None and result.shown is not None


# --- the tab --------------------------------------------------------------------------------------
def test_detect_run_over_a_video_draws_boxes_and_moves_the_counters(qtbot, make_tab, face_video, multiface_model_file) -> None:
    tab = make_tab()
    tab.threshold_slider.setValue(0)  # an untrained model: draw whatever the score
    tab.loop_box.setChecked(True)  # keep playing while the model loads
    tab.start(source=str(face_video), model=str(multiface_model_file))
    assert tab.model_state == "loading" and "loading" in tab.model_label.text().lower()
    wait_for_model(qtbot, tab)
    qtbot.waitUntil(lambda: tab.boxes_drawn >= 5, timeout=20_000)

    status = tab.status_text()
    assert "face.avi" in status and "inference" in status and " ms" in status
    assert "dropped" in status and "CPU" in status and "model: multiface.keras" in status
    assert tab.inference.inference_ms() is not None
    result = tab.last_result()
    assert result is not None and result.shown is not None
    assert not np.array_equal(result.annotated, result.frame), "a box was drawn"
    assert tab.view.image() is not None and tab.view.image().width() == 320
    assert tab.settings.value(keys.LAST_MODEL) == str(multiface_model_file)

    # Without Loop the 2-second video ends: a message and a Play again button, which plays it again.
    tab.loop_box.setChecked(False)
    qtbot.waitUntil(lambda: tab.source_banner.isVisible(), timeout=20_000)
    assert "ended" in tab.source_banner.text() and tab.retry_button.text() == "Play again"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.grab().save(str(SCREENSHOTS / "detect_tab_model.png"))
    shown = tab.frames_shown
    qtbot.mouseClick(tab.retry_button, Qt.MouseButton.LeftButton)
    assert not tab.source_banner.isVisible()
    qtbot.waitUntil(lambda: tab.frames_shown > shown + 5, timeout=20_000)


def test_threshold_decides_what_is_drawn(qtbot, make_tab, face_video, multiface_model_file) -> None:
    tab = make_tab(realtime=False)
    tab.smoothing_box.setChecked(False)
    tab.threshold_slider.setValue(0)
    tab.start(source=str(face_video), model=str(multiface_model_file))
    wait_for_model(qtbot, tab)
    # Play the file again now that the model is in (the first pass may have had none), once the first pass is
    # over: a model from its LiteRT copy is in before it, and its last frames would count in the second pass.
    wait_until_played(qtbot, tab)
    tab.retry()
    wait_until_played(qtbot, tab)
    result = tab.last_result()
    assert result.detection is not None and result.shown is not None
    assert not np.array_equal(result.annotated, result.frame)

    # Nothing plays now: moving the slider redraws the last frame straight away.
    tab.threshold_slider.setValue(100)
    assert tab.inference.threshold == 1.0 and "1.00" in tab.threshold_label.text()
    result = tab.last_result()
    assert result.shown is None and np.array_equal(result.annotated, result.frame)
    boxes = tab.boxes_drawn
    tab.retry()
    wait_until_played(qtbot, tab)
    assert "ended" in tab.source_banner.text()
    assert tab.boxes_drawn == boxes, "no box above a threshold of 1.0"
    assert float(tab.settings.value(keys.THRESHOLD)) == 1.0


@pytest.mark.parametrize(
    ("source", "expected"),
    [("7", "No camera found at index 7"), ("missing.avi", "missing.avi: no such file"),
     ("text.avi", "text.avi: not a video")],
)
def test_a_source_that_fails_shows_the_message_and_retry(qtbot, make_tab, tmp_path, source, expected) -> None:
    (tmp_path / "text.avi").write_text("not a video at all")
    tab = make_tab()
    spec = source if source.isdigit() else str(tmp_path / source)
    tab.open_source(spec)
    qtbot.waitUntil(lambda: tab.source_banner.isVisible(), timeout=10_000)
    assert expected in tab.source_banner.text()
    assert tab.retry_button.isVisible() and tab.retry_button.text() == "Retry"
    assert expected in tab.view.placeholder()
    tab.source_banner.hide()
    qtbot.mouseClick(tab.retry_button, Qt.MouseButton.LeftButton)  # Retry tries again, and says it again
    qtbot.waitUntil(lambda: tab.source_banner.isVisible(), timeout=10_000)
    assert expected in tab.source_banner.text()


def test_a_picture_folder_plays_as_a_slide_show(qtbot, make_tab, tmp_path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((120, 160, 3), 40 * (i + 1), dtype=np.uint8))
    (folder / "3.jpg").write_bytes(b"not a jpeg")
    tab = make_tab(realtime=False)
    tab.start(source=str(folder))
    wait_until_played(qtbot, tab)
    assert tab.inference.processed + tab.inference.dropped == 3
    assert "pictures/ ended (1 unreadable picture(s) skipped)" in tab.source_banner.text()
    assert tab.source_combo.currentText() == "pictures/"


def test_an_unplugged_camera_shows_the_message(qtbot, make_tab, face_video, monkeypatch) -> None:
    monkeypatch.setattr(workers, "CAMERA_SILENCE_S", 0.3)
    tab = make_tab(realtime=False)
    tab.inference.start()
    tab.open_source(UnpluggedCamera(face_video))
    qtbot.waitUntil(lambda: tab.source_banner.isVisible(), timeout=10_000)
    assert "stopped delivering frames" in tab.source_banner.text()
    assert tab.retry_button.text() == "Retry" and tab.play_button.text() == "Play"
    assert tab.frames_shown > 0


def test_without_a_model_the_pretrained_detector_finds_the_face_and_says_it_is_not_yet_yours(
        qtbot, make_tab, face_video) -> None:
    """No model yet: MediaPipe's BlazeFace (training.inference.pretrained) detects, in blue, marked "not yet yours"."""
    from training.core.drawing import PRETRAINED_BOX_COLOUR_BGR

    tab = make_tab()
    tab.loop_box.setChecked(True)  # the 2 s video plays on while TensorFlow and the detector load
    with qtbot.waitSignal(tab.detector_changed, timeout=120_000) as changed:
        tab.start(source=str(face_video))
    assert changed.args == [None]  # not the user's model: the Label tab's "your model" stays off
    assert tab.model_state == "pretrained" and tab.model_path is None
    detector = tab.current_detector()
    assert detector.metadata.get("pretrained") is True and detector.multi_face
    assert tab.model_label.text() == "Model: pretrained (BlazeFace), not yet yours"
    notice = tab.model_banner.text()
    assert tab.model_banner.isVisible() and "pretrained face detector" in notice and "not yet yours" in notice
    assert all(step in notice for step in ("Collect", "Label", "Train"))
    assert "model: pretrained (BlazeFace), not yet yours" in tab.status_text()
    assert tab.threshold_slider.value() == 60  # its own threshold (MediaPipe's 0.6)
    assert tab.settings.value(keys.LAST_MODEL) is None  # nothing to remember: it is no file of the user's

    qtbot.waitUntil(lambda: tab.boxes_drawn >= 3, timeout=30_000)
    result = tab.last_result()
    # The astronaut's face: 260x260 photo, face about (87, 33)-(141, 87) in it, drifting 10..49 px right.
    x1, y1, x2, y2 = result.shown.box
    assert 85 <= (x1 + x2) / 2 <= 195 and 30 <= (y1 + y2) / 2 <= 90 and 35 <= x2 - x1 <= 90, result.shown
    # One face in the detector's answer (its track may briefly be two when a loaded machine drops frames).
    assert result.shown.score > 0.6 and len([d for d in result.detections if d.score > 0.6]) == 1, result.detections
    shown = qimage_to_bgr(tab.view.image())
    assert boxes_of_colour(shown, PRETRAINED_BOX_COLOUR_BGR) == 1  # blue, unlike the user's green model
    assert boxes_of_colour(result.frame, PRETRAINED_BOX_COLOUR_BGR) == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.grab().save(str(SCREENSHOTS / "detect_tab_pretrained.png"))


def missing_pretrained_weights(monkeypatch, tmp_path: Path) -> Path:
    """BlazeFace's weights file gone (a broken install): where the app (desktop.runtime, which names them to its
    export child) and training.model.blazeface look finds nothing."""
    import desktop.runtime
    import training.model.blazeface

    missing = tmp_path / "gone" / "face_detection_full_range.npz"
    monkeypatch.setattr(desktop.runtime, "pretrained_weights_path", lambda: missing)
    monkeypatch.setattr(training.model.blazeface, "weights_path", lambda: missing)
    return missing


def test_without_the_pretrained_weights_the_classic_finder_stands_in_and_says_why(
        qtbot, make_tab, face_video, tmp_path, monkeypatch) -> None:
    from training.core.drawing import CLASSIC_BOX_COLOUR_BGR

    missing = missing_pretrained_weights(monkeypatch, tmp_path)
    tab = make_tab()
    tab.loop_box.setChecked(True)
    tab.start(source=str(face_video))
    wait_for_model(qtbot, tab, "classic")
    assert isinstance(tab.current_detector(), ClassicFaceFinder)
    message = tab.model_banner.text()
    assert tab.model_banner.isVisible() and "The pretrained face detector could not start." in message
    assert str(missing) in message and "not found" in message  # the file it looked for, named
    assert message.endswith("Detecting with the classic face finder instead.")
    assert "classic" in tab.status_text() and "classic" in tab.model_label.text()
    qtbot.waitUntil(lambda: tab.boxes_drawn >= 3, timeout=30_000)
    assert boxes_of_colour(qimage_to_bgr(tab.view.image()), CLASSIC_BOX_COLOUR_BGR) == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.grab().save(str(SCREENSHOTS / "detect_tab_classic.png"))


def test_one_open_model_button_is_in_view_at_a_time(qtbot, make_tab, face_video, multiface_model_file, tmp_path) -> None:
    """The banner's "Open model…" when it offers one (no model yet, a model that failed), else the top
    row's: never both, never none."""

    def shown() -> list[QPushButton]:
        return [b for b in tab.findChildren(QPushButton) if b.text() == "Open model…" and b.isVisibleTo(tab)]

    tab = make_tab()
    tab.start(source=str(face_video))
    qtbot.waitUntil(lambda: tab.model_state not in ("none", "loading"), timeout=60_000)
    assert len(shown()) == 1
    assert (shown()[0] is tab.model_banner.button) is tab.model_banner.isVisible()

    tab.load_model(str(multiface_model_file))
    wait_for_model(qtbot, tab)
    assert not tab.model_banner.isVisible() and shown() == [tab.open_model_button]

    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    tab.load_model(str(bad))
    qtbot.waitUntil(lambda: "Could not use this model" in tab.model_banner.text(), timeout=60_000)
    assert shown() == [tab.model_banner.button]


def write_other_keras_model(path: Path) -> None:
    """A real .keras file holding some other model: one input, one output."""
    import keras

    inputs = keras.Input(shape=(8,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("holiday.keras", "not a .keras model file"), ("other.keras", "not a FaceTracker face detector")],
)
def test_a_file_that_is_not_a_model_is_a_message_not_a_crash(qtbot, make_tab, tmp_path, face_video, name,
                                                             expected) -> None:
    bad = tmp_path / name
    if name == "other.keras":
        write_other_keras_model(bad)
    else:
        bad.write_bytes(b"these are not the weights you are looking for")
    tab = make_tab()
    with qtbot.waitSignal(tab.detector_changed, timeout=120_000) as changed:
        tab.start(source=str(face_video), model=str(bad))
    assert changed.args == [None]  # the pretrained face detector took over
    assert tab.model_state == "pretrained"
    qtbot.waitUntil(lambda: "Could not use this model" in tab.model_banner.text(), timeout=5_000)
    message = tab.model_banner.text()
    assert name in message and expected in message and "pretrained face detector (not yet yours)" in message
    assert tab.settings.value(keys.LAST_MODEL) is None  # a bad file is not remembered


def test_snapshot_and_recording_write_files(qtbot, make_tab, tmp_path, face_video, multiface_model_file) -> None:
    tab = make_tab()
    tab.loop_box.setChecked(True)
    tab.threshold_slider.setValue(0)
    tab.start(source=str(face_video), model=str(multiface_model_file))
    wait_for_model(qtbot, tab)
    qtbot.waitUntil(lambda: tab.snapshot_button.isEnabled() and tab.boxes_drawn > 0, timeout=20_000)

    qtbot.mouseClick(tab.snapshot_button, Qt.MouseButton.LeftButton)
    snapshots = tmp_path / "snapshots"
    qtbot.waitUntil(lambda: any(snapshots.glob("*.png")), timeout=5_000)
    picture = cv2.imread(str(next(snapshots.glob("*.png"))))
    assert picture is not None and picture.shape == (240, 320, 3)

    qtbot.mouseClick(tab.record_button, Qt.MouseButton.LeftButton)
    assert tab.record_button.isChecked()
    shown = tab.frames_shown
    qtbot.waitUntil(lambda: tab.frames_shown >= shown + 10, timeout=20_000)
    qtbot.mouseClick(tab.record_button, Qt.MouseButton.LeftButton)
    notice = re.search(r"Recording saved: (.+\.mp4) \((\d+) frames\)", tab.notice_label.text())
    assert notice is not None, tab.notice_label.text()
    video, written = Path(notice.group(1)), int(notice.group(2))
    assert video.parent == tmp_path / "recordings" and written >= 5
    capture = cv2.VideoCapture(str(video))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (240, 320, 3) and frames == written


def test_shutdown_stops_every_worker(qtbot, make_tab, face_video) -> None:
    tab = make_tab()
    tab.loop_box.setChecked(True)
    tab.start(source=str(face_video))
    qtbot.waitUntil(lambda: tab.frames_shown > 3, timeout=20_000)
    capture, inference = tab.capture, tab.inference
    tab.shutdown()
    assert capture.isFinished() and inference.isFinished()
    assert tab.capture is None and tab.loader is None and not tab._retiring


def test_a_model_with_a_stored_threshold_sets_the_slider(qtbot, make_tab, face_video, multiface_model_file, tmp_path) -> None:
    """A trained model carries the threshold chosen on validation: the Detect tab starts from it."""
    import shutil

    from training.core.detection import write_model_metadata

    trained = tmp_path / "trained.keras"
    shutil.copyfile(multiface_model_file, trained)
    write_model_metadata(trained, {"score_threshold": 0.37})
    tab = make_tab(realtime=False)
    tab.threshold_slider.setValue(80)
    tab.start(source=str(face_video), model=str(trained))
    wait_for_model(qtbot, tab)
    assert tab.threshold_slider.value() == 37 and tab.inference.threshold == pytest.approx(0.37)
    assert "0.37" in tab.threshold_label.text()
    tab.threshold_slider.setValue(60)  # the user's own choice still wins afterwards
    assert tab.inference.threshold == pytest.approx(0.6)


# --- every face ---------------------------------------------------------------------------------
def three_face_frame(i: int) -> np.ndarray:
    """640x480: the astronaut (Eileen Collins), Grace Hopper and an LFW face, each drifting a few pixels."""
    import skimage.data
    from matplotlib import cbook
    from PIL import Image

    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)[30:230, 130:330]
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        grace = cv2.cvtColor(np.asarray(Image.open(handle).convert("RGB")), cv2.COLOR_RGB2BGR)[95:375, 125:405]
    lfw = cv2.cvtColor((skimage.data.lfw_subset()[35] * 255).round().astype(np.uint8), cv2.COLOR_GRAY2BGR)
    frame = np.empty((480, 640, 3), np.uint8)
    frame[:] = np.linspace(60, 120, 640).astype(np.uint8)[None, :, None]
    for k, (photo, side, (x, y)) in enumerate([(astronaut, 170, (30, 40)), (grace, 170, (420, 30)),
                                               (lfw, 130, (250, 300))]):
        patch = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA if len(photo) > side else cv2.INTER_CUBIC)
        dx, dy = round(6 * np.sin(i / 6 + 2 * k)), round(4 * np.cos(i / 7 + k))
        frame[y + dy : y + dy + side, x + dx : x + dx + side] = patch
    return frame


def write_three_face_video(path: Path, frames: int = 40, fps: float = 20.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for i in range(frames):
        writer.write(three_face_frame(i))
    writer.release()
    return path


def qimage_to_bgr(image) -> np.ndarray:
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_BGR888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def boxes_of_colour(picture: np.ndarray, colour: tuple[int, int, int], tolerance: int = 0) -> int:
    """How many separate marks (a box with its tag) of ``colour`` the picture holds."""
    near = (np.abs(picture.astype(np.int16) - np.array(colour, np.int16)) <= tolerance).all(axis=2)
    count, _, stats, _ = cv2.connectedComponentsWithStats(near.astype(np.uint8), connectivity=8)
    return int(sum(1 for area in stats[1:, cv2.CC_STAT_AREA] if area > 400))  # a box's outline: 4 * 100 px or more


def test_every_face_is_tracked_boxed_counted_snapshotted_and_recorded(qtbot, make_tab, tmp_path, monkeypatch) -> None:
    """Three real faces on a video the test writes, found by the classic finder's detect_all (standing in
    for the pretrained detector, whose weights are made missing: its scores are all 1.0, which the
    slider checks below rely on): three boxes on screen, in the snapshot and the recording, "3 faces" in
    the status line, and each face keeps one id while the video plays."""
    from training.core.drawing import CLASSIC_BOX_COLOUR_BGR

    missing_pretrained_weights(monkeypatch, tmp_path)
    video = write_three_face_video(tmp_path / "three.avi")
    tab = make_tab()
    tab.loop_box.setChecked(True)
    ids_by_frame: list[tuple[int, ...]] = []
    tab.inference.result_available.connect(  # after the tab's own slot: last_result() is this frame
        lambda: ids_by_frame.append(tuple(face.id for face in tab.last_result().faces)))
    tab.start(source=str(video))
    wait_for_model(qtbot, tab, "classic")
    qtbot.waitUntil(lambda: sum(len(ids) == 3 for ids in ids_by_frame) >= 15, timeout=60_000)
    qtbot.waitUntil(lambda: "3 faces" in tab.status_text(), timeout=5_000)
    assert re.search(r"three\.avi: video [\d.]+ fps  ·  3 faces  ·  inference", tab.status_label.text())

    result = tab.last_result()
    assert result.face_count == 3 and len({face.id for face in result.faces}) == 3
    shown = qimage_to_bgr(tab.view.image())
    assert shown.shape == (480, 640, 3) and boxes_of_colour(shown, CLASSIC_BOX_COLOUR_BGR) == 3
    assert boxes_of_colour(result.frame, CLASSIC_BOX_COLOUR_BGR) == 0  # the marks are drawn, not in the video
    three = [ids for ids in ids_by_frame if len(ids) == 3]
    assert len(set().union(*three)) == 3, f"a face changed id while the video played: {three}"
    assert tab.inference.tracking_ms()[0] < 1.0  # matching and smoothing: well under a millisecond

    qtbot.mouseClick(tab.snapshot_button, Qt.MouseButton.LeftButton)
    snapshots = tmp_path / "snapshots"
    qtbot.waitUntil(lambda: any(snapshots.glob("*.png")), timeout=5_000)
    assert boxes_of_colour(cv2.imread(str(next(snapshots.glob("*.png")))), CLASSIC_BOX_COLOUR_BGR) == 3

    qtbot.mouseClick(tab.record_button, Qt.MouseButton.LeftButton)
    count = len(ids_by_frame)
    qtbot.waitUntil(lambda: len(ids_by_frame) >= count + 8, timeout=30_000)
    qtbot.mouseClick(tab.record_button, Qt.MouseButton.LeftButton)
    recording = re.search(r"Recording saved: (.+\.mp4) \((\d+) frames\)", tab.notice_label.text())
    assert recording is not None, tab.notice_label.text()
    capture = cv2.VideoCapture(recording.group(1))
    marks = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        marks.append(boxes_of_colour(frame, CLASSIC_BOX_COLOUR_BGR, tolerance=40))  # mp4v is lossy
    capture.release()
    assert len(marks) == int(recording.group(2)) >= 5
    assert sum(m == 3 for m in marks) >= len(marks) - 2, marks

    # Stopped: the slider redraws the last frame with the faces above it (the classic finder scores 1.0).
    tab.stop_source()
    qtbot.waitUntil(lambda: not tab._retiring, timeout=10_000)
    qtbot.wait(200)  # a frame still in the inference worker lands first
    tab.threshold_slider.setValue(100)
    assert boxes_of_colour(qimage_to_bgr(tab.view.image()), CLASSIC_BOX_COLOUR_BGR) == 0
    assert "stopped  ·  no face  ·  " in tab.status_text()
    tab.threshold_slider.setValue(50)
    assert boxes_of_colour(qimage_to_bgr(tab.view.image()), CLASSIC_BOX_COLOUR_BGR) == 3
    assert "stopped  ·  3 faces  ·  " in tab.status_text()


def test_the_face_count_reads_as_words() -> None:
    from desktop.detect_tab import face_count_text

    assert [face_count_text(n) for n in (0, 1, 2, 3)] == ["no face", "1 face", "2 faces", "3 faces"]

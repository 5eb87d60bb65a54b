"""Kept frames (issue 22): the writer, the automatic mode's policy and caps, K in a real Detect tab on a real
video, and the Label tab's "Review kept frames" accepting them with the keyboard."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from desktop import settings as keys
from desktop.kept_frames import FrameFacts, FrameKeeper, KeepLimits, KeepPolicy, KeptReview, suggestion_boxes
from training.core.detection import Detection
from training.data.dataset import load_dataset
from training.data.formats.labelme import write_labelme
from training.data.kept_frames import (
    KEPT_FROM_KEY,
    KeepError,
    is_kept,
    kept_folders,
    kept_samples,
    kept_usage,
    write_kept_frame,
)
from training.inference.autolabel import read_suggestion_mark


def frame(seed: int = 0, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------- writing


def test_a_kept_frame_is_a_picture_with_unreviewed_suggestions_that_training_reads(tmp_path: Path) -> None:
    data = tmp_path / "mine"
    found = [(0.91, (10, 12, 50, 60)), (0.3, (100, 20, 150, 70)), (0.1, (60, 60, 90, 90)),  # under the floor
             (None, (-5, 80, 30, 130))]  # drawn through a miss by the tracker: no score, clipped to the picture
    kept = write_kept_frame(frame(), data, found, reason="key", model_name="your model (best.keras)")

    assert kept.image_path.parent == data / "images" and kept.label_path.parent == data / "labels"
    assert is_kept(kept.image_path) and kept.image_path.name.endswith("-key.jpg")
    assert cv2.imread(str(kept.image_path)).shape == (120, 160, 3)
    assert kept.boxes == ((10, 12, 50, 60), (100, 20, 150, 70), (0, 80, 30, 120)) and kept.scores == (0.91, 0.3, None)
    document = json.loads(kept.label_path.read_text())
    assert document["flags"] == {"suggested": True, "kept": True}
    assert document[KEPT_FROM_KEY]["reason"] == "key" and document[KEPT_FROM_KEY]["model"] == "your model (best.keras)"
    assert [shape["description"] for shape in document["shapes"]][2].endswith("tracked through a frame it missed")
    mark = read_suggestion_mark(kept.label_path)
    assert mark is not None and mark.engine == "your model (best.keras)" and mark.score == 0.91

    # Training reads it with its three faces; it is a kept frame, not reviewed yet.
    dataset = load_dataset(data)
    (sample,) = [s for split in dataset.splits.values() for s in split]
    assert len(sample.boxes) == 3
    assert kept_samples([sample], reviewed=False) == [sample] and kept_samples([sample], reviewed=True) == []
    # Reviewed (the Label tab rewrites the label as the user's own): still a kept frame, by its name.
    write_labelme(kept.label_path, kept.image_path, [(10, 12, 50, 60)], 160, 120)
    sample = next(s for split in load_dataset(data).splits.values() for s in split)
    assert kept_samples([sample], reviewed=True) == [sample]
    assert kept_usage(data) == (1, kept.image_path.stat().st_size + kept.label_path.stat().st_size)


def test_kept_frames_go_where_the_dataset_keeps_its_pictures(tmp_path: Path) -> None:
    split = tmp_path / "split"
    for name in ("train", "val", "test"):
        (split / name / "images").mkdir(parents=True)
        (split / name / "labels").mkdir(parents=True)
    assert kept_folders(split) == (split / "train" / "images", split / "train" / "labels")
    beside = tmp_path / "beside"
    beside.mkdir()
    cv2.imwrite(str(beside / "a.jpg"), frame())
    assert kept_folders(beside) == (beside, beside)  # pictures with their JSON beside them: the same
    kept = write_kept_frame(frame(), beside, [(0.9, (1, 1, 40, 40))], reason="unsure", model_name="m")
    assert kept.label_path == beside / f"{kept.image_path.stem}.json"
    assert load_dataset(beside).layout == "beside"  # not turned into another layout by a kept frame
    assert kept_folders(tmp_path / "new") == (tmp_path / "new" / "images", tmp_path / "new" / "labels")


def test_a_frame_that_cannot_be_written_names_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "images").write_text("a file where the pictures folder should be")
    with pytest.raises(KeepError, match="images"):
        write_kept_frame(frame(), data, [], reason="key", model_name="m")
    assert not list(tmp_path.rglob("kept-*"))  # nothing half written


# ------------------------------------------------------------------------------------------- policy


def result(scores=(), faces=()) -> SimpleNamespace:
    """A FrameResult's parts the policy and the suggestions read: detections, and tracked faces (id, missed)."""
    return SimpleNamespace(frame=frame(), detections=tuple(Detection(s, (10, 10, 60, 60)) for s in scores),
                           faces=tuple(SimpleNamespace(id=i, missed=m, box=(10, 10, 60, 60)) for i, m in faces))


def test_the_automatic_mode_keeps_unsure_frames_at_most_one_every_interval_and_no_more_than_its_cap() -> None:
    policy = KeepPolicy(KeepLimits(interval_s=2.0, per_session=5, band=0.1))
    assert policy.observe(object(), FrameFacts(0.5, frozenset(), frozenset()), 0.5, now=0.0) is None  # off by default
    policy.enabled = True
    kept_at = []
    for i in range(30 * 60):  # a minute at 30 fps, every frame unsure
        now = i / 30
        choice = policy.observe(i, FrameFacts(0.45, frozenset(), frozenset()), 0.5, now=now)
        if choice is not None:
            assert choice == (i, "unsure")
            kept_at.append(now)
    assert len(kept_at) == 5 and all(b - a >= 2.0 for a, b in zip(kept_at, kept_at[1:], strict=False))
    policy.start_session()  # switched on again: a new session
    assert policy.observe(0, FrameFacts(0.55, frozenset(), frozenset()), 0.5, now=100.0) == (0, "unsure")
    # Sure answers (far from the threshold either way, or no box at all) are not kept.
    for score in (0.95, 0.05, None):
        assert policy.observe(1, FrameFacts(score, frozenset(), frozenset()), 0.5, now=200.0) is None


def test_a_track_drawn_through_a_miss_keeps_the_frame_the_detector_missed_when_the_face_comes_back() -> None:
    policy = KeepPolicy(KeepLimits(interval_s=0.0, band=0.0), enabled=True)
    frames = [result([0.9], [(1, 0)]), result([], [(1, 1)]), result([0.9], [(1, 0)])]
    choices = [policy.observe(r, FrameFacts.of(r), 0.5, now=i) for i, r in enumerate(frames)]
    assert choices == [None, None, (frames[1], "track")]
    # Its suggestions: the tracker's box stands in for the face the detector did not find.
    assert suggestion_boxes(frames[1]) == [(None, (10.0, 10.0, 60.0, 60.0))]
    # A face that leaves for good (never back) is no disagreement.
    policy = KeepPolicy(KeepLimits(interval_s=0.0, band=0.0), enabled=True)
    gone = [result([0.9], [(1, 0)]), result([], [(1, 1)]), result([], []), result([0.9], [(2, 0)])]
    assert [policy.observe(r, FrameFacts.of(r), 0.5, now=i) for i, r in enumerate(gone)] == [None] * 4


# ------------------------------------------------------------------------------------------- keeper


def test_the_keeper_writes_off_the_ui_thread_and_stops_at_its_file_cap(qtbot, tmp_path: Path) -> None:
    data = tmp_path / "data"
    keeper = FrameKeeper(lambda: str(data), KeepLimits(interval_s=0.0, per_session=100, max_files=3, band=1.0))
    writers: list[str] = []
    keeper.kept.connect(lambda kept: writers.append(kept.image_path.name))
    ui_thread = threading.get_ident()
    seen_threads: list[int] = []
    # The write reports from the thread it ran in: a direct connection runs there too.
    keeper._written.connect(lambda *_args: seen_threads.append(threading.get_ident()), Qt.ConnectionType.DirectConnection)

    started = time.perf_counter()
    assert keeper.keep(result([0.8, 0.3]), "your model (m.keras)", 0.5)
    assert time.perf_counter() - started < 0.05  # the UI thread only queues the write
    qtbot.waitUntil(lambda: len(writers) == 1, timeout=5000)
    assert seen_threads and ui_thread not in seen_threads

    keeper.set_auto(True)
    messages: list[tuple[str, bool]] = []
    keeper.message.connect(lambda text, error: messages.append((text, error)))
    for _ in range(20):
        keeper.observe(result([0.5]), 0.5, "m")
        qtbot.waitUntil(lambda: keeper.pending == 0, timeout=5000)
    files, _size = kept_usage(data)
    assert files == 3 and not keeper.auto_enabled  # the cap: three kept frames in the dataset, then it stops
    assert any("limit is 3 files" in text and error for text, error in messages)
    assert keeper.status_part() == "kept 3"

    no_dataset = FrameKeeper(lambda: "")
    no_dataset.message.connect(lambda text, error: messages.append((text, error)))
    assert not no_dataset.keep(result([0.8]), "m", 0.5)
    assert "Choose a dataset folder" in messages[-1][0]


def test_keeping_stops_short_of_a_full_disk(qtbot, tmp_path: Path) -> None:
    keeper = FrameKeeper(lambda: str(tmp_path), KeepLimits(min_free_megabytes=1e12))  # more than any disk has
    messages: list[str] = []
    keeper.message.connect(lambda text, _error: messages.append(text))
    assert not keeper.keep(result([0.8]), "m", 0.5)
    assert "free on the disk" in messages[-1] and not list(tmp_path.rglob("kept-*"))


# ------------------------------------------------------------------------------------------- the tabs


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained multiface model (48 px) whose cells score about 0.5 (its score bias set to 0): boxes
    everywhere, some over a low threshold, which is what keeping needs."""
    from training.model.build import SCORE_MAP, build_model

    path = tmp_path_factory.mktemp("model") / "m.keras"
    model = build_model("multiface", weights=None, input_size=48)
    kernel, bias = model.get_layer(SCORE_MAP).get_weights()
    model.get_layer(SCORE_MAP).set_weights([kernel, np.zeros_like(bias)])
    model.save(path)
    return path


def test_k_in_the_detect_tab_keeps_frames_and_the_label_tab_reviews_them(qtbot, tmp_path, face_video,
                                                                          model_file) -> None:
    from desktop.detect_tab import DetectTab
    from desktop.label_tab import LabelTab

    data = tmp_path / "data"
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(keys.DATASET, str(data))
    tab = DetectTab(settings, realtime=True)
    qtbot.addWidget(tab)
    tab.resize(800, 620)
    tab.show()
    qtbot.waitExposed(tab)
    tab.activateWindow()
    qtbot.waitUntil(tab.isActiveWindow, timeout=5000)
    try:
        tab.loop_box.setChecked(True)
        tab.start(source=str(face_video), model=str(model_file))
        qtbot.waitUntil(lambda: tab.model_state == "model", timeout=60_000)
        tab.threshold_slider.setValue(30)  # boxes from a little under the threshold are suggested
        loaded = tab.frames_shown  # frames shown before the model was in use have no box
        qtbot.waitUntil(lambda: tab.keep_action.isEnabled() and tab.frames_shown > loaded + 5, timeout=20_000)
        dropped = tab.inference.dropped
        for _ in range(2):
            shown = tab.frames_shown
            qtbot.keyClick(tab, Qt.Key.Key_K)
            qtbot.waitUntil(lambda shown=shown: tab.frames_shown > shown + 2, timeout=10_000)
        qtbot.waitUntil(lambda: tab.keeper.kept_by_key == 2, timeout=10_000)
        assert "Kept kept-" in tab.notice_label.text() and "Label tab" in tab.notice_label.text()
        assert "kept 2" in tab.status_text()
        assert tab.inference.dropped == dropped  # realtime 20 fps: keeping cost the live view no frame

        # The automatic mode, with a tiny cap and every frame counted as unsure: exactly the cap is kept.
        tab.keeper.policy.limits = KeepLimits(interval_s=0.0, per_session=2, band=1.0)
        tab.unsure_box.setChecked(True)
        qtbot.waitUntil(lambda: tab.keeper.kept_auto == 2, timeout=10_000)
        shown = tab.frames_shown
        qtbot.waitUntil(lambda: tab.frames_shown > shown + 10, timeout=10_000)
        assert tab.keeper.kept_auto == 2 and "kept 4 (2 of at most 2 automatic)" in tab.status_text()
    finally:
        tab.shutdown()
    kept = sorted((data / "images").glob("kept-*.jpg"))
    assert len(kept) == 4 and all(read_suggestion_mark(data / "labels" / f"{p.stem}.json") for p in kept)
    mark = read_suggestion_mark(data / "labels" / f"{kept[0].stem}.json")
    assert mark.engine == "your model (m.keras)" and mark.score is not None

    # The Label tab offers them first and → accepts each one.
    cv2.imwrite(str(data / "images" / "0001.jpg"), frame(3))  # a picture of the user's own, before them
    label = LabelTab(settings)
    qtbot.addWidget(label)
    label.resize(1000, 700)
    label.show()
    qtbot.waitExposed(label)
    label.activateWindow()
    qtbot.waitUntil(label.isActiveWindow, timeout=5000)
    try:
        label.kept_frames_added()
        # Shown first: the first kept frame, not the unlabelled picture before it.
        qtbot.waitUntil(lambda: label.current_entry() is not None and is_kept(label.current_entry().image_path),
                        timeout=10_000)
        assert len(label.entries) == 5 and label.current_entry().unreviewed
        assert label.review_kept_button.isVisible() and label.review_kept_button.text() == "Review kept frames (4)"
        assert "4 kept frames to review" in label.status_label.text()
        label.session.go_to(0)  # elsewhere; the button comes back to the first kept frame to review
        qtbot.mouseClick(label.review_kept_button, Qt.MouseButton.LeftButton)
        assert label.index == 1 and "Kept frame 1 of 4 to review" in label.status_label.text()
        for left in (3, 2, 1, 0):
            label.canvas.setFocus()
            qtbot.keyClick(label.canvas, Qt.Key.Key_Right)
            assert len(KeptReview.waiting(label.entries)) == left
        assert not label.review_kept_button.isVisible()
        qtbot.waitUntil(lambda: "Every kept frame is reviewed" in label.status_label.text(), timeout=2000)
    finally:
        label.shutdown()
    assert all(read_suggestion_mark(data / "labels" / f"{p.stem}.json") is None for p in kept)

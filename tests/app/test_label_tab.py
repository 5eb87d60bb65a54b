"""The Label tab, driven with the mouse and the keyboard on a real folder of pictures.

The labels it writes must be read back by the training package and have labelme's own format.
"""

from __future__ import annotations

import json
import os.path as osp
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from real_frames import (  # real faces in frames (tests/real_frames.py)
    FRAME_H,
    FRAME_W,
    compose_faces_frame,
    iou,
    matched,
    write_pictures,
)

from desktop.label_tab import (
    BLAZEFACE,
    CLASSIC,
    FACE,
    MODEL,
    MTCNN,
    NO_FACE,
    UNLABELLED,
    LabelTab,
)
from training.data.dataset import load_dataset
from training.data.demo import make_demo_data
from training.data.pictures import load_image
from training.inference.autolabel import read_suggestion_mark

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
W, H = 160, 120
LABELME_KEYS = {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
LABELME_SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags"}


@pytest.fixture(scope="module")
def demo_pictures(tmp_path_factory) -> list[Path]:
    out = make_demo_data(tmp_path_factory.mktemp("demo") / "demo", count=6, width=W, height=H, seed=3)
    return sorted(out.glob("*/images/*.jpg"))


@pytest.fixture
def dataset(tmp_path, demo_pictures) -> Path:
    """A freshly collected dataset: DATASET/images/*.jpg, nothing labelled yet."""
    root = tmp_path / "collected"
    (root / "images").mkdir(parents=True)
    for path in demo_pictures:
        shutil.copy(path, root / "images" / path.name)
    return root


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def tab(qtbot, settings, dataset):
    tab = LabelTab(settings)
    qtbot.addWidget(tab)
    tab.resize(1000, 700)
    tab.show()
    qtbot.waitExposed(tab)
    tab.activateWindow()
    qtbot.waitUntil(lambda: tab.isActiveWindow(), timeout=5000)
    tab.set_dataset(dataset)
    qtbot.waitUntil(lambda: len(tab.entries) == 6 and tab.index == 0, timeout=10_000)
    yield tab
    tab.shutdown()


def widget_point(tab: LabelTab, x: float, y: float) -> QPoint:
    return tab.canvas.to_widget(x, y).toPoint()


def drag(qtbot, tab: LabelTab, start: tuple[float, float], end: tuple[float, float]) -> None:
    canvas = tab.canvas
    a, b = widget_point(tab, *start), widget_point(tab, *end)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(canvas, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    qtbot.mouseMove(canvas, b)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)


def key(qtbot, tab: LabelTab, k: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    tab.canvas.setFocus()
    qtbot.keyClick(tab.canvas, k, modifier)


def open_like_labelme(json_path: Path) -> dict:
    """What labelme's LabelFile.load needs: its keys, and the picture found from imagePath beside the JSON."""
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert LABELME_KEYS <= set(data)
    assert data["imageData"] is None  # labelme then reads the picture from imagePath
    image_path = osp.join(osp.dirname(json_path), data["imagePath"])
    assert osp.isfile(image_path), image_path
    picture = load_image(image_path)
    assert (data["imageHeight"], data["imageWidth"]) == picture.shape[:2]
    for shape in data["shapes"]:
        assert LABELME_SHAPE_KEYS <= set(shape)
        assert shape["shape_type"] == "rectangle" and shape["label"] == "face"
        assert np.asarray(shape["points"], float).shape == (2, 2)
    return data


def sample_for(root: Path, image: Path):
    dataset = load_dataset(root)
    found = [s for samples in dataset.splits.values() for s in samples if s.image_path.name == image.name]
    assert len(found) == 1, dataset.problems
    return found[0]


def test_drawing_adjusting_and_no_face_write_labelme_json_that_training_reads(qtbot, tab, dataset, demo_pictures):
    assert [e.status for e in tab.entries] == [UNLABELLED] * 6
    assert tab.progress_label.text().startswith("Labelled 0 / 6")
    first = tab.current_entry().image_path

    # A suggestion from MTCNN arrives off the UI thread, whatever it finds on these synthetic faces.
    assert tab.engine() == MTCNN and "MTCNN" in tab.source_label.text()
    qtbot.waitUntil(lambda: tab.suggestion_for(first) is not None, timeout=60_000)
    suggestion = tab.suggestion_for(first)
    assert suggestion.source == "MTCNN" and not suggestion.error
    assert ("Suggested by MTCNN (" if suggestion.box else "MTCNN found no face") in tab.canvas.banner()

    # Draw from bottom-right to top-left: the corners come out ordered, in the picture's pixels.
    drag(qtbot, tab, (100, 90), (20, 30))
    json_path = dataset / "labels" / f"{first.stem}.json"
    data = open_like_labelme(json_path)
    assert data["imagePath"] == f"../images/{first.name}"
    (x1, y1), (x2, y2) = data["shapes"][0]["points"]
    assert np.allclose([x1, y1, x2, y2], [20, 30, 100, 90], atol=1.0)
    assert tab.current_entry().status == FACE

    # Drag the bottom-right corner further out, then move the whole box by its inside.
    drag(qtbot, tab, (100, 90), (130, 110))
    drag(qtbot, tab, (60, 60), (50, 55))
    sample = sample_for(dataset, first)
    assert sample.has_face and sample.label_path == json_path
    assert np.allclose(np.array(sample.box) * [W, H, W, H], [10, 25, 120, 105], atol=1.5)

    # N: the next picture is marked "no face" (a JSON with no shapes) and the tab moves on.
    key(qtbot, tab, Qt.Key.Key_Right)
    second = tab.current_entry().image_path
    assert tab.index == 1
    key(qtbot, tab, Qt.Key.Key_N)
    assert tab.index == 2
    no_face = dataset / "labels" / f"{second.stem}.json"
    assert open_like_labelme(no_face)["shapes"] == []
    sample = sample_for(dataset, second)
    assert not sample.has_face and sample.label_path == no_face and sample.box == (0, 0, 0, 0)
    assert tab.progress_label.text().startswith("Labelled 2 / 6 (1 faces, 1 no face)")
    assert tab.progress_bar.value() == 2

    # Left goes back and shows the saved label; a new tab (app restart) reads both back.
    key(qtbot, tab, Qt.Key.Key_Left)
    assert tab.index == 1 and tab.canvas.banner() == "No face"
    again = LabelTab(tab.settings)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: len(again.entries) == 6, timeout=10_000)
    assert [e.status for e in again.entries][:2] == [FACE, NO_FACE]
    assert again.index == 2  # opens at the first unlabelled picture
    again.shutdown()

    # Back on the first picture, drag both corners onto the face the demo data drew there.
    key(qtbot, tab, Qt.Key.Key_Left)
    truth = sample_for(demo_pictures[0].parents[2], first)
    if truth.has_face:
        x1, y1, x2, y2 = (v * s for v, s in zip(truth.box, (W, H, W, H), strict=True))
        drag(qtbot, tab, (10, 25), (x1, y1))
        drag(qtbot, tab, (120, 105), (x2, y2))
        assert np.allclose(np.array(sample_for(dataset, first).box), truth.box, atol=0.02)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert tab.grab().save(str(SCREENSHOTS / "label_tab.png"))


def test_delete_moves_picture_and_label_to_trash(qtbot, tab, dataset):
    key(qtbot, tab, Qt.Key.Key_N)  # label picture 0 "no face", now on picture 1
    key(qtbot, tab, Qt.Key.Key_Left)
    victim = tab.current_entry()
    key(qtbot, tab, Qt.Key.Key_Delete)  # Delete alone removes a selected box, never the picture
    assert len(tab.entries) == 6 and victim.image_path.exists() and "select it first" in tab.status_label.text()
    key(qtbot, tab, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier)
    assert len(tab.entries) == 5 and victim.image_path not in [e.image_path for e in tab.entries]
    assert (dataset / "trash" / victim.image_path.name).is_file()
    assert (dataset / "trash" / f"{victim.image_path.stem}.json").is_file()
    assert not victim.image_path.exists() and not victim.label_path.exists()
    assert tab.progress_label.text().startswith("Labelled 0 / 5")
    assert sum(len(s) for s in load_dataset(dataset).splits.values()) == 5


def rectangles(json_path: Path) -> list[list[float]]:
    return [[*s["points"][0], *s["points"][1]] for s in open_like_labelme(json_path)["shapes"]]


def pixel(tab: LabelTab, x: float, y: float):
    """The colour the canvas shows at picture pixel (x, y)."""
    return tab.canvas.grab().toImage().pixelColor(widget_point(tab, x, y))


def test_several_boxes_are_drawn_selected_deleted_undone_and_redone(qtbot, tab, dataset):
    key(qtbot, tab, Qt.Key.Key_N)  # picture 0 is "no face"; back to it: no box, no suggestion in the way
    key(qtbot, tab, Qt.Key.Key_Left)
    entry = tab.current_entry()
    assert entry.status == NO_FACE and tab.canvas.boxes() == []
    assert tab.undo_button.text() == "Undo (Ctrl+Z)" and tab.redo_button.text() == "Redo (Ctrl+Shift+Z)"
    assert tab.delete_box_button.text() == "Delete box (Del)"

    drag(qtbot, tab, (10, 10), (60, 50))
    drag(qtbot, tab, (150, 110), (90, 40))  # drawn backwards: the corners come out ordered
    first, second = [10, 10, 60, 50], [90, 40, 150, 110]
    assert np.allclose(rectangles(entry.label_path), [first, second], atol=1.5)
    assert len(tab.canvas.boxes()) == 2 and tab.canvas.selected() == 1  # the new box is selected
    assert tab.picture_list.currentItem().text().endswith("(2 faces)")
    assert tab.status_label.text() == f"Saved {entry.label_path.name} (2 faces)"
    assert tab.canvas.banner() == "2 faces"
    # Handles on the selected box only: a white square on its corner, the plain green line on the other's.
    assert pixel(tab, 90, 40).name() == "#ffffff" and pixel(tab, 10, 10).name() != "#ffffff"

    qtbot.mouseClick(tab.canvas, Qt.MouseButton.LeftButton, pos=widget_point(tab, 35, 30))  # select the first
    assert tab.canvas.selected() == 0 and tab.session.selected == 0
    assert pixel(tab, 10, 10).name() == "#ffffff" and pixel(tab, 90, 40).name() != "#ffffff"
    assert np.allclose(rectangles(entry.label_path), [first, second], atol=1.5)  # a click changes nothing

    key(qtbot, tab, Qt.Key.Key_Delete)
    assert np.allclose(rectangles(entry.label_path), [second], atol=1.5) and len(tab.canvas.boxes()) == 1
    assert tab.undo_action.isEnabled() and not tab.redo_action.isEnabled()
    key(qtbot, tab, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.allclose(rectangles(entry.label_path), [first, second], atol=1.5) and len(tab.canvas.boxes()) == 2
    assert tab.redo_action.isEnabled() and tab.status_label.text().startswith("Undone:")
    key(qtbot, tab, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.allclose(rectangles(entry.label_path), [second], atol=1.5) and len(tab.canvas.boxes()) == 1
    key(qtbot, tab, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, tab, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Y redoes too
    assert np.allclose(rectangles(entry.label_path), [second], atol=1.5)

    # Undo all the way back to "no face"; the toolbar buttons do what the keys do.
    qtbot.mouseClick(tab.undo_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(tab.undo_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(tab.undo_button, Qt.MouseButton.LeftButton)
    assert rectangles(entry.label_path) == [] and entry.status == NO_FACE and tab.canvas.banner() == "No face"
    qtbot.mouseClick(tab.redo_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(tab.redo_button, Qt.MouseButton.LeftButton)
    sample = sample_for(dataset, entry.image_path)  # what training reads: both faces
    assert sample.face_count == 2
    assert np.allclose(np.array(sample.boxes) * [W, H, W, H], [second, first], atol=1.5)  # largest first


def confident_detector(box_norm: tuple[float, float, float, float]):
    """A real Keras detector whose heads are set to say "face" at ``box_norm`` for any picture."""
    from training.inference.detector import Detector
    from training.model.build import build_model

    model = build_model("tiny", input_size=48, weights=None)
    for name, bias in (("class", [10.0]), ("box", [float(np.log(v / (1 - v))) for v in box_norm])):
        layer = model.get_layer(name)
        kernel, _ = layer.get_weights()
        layer.set_weights([np.zeros_like(kernel), np.asarray(bias, np.float32)])
    return Detector(model)


def test_model_suggestion_is_accepted_with_next(qtbot, tab, dataset):
    tab.set_detector(confident_detector((0.25, 0.2, 0.75, 0.9)))
    assert tab.engine() == MTCNN  # MTCNN stays the suggester; the model is there to choose
    assert "MTCNN" in tab.source_label.text() and "your model" in tab.source_label.text()
    tab.set_engine(MODEL)
    assert tab.source_label.text().startswith("Suggestions: your model")
    assert tab.engine_combo.currentData() == MODEL
    entry = tab.current_entry()
    qtbot.waitUntil(lambda: (tab.suggestion_for(entry.image_path) or None) is not None
                    and tab.suggestion_for(entry.image_path).source == "your model", timeout=60_000)
    assert tab.canvas.is_suggestion() and "Suggested by your model (1.00)" in tab.canvas.banner()
    key(qtbot, tab, Qt.Key.Key_Right)  # accepts the suggested box and moves on
    assert tab.index == 1
    sample = sample_for(dataset, entry.image_path)
    assert sample.has_face
    assert np.allclose(sample.box, (0.25, 0.2, 0.75, 0.9), atol=0.01)

    # Without the model, back to MTCNN; the classic finder can still be chosen, and says so.
    tab.set_detector(None)
    assert tab.engine() == MTCNN and "MTCNN" in tab.source_label.text()
    tab.set_engine(CLASSIC)
    assert "classic" in tab.source_label.text()
    entry = tab.current_entry()
    qtbot.waitUntil(lambda: (tab.suggestion_for(entry.image_path) or None) is not None
                    and tab.suggestion_for(entry.image_path).source == "the classic finder", timeout=60_000)
    assert ("Suggested by the classic finder:" if tab.suggestion_for(entry.image_path).box
            else "The classic finder found no face:") in tab.canvas.banner()


def test_a_broken_label_is_listed_and_can_be_redone(qtbot, settings, dataset):
    pictures = sorted((dataset / "images").glob("*.jpg"))
    (dataset / "labels").mkdir()
    bad = dataset / "labels" / f"{pictures[0].stem}.json"
    bad.write_text("{ not json", encoding="utf-8")
    (dataset / "images" / "zz_corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    tab = LabelTab(settings)
    qtbot.addWidget(tab)
    tab.set_dataset(dataset)
    qtbot.waitUntil(lambda: len(tab.entries) == 7, timeout=10_000)
    assert tab.problems_view.isVisibleTo(tab)
    problems = tab.problems_view.toPlainText()
    assert str(bad) in problems and "zz_corrupt.jpg" in problems
    broken = next(e for e in tab.entries if e.image_path.name == "zz_corrupt.jpg")
    assert broken.status == "broken"
    first = tab.entries[0]
    assert first.status == UNLABELLED and first.label_path == bad and "not valid JSON" in first.note
    assert tab.index == 0  # opens at the first unlabelled picture: the one with the bad label
    qtbot.mouseClick(tab.no_face_button, Qt.MouseButton.LeftButton)
    assert json.loads(bad.read_text())["shapes"] == []
    tab.shutdown()


def test_coming_back_to_the_tab_picks_up_new_pictures(qtbot, tab, dataset, demo_pictures):
    key(qtbot, tab, Qt.Key.Key_Right)
    shown = tab.current_entry().image_path
    shutil.copy(demo_pictures[0], dataset / "images" / "zz_new.jpg")  # Collect took one more meanwhile
    tab.hide()
    tab.show()
    qtbot.waitUntil(lambda: len(tab.entries) == 7, timeout=10_000)
    assert tab.current_entry().image_path == shown  # the picture being labelled stays
    assert tab.entries[-1].image_path.name == "zz_new.jpg" and tab.entries[-1].status == UNLABELLED


# ------------------------------------------------------------------------------------------------ suggest all
# Real MTCNN on real faces: the frames of tests/test_autolabel.py (photos pasted at known places).


@pytest.fixture
def face_dataset(tmp_path) -> tuple[Path, dict]:
    """DATASET/images with 4 real faces, 2 pictures without one and a corrupt file; nothing labelled."""
    root = tmp_path / "faces"
    truth = write_pictures(root / "images", count_faces=4, count_empty=2)
    (root / "images" / "zz_corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root, truth


def open_tab(qtbot, settings, root: Path, pictures: int) -> LabelTab:
    tab = LabelTab(settings)
    qtbot.addWidget(tab)
    tab.resize(1100, 760)
    tab.show()
    qtbot.waitExposed(tab)
    tab.set_dataset(root)
    qtbot.waitUntil(lambda: len(tab.entries) == pictures and tab.index >= 0, timeout=10_000)
    return tab


class TickWatch:
    """Counts a 20 ms timer on the UI thread: the longest gap between ticks is how long the window froze."""

    def __init__(self, tab: LabelTab) -> None:
        from PySide6.QtCore import QTimer

        self.tab = tab
        self.times: list[float] = []
        self.progress_seen: set[int] = set()
        self.timer = QTimer(tab)  # owned by the tab: never deleted by a garbage collection in another thread
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        import time

        self.times.append(time.perf_counter())
        if self.tab.is_suggesting_all() and self.tab.suggest_progress.maximum() > 0:
            self.progress_seen.add(self.tab.suggest_progress.value())

    def longest_gap(self) -> float:
        self.timer.stop()
        return max(b - a for a, b in zip(self.times, self.times[1:], strict=False))


def test_suggest_all_labels_every_picture_in_the_background_then_each_is_reviewed(qtbot, settings, face_dataset):
    root, truth = face_dataset
    tab = open_tab(qtbot, settings, root, pictures=len(truth) + 1)
    assert tab.engine() == MTCNN and tab.suggest_all_button.isEnabled()
    watch = TickWatch(tab)

    with qtbot.waitSignal(tab.suggest_all_finished, timeout=120_000) as finished:
        qtbot.mouseClick(tab.suggest_all_button, Qt.MouseButton.LeftButton)
        assert tab.is_suggesting_all()  # started, and the click returned at once
        assert tab.suggest_progress.isVisible() and tab.cancel_button.isVisible()
        assert not tab.suggest_all_button.isEnabled() and not tab.engine_combo.isEnabled()
        assert "MTCNN is looking at every unlabelled picture" in tab.status_label.text()
    report = finished.args[0]
    qtbot.waitUntil(lambda: not tab.is_suggesting_all(), timeout=10_000)
    gap = watch.longest_gap()
    print(f"\nSuggest all: {len(truth) + 1} pictures in {report.seconds:.1f} s; the UI thread's longest pause {gap:.2f} s")
    assert gap < 1.0  # the window never froze (loading TensorFlow and MTCNN included)
    assert set(range(1, len(truth) + 1)) & watch.progress_seen  # the bar moved while it ran
    assert not tab.suggest_progress.isVisible() and not tab.cancel_button.isVisible()
    assert tab.suggest_all_button.isEnabled()

    # The count when done, the engine named, the unreadable file named.
    status = tab.status_label.text()
    assert status.startswith("MTCNN: Labelled 6 pictures (4 with a face, 2 without), kept 0 existing labels, "
                             "skipped 1 unreadable:")
    assert "images/zz_corrupt.jpg" in status and "→ accepts" in status

    # The dataset is read again: every picture labelled, marked "to review", and the tab shows the first one.
    qtbot.waitUntil(lambda: sum(e.unreviewed for e in tab.entries) == len(truth), timeout=10_000)
    assert "6 to review" in tab.progress_label.text()
    assert tab.progress_label.text().startswith("Labelled 6 / 7 (4 faces, 2 no face)")
    first = tab.current_entry()
    assert first.unreviewed and first.image_path.name == "empty_chelsea.jpg" and first.status == NO_FACE
    assert tab.canvas.banner() == "MTCNN found no face, not reviewed: → accepts, or draw the box"
    assert tab.picture_list.currentItem().text().startswith("◌")

    # → accepts it: the label is now the user's (no mark), and the next picture comes.
    key(qtbot, tab, Qt.Key.Key_Right)
    assert read_suggestion_mark(first.label_path) is None and not first.unreviewed
    assert json.loads(first.label_path.read_text())["shapes"] == []
    assert "5 to review" in tab.progress_label.text()

    # A face: shown as a suggestion with its engine and score, where the face is.
    row = next(i for i, e in enumerate(tab.entries) if e.image_path.name.startswith("face_1"))
    tab.picture_list.setCurrentRow(row)
    entry = tab.current_entry()
    assert entry.unreviewed and entry.status == FACE and tab.canvas.is_suggestion()
    assert tab.canvas.banner().startswith("Suggested by MTCNN (") and "not reviewed" in tab.canvas.banner()
    assert tab.picture_list.currentItem().text().startswith("◐")
    assert iou(tab.canvas.box(), truth[entry.image_path.name]) >= 0.5
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert tab.grab().save(str(SCREENSHOTS / "label_tab_suggest_all.png"))

    # Correcting the box (drag its bottom edge) saves it as the user's label.
    x1, y1, x2, y2 = tab.canvas.box()
    drag(qtbot, tab, ((x1 + x2) / 2, y2), ((x1 + x2) / 2, y2 + 10))
    assert not entry.unreviewed and read_suggestion_mark(entry.label_path) is None
    assert tab.canvas.banner() == "Face"
    sample = sample_for(root, entry.image_path)
    assert np.allclose(np.array(sample.box) * [FRAME_W, FRAME_H, FRAME_W, FRAME_H], (x1, y1, x2, y2 + 10), atol=1.5)

    # U goes to the next picture still to review.
    key(qtbot, tab, Qt.Key.Key_U)
    assert tab.current_entry().unreviewed
    tab.shutdown()


def test_cancel_stops_suggest_all_and_keeps_what_was_done(qtbot, settings, tmp_path):
    root = tmp_path / "many"
    truth = write_pictures(root / "images")
    tab = open_tab(qtbot, settings, root, pictures=len(truth))
    with qtbot.waitSignal(tab.suggest_all_finished, timeout=120_000) as finished:
        tab.suggest_all_button.click()
        qtbot.waitUntil(lambda: tab.suggest_progress.value() >= 1, timeout=60_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert tab.grab().save(str(SCREENSHOTS / "label_tab_suggesting.png"))
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
        assert not tab.cancel_button.isEnabled() and "stopping" in tab.status_label.text()
    report = finished.args[0]
    qtbot.waitUntil(lambda: not tab.is_suggesting_all(), timeout=10_000)
    assert report.cancelled and 1 <= len(report.written) < len(truth)
    assert len(list((root / "labels").glob("*.json"))) == len(report.written)
    assert tab.status_label.text().startswith(f"MTCNN: Stopped after {len(report.written)} of {len(truth)} pictures.")
    assert tab.suggest_all_button.isEnabled() and not tab.cancel_button.isVisible()
    qtbot.waitUntil(lambda: sum(e.unreviewed for e in tab.entries) == len(report.written), timeout=10_000)
    tab.shutdown()


def test_blazeface_suggests_every_real_face_fast_and_suggest_all_names_it(qtbot, settings, face_dataset):
    """The pretrained BlazeFace as the suggestion engine, on real faces: a box where the face is, marked as
    BlazeFace's, and "Suggest all" writes labels that say so."""
    root, truth = face_dataset
    tab = open_tab(qtbot, settings, root, pictures=len(truth) + 1)
    combo = tab.engine_combo
    assert combo.itemText(combo.findData(BLAZEFACE)) == "BlazeFace (pretrained, fast)"
    assert combo.model().item(combo.findData(BLAZEFACE)).isEnabled()
    combo.setCurrentIndex(combo.findData(BLAZEFACE))
    combo.activated.emit(combo.currentIndex())  # as a user's pick in the list
    assert tab.engine() == BLAZEFACE and tab.source_label.text().startswith("Suggestions: BlazeFace, a pretrained")
    entry = next(e for e in tab.entries if e.image_path.name.startswith("face_0"))
    tab.picture_list.setCurrentRow(tab.entries.index(entry))
    qtbot.waitUntil(lambda: tab.suggestion_for(entry.image_path) is not None, timeout=120_000)
    suggestion = tab.suggestion_for(entry.image_path)
    assert suggestion.source == "BlazeFace" and not suggestion.error and len(suggestion.boxes) == 1
    assert suggestion.score > 0.6 and iou(suggestion.box, truth[entry.image_path.name]) >= 0.5
    assert tab.canvas.is_suggestion() and tab.canvas.banner().startswith("Suggested by BlazeFace (0.")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert tab.grab().save(str(SCREENSHOTS / "label_tab_blazeface.png"))

    with qtbot.waitSignal(tab.suggest_all_finished, timeout=120_000) as finished:
        qtbot.mouseClick(tab.suggest_all_button, Qt.MouseButton.LeftButton)
        assert "BlazeFace is looking at every unlabelled picture" in tab.status_label.text()
    report = finished.args[0]
    assert report.engine == "BlazeFace" and (report.faces, report.no_faces) == (4, 2)
    print(f"\nSuggest all with BlazeFace: {len(truth) + 1} pictures in {report.seconds:.1f} s (engine load included)")
    assert tab.status_label.text().startswith("BlazeFace: Labelled 6 pictures (4 with a face, 2 without)")
    for label in report.written:
        mark = read_suggestion_mark(label.label_path)
        assert mark.engine == "BlazeFace", label.label_path
        if label.boxes:
            assert mark.score >= 0.6 and iou(label.box, truth[label.image_path.name]) >= 0.5, label
    qtbot.waitUntil(lambda: sum(e.unreviewed for e in tab.entries) == len(truth), timeout=10_000)
    tab.shutdown()


def test_without_blazeface_weights_the_tab_says_so_and_mtcnn_suggests(qtbot, settings, face_dataset, monkeypatch,
                                                                     tmp_path):
    import training.model.blazeface

    monkeypatch.setattr(training.model.blazeface, "weights_path", lambda: tmp_path / "gone.npz")
    root, truth = face_dataset
    tab = open_tab(qtbot, settings, root, pictures=len(truth) + 1)
    tab.set_engine(BLAZEFACE)
    qtbot.waitUntil(lambda: tab.engine() == MTCNN, timeout=120_000)  # it failed to load: MTCNN takes over
    assert "BlazeFace is unavailable (it cannot be loaded: " in tab.source_label.text()
    assert "gone.npz" in tab.source_label.text()
    assert not tab.engine_combo.model().item(tab.engine_combo.findData(BLAZEFACE)).isEnabled()
    entry = tab.current_entry()
    qtbot.waitUntil(lambda: tab.suggestion_for(entry.image_path) is not None, timeout=120_000)
    assert tab.suggestion_for(entry.image_path).source == "MTCNN"
    tab.shutdown()


def test_without_mtcnn_the_tab_falls_back_and_says_so(qtbot, settings, face_dataset, monkeypatch, tmp_path):
    import sys

    import training.model.blazeface

    root, truth = face_dataset
    # MTCNN is installed but fails to load once the tab runs, and BlazeFace's weights are missing too: the first
    # suggestion falls back to the classic finder.
    tab = LabelTab(settings)
    qtbot.addWidget(tab)
    assert tab.engine() == MTCNN
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # what `import mtcnn` meets when it cannot be loaded
    monkeypatch.setattr(training.model.blazeface, "weights_path", lambda: tmp_path / "gone.npz")
    tab.set_dataset(root)
    qtbot.waitUntil(lambda: tab.engine() == CLASSIC, timeout=60_000)
    assert "MTCNN is unavailable (it cannot be loaded" in tab.source_label.text()
    assert "pip install mtcnn" in tab.source_label.text()
    assert not tab.engine_combo.model().item(tab.engine_combo.findData(MTCNN)).isEnabled()
    entry = tab.current_entry()
    qtbot.waitUntil(lambda: tab.suggestion_for(entry.image_path) is not None, timeout=60_000)
    assert tab.suggestion_for(entry.image_path).source == "the classic finder"
    tab.shutdown()

    # Not installed at all: BlazeFace, the other pretrained detector, from the start.
    fresh = LabelTab(settings)
    qtbot.addWidget(fresh)
    assert fresh.engine() == BLAZEFACE
    assert "MTCNN is unavailable (MTCNN is not installed: pip install mtcnn)" in fresh.source_label.text()
    fresh.set_detector(confident_detector((0.25, 0.2, 0.75, 0.9)))
    assert fresh.engine() == BLAZEFACE  # a pretrained detector stays the default; the model is there to choose
    fresh.set_engine(MODEL)
    assert fresh.engine() == MODEL and fresh.source_label.text().startswith("Suggestions: your model")
    fresh.shutdown()


def test_mtcnn_suggests_every_face_and_next_accepts_them_all(qtbot, settings, tmp_path):
    import cv2

    root = tmp_path / "group"
    (root / "images").mkdir(parents=True)
    frame, truths = compose_faces_frame()
    assert cv2.imwrite(str(root / "images" / "group.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert cv2.imwrite(str(root / "images" / "more.jpg"), frame[:, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    tab = open_tab(qtbot, settings, root, pictures=2)
    entry = tab.current_entry()
    qtbot.waitUntil(lambda: tab.suggestion_for(entry.image_path) is not None, timeout=60_000)
    assert tab.canvas.is_suggestion() and matched(tab.canvas.boxes(), truths)
    assert tab.canvas.banner().startswith("3 faces suggested by MTCNN (")
    key(qtbot, tab, Qt.Key.Key_Right)  # accepts all three, then the next picture
    assert tab.index == 1 and entry.status == FACE and entry.face_count == 3
    assert matched(rectangles(entry.label_path), truths)
    assert tab.picture_list.item(0).text().endswith("(3 faces)")
    assert tab.progress_label.text().startswith("Labelled 1 / 2 (3 faces in 1 picture, 0 no face)")
    key(qtbot, tab, Qt.Key.Key_Left)
    key(qtbot, tab, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the accept: unlabelled again
    assert entry.status == UNLABELLED and not entry.label_path.exists()
    assert tab.canvas.is_suggestion() and len(tab.canvas.boxes()) == 3  # the suggestion is back
    tab.shutdown()

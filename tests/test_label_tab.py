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

from desktop.label_tab import FACE, NO_FACE, UNLABELLED, LabelTab, clamp_box, label_path_for
from training.data import load_dataset, load_image
from training.demo import make_demo_data

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
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


def key(qtbot, tab: LabelTab, k: Qt.Key) -> None:
    tab.canvas.setFocus()
    qtbot.keyClick(tab.canvas, k)


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

    # A suggestion from the classic face finder arrives off the UI thread, whatever it finds.
    qtbot.waitUntil(lambda: tab.suggestion_for(first) is not None, timeout=60_000)
    suggestion = tab.suggestion_for(first)
    assert suggestion.source == "classic face finder" and not suggestion.error
    assert ("Suggested by" if suggestion.box else "found no face") in tab.canvas.banner()

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
    key(qtbot, tab, Qt.Key.Key_Delete)
    assert len(tab.entries) == 5 and victim.image_path not in [e.image_path for e in tab.entries]
    assert (dataset / "trash" / victim.image_path.name).is_file()
    assert (dataset / "trash" / f"{victim.image_path.stem}.json").is_file()
    assert not victim.image_path.exists() and not victim.label_path.exists()
    assert tab.progress_label.text().startswith("Labelled 0 / 5")
    assert sum(len(s) for s in load_dataset(dataset).splits.values()) == 5


def confident_detector(box_norm: tuple[float, float, float, float]):
    """A real Keras detector whose heads are set to say "face" at ``box_norm`` for any picture."""
    from training.inference import Detector
    from training.model import build_model

    model = build_model("tiny", input_size=48, weights=None)
    for name, bias in (("class", [10.0]), ("box", [float(np.log(v / (1 - v))) for v in box_norm])):
        layer = model.get_layer(name)
        kernel, _ = layer.get_weights()
        layer.set_weights([np.zeros_like(kernel), np.asarray(bias, np.float32)])
    return Detector(model)


def test_model_suggestion_is_accepted_with_next(qtbot, tab, dataset):
    tab.set_detector(confident_detector((0.25, 0.2, 0.75, 0.9)))
    assert "your model" in tab.source_label.text()
    entry = tab.current_entry()
    qtbot.waitUntil(lambda: (tab.suggestion_for(entry.image_path) or None) is not None
                    and tab.suggestion_for(entry.image_path).source == "model", timeout=60_000)
    assert tab.canvas.is_suggestion() and "Suggested by the model" in tab.canvas.banner()
    key(qtbot, tab, Qt.Key.Key_Right)  # accepts the suggested box and moves on
    assert tab.index == 1
    sample = sample_for(dataset, entry.image_path)
    assert sample.has_face
    assert np.allclose(sample.box, (0.25, 0.2, 0.75, 0.9), atol=0.01)

    # Back to the classic finder.
    tab.set_detector(None)
    assert "classic" in tab.source_label.text()


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


def test_label_geometry_helpers():
    assert clamp_box((50, 40, -5, 130), W, H) == (0.0, 40.0, 50.0, 120.0)
    assert clamp_box((10, 10, 11, 50), W, H) is None
    assert label_path_for(Path("/d/images/a.jpg")) == Path("/d/labels/a.json")
    assert label_path_for(Path("/d/pics/a.png")) == Path("/d/pics/a.json")


def test_coming_back_to_the_tab_picks_up_new_pictures(qtbot, tab, dataset, demo_pictures):
    key(qtbot, tab, Qt.Key.Key_Right)
    shown = tab.current_entry().image_path
    shutil.copy(demo_pictures[0], dataset / "images" / "zz_new.jpg")  # Collect took one more meanwhile
    tab.hide()
    tab.show()
    qtbot.waitUntil(lambda: len(tab.entries) == 7, timeout=10_000)
    assert tab.current_entry().image_path == shown  # the picture being labelled stays
    assert tab.entries[-1].image_path.name == "zz_new.jpg" and tab.entries[-1].status == UNLABELLED

"""The Label tab's state without Qt (``desktop.label_session``), on real pictures and real labelme files.

Moving through the pictures, what the canvas shows, saving, the trash, the counts and the suggestion
engines' rules. The real tab (mouse, keys, MTCNN, threads) is tested in test_label_tab.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.label_session import (
    BLAZEFACE,
    BROKEN,
    CLASSIC,
    FACE,
    MODEL,
    MTCNN,
    NO_FACE,
    UNLABELLED,
    Engine,
    LabelError,
    LabelSession,
    LabelStatus,
    Suggestion,
    Tone,
    clamp_box,
    list_text,
    list_tooltip,
    make_suggestion,
    scan_dataset,
)
from training.core.detection import Detection
from training.data.dataset import label_path_for, load_dataset
from training.data.formats.labelme import write_labelme
from training.inference.autolabel import SuggestionMark, read_suggestion_mark, write_suggested_label

W, H = 80, 60


def picture(path: Path, shade: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((H, W, 3), shade, np.uint8)
    cv2.circle(image, (40, 30), 15, (200, 180, 160), -1)
    path.write_bytes(cv2.imencode(path.suffix, image)[1].tobytes())
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    """images/a..e.jpg: a labelled with a face, b "no face", c and d unlabelled, e labelled by "Suggest all"."""
    root = tmp_path / "data"
    for name in "abcde":
        picture(root / "images" / f"{name}.jpg")
    write_labelme(root / "labels" / "a.json", root / "images" / "a.jpg", (10, 5, 50, 45), W, H)
    write_labelme(root / "labels" / "b.json", root / "images" / "b.jpg", None, W, H)
    write_suggested_label(root / "labels" / "e.json", root / "images" / "e.jpg", (20, 10, 60, 50), W, H,
                          SuggestionMark("MTCNN", 0.97))
    return root


class Recorder:
    """Every event a session emits, in order, as a view would receive them."""

    def __init__(self, session: LabelSession) -> None:
        self.seen: list[tuple] = []
        events = session.events
        events.entries.connect(lambda: self.seen.append(("entries",)))
        events.entry.connect(lambda index: self.seen.append(("entry", index)))
        events.removed.connect(lambda index: self.seen.append(("removed", index)))
        events.current.connect(lambda index: self.seen.append(("current", index)))
        events.engine.connect(lambda: self.seen.append(("engine",)))

    def take(self) -> list[tuple]:
        seen, self.seen = self.seen, []
        return seen


def opened(root: Path, mtcnn_error: str = "") -> tuple[LabelSession, Recorder]:
    session = LabelSession(mtcnn_error)
    recorder = Recorder(session)
    assert session.open(root) is True
    index, review = session.apply_scan(*scan_dataset(root))
    session.go_to(index)
    assert session.open_current() is not None
    return session, recorder


def samples_by_name(root: Path) -> dict:
    """What training reads from the dataset, by picture name."""
    return {s.image_path.name: s for samples in load_dataset(root).splits.values() for s in samples}


class TrainedModel:
    """What the session reads of a trained Detector: its file and its threshold (it only passes it on)."""

    def __init__(self, path: str, threshold: float = 0.6) -> None:
        self.path, self.threshold = path, threshold


def test_a_dataset_opens_at_the_first_unlabelled_picture_with_its_counts(root):
    session, recorder = opened(root)
    assert [e.status for e in session.entries] == [FACE, NO_FACE, UNLABELLED, UNLABELLED, FACE]
    assert session.index == 2 and session.current().image_path.name == "c.jpg"
    assert recorder.take() == [("entries",), ("current", 2)]
    counts = session.counts()
    assert (counts.total, counts.labelled, counts.faces, counts.no_face, counts.unreviewed) == (5, 3, 2, 1, 1)
    assert session.progress_text() == "Labelled 3 / 5 (2 faces, 1 no face), 1 to review"
    assert session.current().width == W and session.current().height == H
    assert session.open(root) is False  # the same dataset again: nothing to read


def test_moving_through_the_pictures(root):
    session, recorder = opened(root)
    recorder.take()
    assert session.step(1) and session.index == 3
    assert session.step(1) and session.index == 4
    assert not session.step(1) and session.index == 4  # past the end: nothing happens
    assert recorder.take() == [("current", 3), ("current", 4)]
    session.go_to(0)
    assert not session.step(-1) and session.index == 0
    assert session.next_to_review() == 2  # c: unlabelled
    session.go_to(3)
    assert session.next_to_review() == 4  # e: labelled by "Suggest all", not reviewed
    session.go_to(4)
    assert session.next_to_review() is None
    session.go_to(99)
    assert session.index == -1 and session.current() is None and session.open_current() is None


def test_what_the_canvas_shows_for_each_kind_of_label(root):
    session, _ = opened(root)
    session.go_to(0)
    session.open_current()
    view = session.canvas_view()
    assert (view.box, view.suggested, view.banner, view.tone) == ((10, 5, 50, 45), False, "Face", Tone.FACE)
    session.go_to(1)
    session.open_current()
    assert session.canvas_view().banner == "No face" and session.canvas_view().tone is Tone.NO_FACE
    session.go_to(4)
    session.open_current()
    view = session.canvas_view()
    assert view.box == (20, 10, 60, 50) and view.suggested and view.tone is Tone.SUGGESTED
    assert view.banner == "Suggested by MTCNN (0.97), not reviewed: → accepts, or correct it"
    session.go_to(2)
    assert session.canvas_view().banner == "Cannot show this picture: "  # not decoded yet
    session.open_current()
    assert session.canvas_view().banner == "Looking for a face …"
    session.go_to(-1)
    assert session.canvas_view().banner == "No pictures"
    assert LabelSession().canvas_view().banner == "Choose a dataset folder"


def test_a_suggestion_is_shown_inside_the_picture_and_accepted(root):
    session, recorder = opened(root)
    entry = session.current()
    assert session.ask(entry) is True and session.ask(entry) is False  # asked once per engine
    stale = session.generation - 1
    assert session.suggestion_arrived(stale, entry.image_path, Suggestion((1, 1, 9, 9), 0.9, "MTCNN")) is False
    assert entry.image_path not in session.suggestions  # an answer of a dropped engine is ignored
    suggestion = Suggestion((-10, 20, 30, 90), 0.91, "MTCNN")
    assert session.suggestion_arrived(session.generation, entry.image_path, suggestion) is True
    view = session.canvas_view()
    assert view.box == (0.0, 20.0, 30.0, 60.0) and view.suggested  # kept inside the 80x60 picture
    assert view.banner == "Suggested by MTCNN (0.91): → accepts, or correct it"
    recorder.take()
    assert session.accept() == "suggestion"
    assert recorder.take() == [("entry", 2)]
    assert entry.status == FACE and entry.box == (0.0, 20.0, 30.0, 60.0)
    sample = samples_by_name(root)["c.jpg"]
    assert sample.has_face and np.allclose(np.array(sample.box) * [W, H, W, H], (0, 20, 30, 60))
    assert session.accept() is None  # labelled now: nothing left to accept


def test_a_suggestion_without_a_face_or_with_an_error_is_never_saved(root):
    session, _ = opened(root)
    entry = session.current()
    session.suggestion_arrived(session.generation, entry.image_path, Suggestion(None, 0.12, "your model"))
    assert session.canvas_view().banner == "Your model found no face (0.12): draw the box, or N for no face"
    assert session.accept() is None and entry.status == UNLABELLED
    session.suggestion_arrived(session.generation, entry.image_path, Suggestion(None, None, "MTCNN", "out of memory"))
    assert session.canvas_view().banner == "No suggestion (out of memory): draw the box, or N for no face"
    assert session.accept() is None and not entry.label_path.exists()


def test_accepting_a_label_suggest_all_wrote_makes_it_the_users(root):
    session, _ = opened(root)
    session.go_to(4)
    session.open_current()
    entry = session.current()
    assert entry.unreviewed and read_suggestion_mark(entry.label_path) is not None
    assert list_text(entry) == "◐  e.jpg"
    assert list_tooltip(entry) == f"{entry.image_path}\nface, suggested by MTCNN 0.97, not reviewed"
    assert session.accept() == "reviewed"
    assert not entry.unreviewed and read_suggestion_mark(entry.label_path) is None
    assert list_text(entry) == "●  e.jpg" and session.counts().unreviewed == 0
    assert session.canvas_view().banner == "Face"


def test_saving_a_box_and_no_face_writes_labelme_files_training_reads(root):
    session, recorder = opened(root)
    entry = session.current()
    recorder.take()
    assert session.save((20, 10, 70, 50)).status == FACE and entry.box == (20.0, 10.0, 70.0, 50.0)
    assert json.loads(entry.label_path.read_text())["shapes"][0]["points"] == [[20.0, 10.0], [70.0, 50.0]]
    sample = samples_by_name(root)["c.jpg"]
    assert sample.label_path == root / "labels" / "c.json" == entry.label_path
    assert np.allclose(np.array(sample.box) * [W, H, W, H], (20, 10, 70, 50))
    assert session.save(None).status == NO_FACE and entry.box is None
    assert json.loads(entry.label_path.read_text())["shapes"] == []
    assert recorder.take() == [("entry", 2), ("entry", 2)]
    assert not samples_by_name(root)["c.jpg"].has_face


def test_a_label_that_cannot_be_written_is_an_error_naming_it(root):
    session, _ = opened(root)
    entry = session.current()
    entry.label_path.mkdir(parents=True)  # a folder where the label should go: the write fails
    with pytest.raises(LabelError, match=f"^{entry.label_path}: cannot write the label: "):
        session.save(None)
    assert entry.status == UNLABELLED


def test_trash_moves_picture_and_label_and_shows_the_next(root):
    session, recorder = opened(root)
    (root / "trash").mkdir()
    picture(root / "trash" / "a.jpg")  # an earlier "a.jpg" in the trash is kept
    session.go_to(0)
    recorder.take()
    moved, trash = session.trash_current()
    assert trash == root / "trash" and [p.name for p in moved] == ["a-2.jpg", "a.json"]
    assert (trash / "a.jpg").is_file() and not (root / "images" / "a.jpg").exists()
    assert recorder.take() == [("removed", 0), ("current", 0)]
    assert session.current().image_path.name == "b.jpg" and session.counts().total == 4
    session.go_to(3)
    session.trash_current()  # the last one: the one before it is shown
    assert session.index == 2 and [e.image_path.name for e in session.entries] == ["b.jpg", "c.jpg", "d.jpg"]
    assert sum(len(s) for s in load_dataset(root).splits.values()) == 3


def test_a_broken_picture_is_marked_and_says_why(root):
    (root / "images" / "f.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    session, recorder = opened(root)
    broken = session.entries[-1]
    assert broken.status == BROKEN and list_text(broken) == "⚠  f.jpg"
    session.go_to(5)
    recorder.take()
    assert session.open_current() is None and not session.picture_open
    assert recorder.take() == [("entry", 5)]
    assert session.canvas_view().banner.startswith("Cannot show this picture: ")
    assert session.accept() is None


def test_a_rescan_keeps_the_picture_shown_and_after_suggest_all_shows_the_first_to_review(root):
    session, _ = opened(root)
    session.go_to(3)
    picture(root / "images" / "zz.jpg")  # Collect took one more meanwhile
    index, review = session.apply_scan(*scan_dataset(root))
    assert (index, review) == (3, False) and len(session.entries) == 6
    session.review_next_scan = True
    assert session.apply_scan(*scan_dataset(root)) == (4, True)  # e.jpg, to review
    assert session.review_next_scan is False
    session.scan_failed()
    assert session.entries == [] and session.current() is None


def test_the_engine_follows_what_can_suggest():
    session = LabelSession()
    recorder = Recorder(session)
    assert session.engine is MTCNN and session.source_text() == "Suggestions: MTCNN, a pretrained face detector"
    assert session.use_engine(MODEL) is False and session.engine is MTCNN  # no model yet: the default stays
    model = TrainedModel("/runs/r1/best.keras")
    generation = session.generation
    assert session.set_detector(model) is True and session.generation == generation + 1  # asked again
    assert session.engine is MTCNN  # MTCNN stays the suggester; the model is there to choose
    assert session.source_text() == ("Suggestions: MTCNN, a pretrained face detector "
                                     "(choose your model best.keras in the list to see how it does)")
    assert session.model_name() == "your model (best.keras)"
    assert session.choose_engine("model") is True and session.engine is MODEL
    assert session.source_text() == "Suggestions: your model best.keras"
    assert session.suggest_all_min_score() == 0.6
    assert session.set_detector(None) is True and session.engine is MTCNN  # the model went: back to MTCNN
    assert session.choose_engine(CLASSIC) is True
    assert session.source_text() == "Suggestions: the classic face finder (until you have trained a model)"
    assert session.set_detector(model) and session.engine is CLASSIC  # chosen by hand: it stays
    with pytest.raises(ValueError,
                       match="unknown suggestion engine 'yolo'; expected one of mtcnn, blazeface, model, classic"):
        session.choose_engine("yolo")
    assert ("engine",) in recorder.take()


def test_blazeface_is_a_fast_pretrained_engine_beside_mtcnn():
    session = LabelSession()
    assert session.engine is MTCNN  # the default: the surest suggester (see LabelSession.default_engine)
    assert session.choose_engine("blazeface") is True and session.engine is BLAZEFACE
    assert session.source_text() == ("Suggestions: BlazeFace, a pretrained face detector "
                                     "(fast; MTCNN is surer on small faces)")
    assert session.suggest_all_min_score() == 0.6  # BlazeFace's own threshold, not MTCNN's 0.9
    assert session.set_detector(TrainedModel("/m/best.keras")) is True and session.engine is BLAZEFACE  # chosen: stays
    assert "BlazeFace, the pretrained detector a new run starts from" in session.engine_tip()

    # Its weights missing: said, and MTCNN suggests instead.
    assert session.engine_failed(BLAZEFACE, "weights not found") is True and session.engine is MTCNN
    assert session.blazeface_error == "it cannot be loaded: weights not found"
    assert session.source_text().endswith(". BlazeFace is unavailable (it cannot be loaded: weights not found)")
    assert "\nBlazeFace is unavailable: it cannot be loaded: weights not found" in session.engine_tip()
    assert session.choose_engine(BLAZEFACE) is False and session.engine is MTCNN


def test_without_mtcnn_the_session_falls_back_and_says_so():
    session = LabelSession()
    session.suggestions[Path("x.jpg")] = Suggestion(None, None, "MTCNN")
    assert session.mtcnn_failed("No module named 'mtcnn'") is True  # suggestions dropped, asked again
    assert session.engine is BLAZEFACE and not session.suggestions  # the other pretrained detector
    assert session.source_text().endswith(". MTCNN is unavailable (it cannot be loaded: No module named 'mtcnn')")
    assert "\nMTCNN is unavailable: it cannot be loaded" in session.engine_tip()
    assert session.use_engine(MTCNN) is False and session.engine is BLAZEFACE
    assert session.engine_failed(BLAZEFACE, "no weights") is True and session.engine is CLASSIC  # neither loads

    fresh = LabelSession("MTCNN is not installed: pip install mtcnn", "its weights are missing")
    assert fresh.engine is CLASSIC
    fresh.set_detector(TrainedModel("/m/best.keras"))
    assert fresh.engine is MODEL and fresh.source_text().startswith("Suggestions: your model best.keras.")
    assert "BlazeFace is unavailable (its weights are missing)" in fresh.source_text()


def test_finders_answers_become_suggestions():
    face, weak = Detection(0.97, (1.0, 2.0, 30.0, 40.0)), Detection(0.55, (1.0, 2.0, 30.0, 40.0))
    assert make_suggestion(MTCNN, face) == Suggestion((1.0, 2.0, 30.0, 40.0), 0.97, "MTCNN", scores=(0.97,))
    assert make_suggestion(MTCNN, weak).box is None  # under MTCNN's minimum score: no face
    assert make_suggestion(MTCNN, None) == Suggestion(None, None, "MTCNN")
    assert make_suggestion(MODEL, weak, TrainedModel("m.keras", 0.5)).box == (1.0, 2.0, 30.0, 40.0)
    assert make_suggestion(MODEL, weak, TrainedModel("m.keras", 0.6)) == Suggestion(None, 0.55, "your model")
    assert make_suggestion(CLASSIC, weak) == Suggestion((1.0, 2.0, 30.0, 40.0), None, "the classic finder")
    assert make_suggestion(BLAZEFACE, weak) == Suggestion((), 0.55, "BlazeFace")  # under its own 0.6: no face
    assert make_suggestion(BLAZEFACE, [face, Detection(0.4, (5, 5, 9, 9))]) == Suggestion(
        (1.0, 2.0, 30.0, 40.0), 0.97, "BlazeFace", scores=(0.97,))  # the 0.4 box is under its 0.6


def test_every_face_a_finder_reports_is_suggested():
    """detect_all's list: each face over the engine's bar is a suggested box, most confident first."""
    second, first = Detection(0.93, (40.0, 5.0, 70.0, 40.0)), Detection(0.99, (1.0, 2.0, 30.0, 40.0))
    weak = Detection(0.5, (50.0, 45.0, 60.0, 58.0))
    suggestion = make_suggestion(MTCNN, [second, weak, first])
    assert suggestion.boxes == (first.box, second.box) and suggestion.scores == (0.99, 0.93)
    assert suggestion.score == 0.99 and suggestion.box == first.box
    assert make_suggestion(MODEL, [second, weak], TrainedModel("m.keras", 0.4)).boxes == (second.box, weak.box)
    assert make_suggestion(CLASSIC, [second, weak]).boxes == (second.box, weak.box)
    assert make_suggestion(MTCNN, []) == Suggestion((), None, "MTCNN")


def test_label_geometry_helpers():
    """Moved here from test_label_tab.py: the tab's box clamping and label paths are the session's."""
    assert clamp_box((50, 40, -5, 130), 160, 120) == (0.0, 40.0, 50.0, 120.0)
    assert clamp_box((10, 10, 11, 50), 160, 120) is None  # under MIN_BOX_PX wide: a click
    assert label_path_for(Path("/d/images/a.jpg")) == Path("/d/labels/a.json")
    assert label_path_for(Path("/d/pics/a.png")) == Path("/d/pics/a.json")


def test_statuses_and_engines_read_as_the_words_they_always_were():
    assert LabelStatus.NO_FACE == "no face" and f"{NO_FACE}" == "no face" and str(BROKEN) == "broken"
    assert Engine("mtcnn") is MTCNN and f"{MODEL}" == "model"


def test_the_tab_models_load_without_qt_or_tensorflow():
    import os
    import subprocess
    import sys

    code = ("import sys, desktop.label_session, desktop.detector_state, desktop.box_handles, training.core.drawing; "
            "sys.exit(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'tensorflow', 'keras')) or 0)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------------ several faces


def rectangles(json_path: Path) -> list[list[float]]:
    """The face rectangles of a labelme file, as [x1, y1, x2, y2] lists in file order."""
    shapes = json.loads(json_path.read_text(encoding="utf-8"))["shapes"]
    assert all(s["shape_type"] == "rectangle" and s["label"] == "face" for s in shapes)
    return [[*s["points"][0], *s["points"][1]] for s in shapes]


THREE = [(2, 3, 22, 25), (30, 10, 52, 40), (56, 30, 78, 58)]


def test_several_boxes_are_added_moved_deleted_and_read_back(root):
    session, recorder = opened(root)
    entry = session.current()  # c.jpg, unlabelled
    recorder.take()
    for i, box in enumerate(THREE):
        assert session.add_box(box) == i and session.selected == i  # a new box is selected
    assert entry.status == FACE and entry.boxes == tuple(tuple(map(float, b)) for b in THREE)
    assert rectangles(entry.label_path) == [list(map(float, b)) for b in THREE]
    assert recorder.take() == [("entry", 2)] * 3
    assert list_text(entry) == "●  c.jpg  (3 faces)" and "\n3 faces" in list_tooltip(entry)
    assert session.progress_text() == "Labelled 4 / 5 (5 faces in 3 pictures, 1 no face), 1 to review"
    view = session.canvas_view()
    assert view.boxes == entry.boxes and view.banner == "3 faces" and view.selected == 2 and not view.suggested

    assert session.add_box((10, 10, 11, 50)) is None and len(entry.boxes) == 3  # a click, not a box
    assert session.move_box(1, (28, 8, 95, 42)) and session.selected == 1
    assert entry.boxes[1] == (28.0, 8.0, 80.0, 42.0)  # kept inside the 80x60 picture
    session.select(0)
    assert session.delete_box() and session.selected is None
    assert rectangles(entry.label_path) == [[28.0, 8.0, 80.0, 42.0], [56.0, 30.0, 78.0, 58.0]]
    assert not session.delete_box()  # nothing selected
    session.select(7)
    assert session.selected is None  # no such box

    # Training and a fresh session read both faces back (largest first).
    sample = samples_by_name(root)["c.jpg"]
    assert sample.face_count == 2
    assert np.allclose(np.array(sample.boxes) * [W, H, W, H], [(28, 8, 80, 42), (56, 30, 78, 58)])
    again, _ = opened(root)
    reread = next(e for e in again.entries if e.image_path.name == "c.jpg")
    assert reread.status == FACE and reread.boxes == ((28.0, 8.0, 80.0, 42.0), (56.0, 30.0, 78.0, 58.0))
    assert not any("rectangles" in p for p in again.problems)  # several faces are not a problem here

    # Deleting the last face leaves "no face" (a JSON without shapes), not an unlabelled picture.
    session.delete_box(0)
    session.delete_box(0)
    assert entry.status == NO_FACE and rectangles(entry.label_path) == []


def test_undo_and_redo_step_through_every_edit_and_the_file_follows(root):
    session, recorder = opened(root)
    entry = session.current()
    assert not session.can_undo and not session.can_redo and session.undo() is False
    for box in THREE:
        session.add_box(box)
    session.move_box(0, (4, 5, 24, 27))
    session.select(1)
    session.delete_box()
    assert rectangles(entry.label_path) == [[4.0, 5.0, 24.0, 27.0], [56.0, 30.0, 78.0, 58.0]]
    recorder.take()

    assert session.undo() and session.can_redo  # the delete
    assert len(entry.boxes) == 3 and rectangles(entry.label_path)[1] == [30.0, 10.0, 52.0, 40.0]
    assert recorder.take() == [("entry", 2)]
    assert session.undo()  # the move
    assert rectangles(entry.label_path) == [list(map(float, b)) for b in THREE]
    for _ in range(3):
        assert session.undo()
    assert entry.status == UNLABELLED and not entry.label_path.exists()  # as it was: no label at all
    assert not session.can_undo and session.undo() is False
    assert session.canvas_view().banner == "Looking for a face …"

    for _ in range(4):
        assert session.redo()
    assert rectangles(entry.label_path) == [[4.0, 5.0, 24.0, 27.0], *[list(map(float, b)) for b in THREE[1:]]]
    assert session.can_redo
    session.add_box((60, 2, 75, 20))  # a new edit: what was undone is gone
    assert not session.can_redo and session.redo() is False
    assert len(rectangles(entry.label_path)) == 4


def test_undo_across_a_save_restores_and_saving_again_writes_the_older_boxes(root):
    session, _ = opened(root)
    entry = session.current()
    session.save(THREE)  # saved with three faces
    session.save([THREE[0]])  # then saved with one
    assert rectangles(entry.label_path) == [[2.0, 3.0, 22.0, 25.0]]
    assert session.undo()
    assert entry.boxes == tuple(tuple(map(float, b)) for b in THREE)
    assert rectangles(entry.label_path) == [list(map(float, b)) for b in THREE]
    session.save(session.boxes())  # saving again writes the three older boxes, and is a step of its own
    assert rectangles(entry.label_path) == [list(map(float, b)) for b in THREE]
    assert not session.can_redo and samples_by_name(root)["c.jpg"].face_count == 3


def test_each_picture_keeps_its_own_history(root):
    session, _ = opened(root)
    session.add_box(THREE[0])
    session.step(1)  # d.jpg
    session.open_current()
    assert not session.can_undo
    session.save(None)
    assert session.can_undo
    session.step(-1)  # back on c.jpg: its own edit is undone, d keeps its "no face"
    session.open_current()
    assert session.undo() and session.current().status == UNLABELLED
    assert samples_by_name(root)["d.jpg"].has_face is False
    assert (root / "labels" / "d.json").is_file()


def test_editing_suggested_boxes_accepts_them_and_undo_brings_the_suggestion_back(root):
    session, _ = opened(root)
    entry = session.current()
    suggestion = Suggestion([(2, 3, 22, 25), (30, 10, 52, 40), (56, 30, 78, 58)], 0.99, "MTCNN",
                            scores=(0.99, 0.97, 0.95))
    assert session.suggestion_arrived(session.generation, entry.image_path, suggestion)
    view = session.canvas_view()
    assert view.suggested and len(view.boxes) == 3 and view.scores == (0.99, 0.97, 0.95)
    assert view.banner == "3 faces suggested by MTCNN (0.99): → accepts, or correct them"
    session.select(1)
    assert session.delete_box()  # a wrong suggestion removed: the others are the label now
    assert entry.status == FACE and rectangles(entry.label_path) == [[2.0, 3.0, 22.0, 25.0], [56.0, 30.0, 78.0, 58.0]]
    assert session.undo() and entry.status == UNLABELLED and not entry.label_path.exists()
    assert session.canvas_view().suggested and len(session.boxes()) == 3  # the suggestion is shown again
    assert session.accept() == "suggestion" and len(rectangles(entry.label_path)) == 3  # → takes all three
    assert session.undo() and entry.status == UNLABELLED


def test_undoing_a_review_brings_back_the_suggest_all_label_byte_for_byte(root):
    session, _ = opened(root)
    session.go_to(4)  # e.jpg: written by "Suggest all"
    session.open_current()
    entry = session.current()
    suggested = entry.label_path.read_bytes()
    session.add_box((1, 1, 15, 15))  # correcting it makes it the user's
    assert not entry.unreviewed and read_suggestion_mark(entry.label_path) is None
    assert len(rectangles(entry.label_path)) == 2
    assert session.undo()
    assert entry.label_path.read_bytes() == suggested and entry.unreviewed
    assert entry.suggested_by == SuggestionMark("MTCNN", 0.97)
    assert session.redo() and not entry.unreviewed and len(entry.boxes) == 2


def test_a_box_drawn_over_a_suggested_one_replaces_it_and_elsewhere_adds_one(root):
    session, _ = opened(root)
    entry = session.current()
    session.suggestion_arrived(session.generation, entry.image_path,
                               Suggestion([(2, 3, 22, 25), (30, 10, 52, 40)], 0.99, "MTCNN"))
    assert session.add_box((32, 12, 54, 42)) == 1  # redrawn over the second suggestion: a correction
    assert rectangles(entry.label_path) == [[2.0, 3.0, 22.0, 25.0], [32.0, 12.0, 54.0, 42.0]]
    assert session.add_box((33, 12, 55, 42)) == 2  # the user's own boxes are never replaced
    assert session.add_box((56, 30, 78, 58)) == 3 and len(entry.boxes) == 4

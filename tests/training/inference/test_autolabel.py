"""Autolabelling with MTCNN and BlazeFace, real pretrained detectors, on real photos in frames written here.

The face photos (scikit-image's astronaut, matplotlib's Grace Hopper) are pasted into 640x480
frames at known places and sizes, some mirrored, over real textures; the truth boxes were read off
the photos by eye (forehead to chin, cheek to cheek, as a person labels in labelme). The no-face
frames are real photos and textures without a face. Nothing is mocked and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from real_frames import (  # noqa: F401 - real faces in frames, shared with the Label-tab tests
    FACE_FRAMES,
    FRAME_H,
    FRAME_W,
    NO_FACE_FRAMES,
    PHOTOS,
    THREE_FACES,
    background,
    compose_faces_frame,
    compose_frame,
    face_crop,
    iou,
    matched,
    write_pictures,
)

from training.core.preprocess import box_to_pixels
from training.data.dataset import DataError, load_dataset
from training.data.formats.labelme import write_labelme
from training.evaluation.evaluate import evaluate_finder
from training.inference.autolabel import (
    DEFAULT_MIN_SCORE,
    BlazeFaceFinder,
    MtcnnUnavailableError,
    PretrainedFaceFinder,
    SuggestionMark,
    add_autolabel_parser,
    autolabel_dataset,
    min_score_of,
    mtcnn_available,
    read_suggestion_mark,
    run_autolabel,
)


@pytest.fixture(scope="module")
def finder() -> PretrainedFaceFinder:
    return PretrainedFaceFinder()


# ----------------------------------------------------------------------------------------- the finder


def test_mtcnn_finds_each_real_face_where_it_is(finder):
    for case in FACE_FRAMES:
        frame, truth = compose_frame(*case)
        detection = finder.detect(frame)
        assert detection is not None, case
        assert detection.score >= DEFAULT_MIN_SCORE, (case, detection)
        assert iou(detection.box, truth) >= 0.5, (case, detection.box, truth)
        x1, y1, x2, y2 = detection.box  # corners, in the frame's pixels, inside it
        assert 0 <= x1 < x2 <= FRAME_W and 0 <= y1 < y2 <= FRAME_H


def test_mtcnn_reports_no_face_on_frames_without_one(finder):
    for name in NO_FACE_FRAMES:
        detection = finder.detect(background(name))
        assert detection is None or detection.score < DEFAULT_MIN_SCORE, (name, detection)
    assert finder.detect(background("coffee")) is None
    assert finder.detect(np.zeros((8, 8, 3), np.uint8)) is None  # smaller than MTCNN's window


def test_the_whole_photos_and_other_pixel_formats(finder):
    """The photos as they are (BGR, as OpenCV gives frames), grey, with alpha, and a large one shrunk first."""
    astronaut, truth = PHOTOS["astronaut"][0](), PHOTOS["astronaut"][1]
    assert iou(finder.detect(astronaut).box, truth) >= 0.7
    grace, grace_truth = PHOTOS["grace_hopper"][0](), PHOTOS["grace_hopper"][1]
    assert iou(finder.detect(grace).box, grace_truth) >= 0.7
    assert iou(finder.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)).box, truth) >= 0.7
    assert iou(finder.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)).box, truth) >= 0.7
    big = cv2.resize(astronaut, (1600, 1600))
    assert iou(finder.detect(big).box, [v * 1600 / 512 for v in truth]) >= 0.7
    # A face under a tenth of the frame's shorter side is not the user at the webcam (the classic finder's rule).
    frame = background("brick")
    frame[200:330, 300:430] = cv2.resize(astronaut, (130, 130))  # a face 23 pixels wide
    assert finder.detect(frame) is None
    assert PretrainedFaceFinder(min_face_fraction=0).detect(frame) is not None


def test_of_two_faces_the_more_confident_then_the_bigger_is_chosen(finder):
    frame, small_face = compose_frame("astronaut", 20, 100, 300, "brick")
    bigger, big_face = compose_frame("grace_hopper", 300, 0, 420, "brick")
    frame[:, 300:] = bigger[:, 300:]
    faces = finder.detect_all(frame)
    assert len(faces) == 2 and all(face.score >= DEFAULT_MIN_SCORE for face in faces)
    assert iou(finder.detect(frame).box, big_face) >= 0.5


def test_mtcnn_gives_every_face_of_a_picture_with_several(finder):
    frame, truths = compose_faces_frame()
    faces = finder.detect_all(frame)
    assert all(face.score >= DEFAULT_MIN_SCORE for face in faces)
    assert matched([face.box for face in faces], truths), [face.box for face in faces]
    assert any(iou(finder.detect(frame).box, t) >= 0.6 for t in truths)  # detect: still the one best face


def test_measured_like_a_trained_model(finder, tmp_path):
    """evaluate_finder gives MTCNN the figures evaluate gives a model: F1, mean IoU, false alarms, speed."""
    truth = write_pictures(tmp_path / "images")
    for name, box in truth.items():
        write_labelme(tmp_path / "labels" / f"{Path(name).stem}.json", tmp_path / "images" / name, box, FRAME_W, FRAME_H)
    samples = [s for split in load_dataset(tmp_path, strict=True).splits.values() for s in split]
    metrics = evaluate_finder(finder, samples)
    print(f"\nMTCNN on {len(samples)} frames: F1 {metrics['f1']:.3f}, precision {metrics['precision']:.3f}, "
          f"recall {metrics['recall']:.3f}, mean IoU {metrics['mean_iou']:.3f}, "
          f"false alarms {metrics['false_alarms']}, {metrics['ms_per_picture']:.0f} ms/picture")
    assert metrics["faces"] == len(FACE_FRAMES) and metrics["no_faces"] == len(NO_FACE_FRAMES)
    assert metrics["recall"] == 1.0
    assert metrics["mean_iou"] >= 0.7
    at_min_score = evaluate_finder(finder, samples, threshold=DEFAULT_MIN_SCORE)
    assert at_min_score["f1"] == 1.0 and at_min_score["false_alarms"] == 0
    assert 0 < metrics["ms_per_picture"] < 5000


def test_without_the_mtcnn_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # what `import mtcnn` meets when it is not installed
    assert not mtcnn_available()
    with pytest.raises(MtcnnUnavailableError, match="pip install mtcnn"):
        PretrainedFaceFinder()


# ----------------------------------------------------------------------------------------- a dataset


def _suggested_documents(root: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.json"))}


def test_autolabel_writes_labels_that_training_reads_back(finder, tmp_path):
    root = tmp_path / "collected"
    truth = write_pictures(root / "images")
    seen = []
    report = autolabel_dataset(root, finder=finder, on_progress=lambda *args: seen.append(args))

    assert report.engine == "MTCNN" and not report.cancelled
    assert report.pictures == report.to_label == len(truth)
    assert (report.faces, report.no_faces, report.kept, report.skipped) == (len(FACE_FRAMES), len(NO_FACE_FRAMES), 0, [])
    assert [(done, total) for done, total, _ in seen] == [(i, len(truth)) for i in range(1, len(truth) + 1)]
    assert sorted(path.name for _, _, path in seen) == sorted(truth)

    dataset = load_dataset(root, strict=True)  # every label is one training accepts
    samples = {s.image_path.name: s for split in dataset.splits.values() for s in split}
    assert set(samples) == set(truth)
    for name, box in truth.items():
        sample = samples[name]
        assert sample.label_path == root / "labels" / f"{Path(name).stem}.json"
        assert sample.has_face == (box is not None), name
        if box is not None:
            assert iou(box_to_pixels(sample.box, sample.width, sample.height), box) >= 0.5, name

    # Marked as suggested, the engine and score said, in labelme's own fields where labelme has them.
    documents = _suggested_documents(root)
    face = documents["face_0_astronaut"]
    assert face["flags"] == {"suggested": True}
    assert face["suggestedBy"]["engine"] == "MTCNN" and face["suggestedBy"]["score"] >= DEFAULT_MIN_SCORE
    description = face["shapes"][0]["description"]
    assert description.startswith("suggested by MTCNN ") and float(description.split()[-1]) >= DEFAULT_MIN_SCORE
    assert face["imagePath"] == "../images/face_0_astronaut.jpg" and face["imageData"] is None
    assert documents["empty_coffee"]["shapes"] == [] and documents["empty_coffee"]["flags"] == {"suggested": True}
    mark = read_suggestion_mark(root / "labels" / "face_0_astronaut.json")
    assert isinstance(mark, SuggestionMark) and mark.engine == "MTCNN" and str(mark) == f"MTCNN {mark.score:.2f}"
    assert report.summary_text() == (
        f"Labelled {len(truth)} pictures ({len(FACE_FRAMES)} with a face, {len(NO_FACE_FRAMES)} without), "
        "kept 0 existing labels, skipped 0 unreadable.")

    # A label written by a person (write_labelme) carries no mark: it counts as reviewed.
    write_labelme(root / "labels" / "face_0_astronaut.json", root / "images" / "face_0_astronaut.jpg",
                  (1, 2, 3, 4), FRAME_W, FRAME_H)
    assert read_suggestion_mark(root / "labels" / "face_0_astronaut.json") is None


def test_autolabel_writes_every_face_of_a_picture(finder, tmp_path):
    root = tmp_path / "group"
    (root / "images").mkdir(parents=True)
    frame, truths = compose_faces_frame()
    assert cv2.imwrite(str(root / "images" / "three.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert cv2.imwrite(str(root / "images" / "empty.jpg"), background("coffee"), [cv2.IMWRITE_JPEG_QUALITY, 92])
    report = autolabel_dataset(root, finder=finder)
    assert (report.faces, report.face_boxes, report.no_faces) == (1, 3, 1)
    assert report.summary_text() == ("Labelled 2 pictures (1 with a face: 3 faces, 1 without), kept 0 existing "
                                     "labels, skipped 0 unreadable.")
    written = next(label for label in report.written if label.image_path.name == "three.jpg")
    assert len(written.boxes) == 3 and written.box == written.boxes[0]
    document = json.loads((root / "labels" / "three.json").read_text(encoding="utf-8"))
    assert len(document["shapes"]) == 3 and document["flags"] == {"suggested": True}
    for shape in document["shapes"]:  # each rectangle says its own score
        assert shape["description"].startswith("suggested by MTCNN ")
        assert float(shape["description"].split()[-1]) >= DEFAULT_MIN_SCORE
    sample = next(s for split in load_dataset(root, strict=True).splits.values() for s in split
                  if s.image_path.name == "three.jpg")
    assert sample.face_count == 3
    assert matched([box_to_pixels(b, FRAME_W, FRAME_H) for b in sample.boxes], truths)


def test_existing_labels_are_kept_unless_overwrite(finder, tmp_path):
    root = tmp_path / "data"
    truth = write_pictures(root / "images", count_faces=2, count_empty=1)
    mine = root / "labels" / "face_0_astronaut.json"
    write_labelme(mine, root / "images" / "face_0_astronaut.jpg", (10, 10, 50, 60), FRAME_W, FRAME_H)
    by_hand = mine.read_bytes()
    (root / "labels" / "empty_coffee.json").write_text("{ broken", encoding="utf-8")  # kept: not ours to judge

    report = autolabel_dataset(root, finder=finder)
    assert (report.kept, len(report.written), report.to_label) == (2, 1, 1)
    assert mine.read_bytes() == by_hand
    assert (root / "labels" / "empty_coffee.json").read_text(encoding="utf-8") == "{ broken"
    assert "kept 2 existing labels" in report.summary_text()

    again = autolabel_dataset(root, finder=finder)
    assert (again.kept, again.written, again.to_label) == (3, [], 0)

    everything = autolabel_dataset(root, finder=finder, overwrite=True)
    assert (everything.kept, len(everything.written)) == (0, len(truth))
    sample = next(s for split in load_dataset(root, strict=True).splits.values() for s in split
                  if s.image_path.name == "face_0_astronaut.jpg")
    assert iou(box_to_pixels(sample.box, FRAME_W, FRAME_H), truth["face_0_astronaut.jpg"]) >= 0.5


def test_min_score_decides_what_counts_as_a_face(finder, tmp_path):
    root = tmp_path / "data"
    write_pictures(root, count_faces=1, count_empty=0)  # the "beside" layout: JSON next to the picture
    report = autolabel_dataset(root, finder=finder, min_score=1.0)  # nothing is that sure
    assert (report.faces, report.no_faces) == (0, 1)
    assert (root / "face_0_astronaut.json").is_file()
    document = json.loads((root / "face_0_astronaut.json").read_text(encoding="utf-8"))
    assert document["shapes"] == [] and document["suggestedBy"]["score"] >= DEFAULT_MIN_SCORE


def test_unreadable_pictures_are_skipped_and_named(finder, tmp_path):
    root = tmp_path / "data"
    write_pictures(root / "images", count_faces=1, count_empty=1)
    (root / "images" / "zz_corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    whole = (root / "images" / "face_0_astronaut.jpg").read_bytes()
    (root / "images" / "zz_truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "images" / "zz_empty.png").write_bytes(b"")

    report = autolabel_dataset(root, finder=finder)
    assert len(report.written) == 2
    skipped = {problem.path.name: problem.message for problem in report.skipped}
    assert set(skipped) == {"zz_corrupt.jpg", "zz_truncated.jpg", "zz_empty.png"}
    assert "truncated" in skipped["zz_truncated.jpg"] and "empty" in skipped["zz_empty.png"]
    summary = report.summary_text()
    assert "skipped 3 unreadable:" in summary
    assert "images/zz_corrupt.jpg: " in summary and "images/zz_truncated.jpg: truncated JPEG" in summary
    assert not any((root / "labels").glob("zz_*.json"))
    assert load_dataset(root).problems  # training still lists them: the files are left alone


def test_cancel_stops_between_pictures_and_keeps_what_was_written(finder, tmp_path):
    root = tmp_path / "data"
    write_pictures(root / "images")
    done = []
    report = autolabel_dataset(root, finder=finder, on_progress=lambda d, t, p: done.append(d),
                               should_stop=lambda: len(done) >= 2)
    assert report.cancelled and len(report.written) == 2 and done == [1, 2]
    assert len(list((root / "labels").glob("*.json"))) == 2
    assert report.summary_text().startswith(f"Stopped after 2 of {report.to_label} pictures. Labelled 2 pictures")
    rest = autolabel_dataset(root, finder=finder)  # carrying on later labels only the others
    assert rest.kept == 2 and len(rest.written) == report.to_label - 2


def test_all_three_layouts_get_their_labels_where_training_reads_them(finder, tmp_path):
    split = tmp_path / "split"
    write_pictures(split / "train" / "images", count_faces=1, count_empty=0)
    write_pictures(split / "val", count_faces=0, count_empty=1)  # pictures straight in the split folder
    flat = tmp_path / "flat"
    write_pictures(flat / "images", count_faces=1, count_empty=1)
    (flat / "labels").mkdir()
    for root, expected in ((split, {split / "train" / "labels" / "face_0_astronaut.json",
                                    split / "val" / "empty_coffee.json"}),
                           (flat, {flat / "labels" / "face_0_astronaut.json", flat / "labels" / "empty_coffee.json"})):
        report = autolabel_dataset(root, finder=finder)
        assert {label.label_path for label in report.written} == expected
        dataset = load_dataset(root, strict=True)
        assert sorted(s.label_path for split_ in dataset.splits.values() for s in split_) == sorted(expected)


def test_a_bad_folder_is_a_data_error(finder, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        autolabel_dataset(tmp_path / "nowhere", finder=finder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no pictures found"):
        autolabel_dataset(tmp_path / "empty", finder=finder)


# ----------------------------------------------------------------------------------------- the command


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line as facetracker-train builds it: one subparser per command."""
    parser = argparse.ArgumentParser(prog="facetracker-train")
    add_autolabel_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_the_autolabel_command(tmp_path, capsys):
    root = tmp_path / "data"
    truth = write_pictures(root / "images", count_faces=3, count_empty=2)
    (root / "images" / "zz_corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    write_labelme(root / "labels" / "empty_chelsea.json", root / "images" / "empty_chelsea.jpg", None, FRAME_W, FRAME_H)
    frame, truths = compose_faces_frame()  # a group photo: every face is written
    assert cv2.imwrite(str(root / "images" / "group.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    truth["group.jpg"] = truths

    args = parse(["autolabel", str(root), "--min-score", "0.95"])
    assert (args.command, args.overwrite, args.min_score) == ("autolabel", False, 0.95)
    assert run_autolabel(args) == 0
    out, err = capsys.readouterr()
    assert "MTCNN" in err and f"{len(truth)}/{len(truth)} pictures" in err  # the last picture's progress line
    assert out.splitlines()[0] == (f"Labelled {len(truth) - 1} pictures (4 with a face: 6 faces, 1 without), "
                                   "kept 1 existing label, skipped 1 unreadable:")
    group = json.loads((root / "labels" / "group.json").read_text(encoding="utf-8"))
    assert matched([[*s["points"][0], *s["points"][1]] for s in group["shapes"]], truths)
    assert "\n  images/zz_corrupt.jpg: corrupt JPEG" in out
    assert out.rstrip().endswith(f"Results saved to {root}")

    assert parse(["autolabel", str(root), "--overwrite"]).overwrite
    with pytest.raises(SystemExit):
        parse(["autolabel", str(root), "--min-score", "1.5"])
    with pytest.raises(DataError, match="does not exist"):  # facetracker-train prints it in one line, exit 1
        run_autolabel(parse(["autolabel", str(tmp_path / "nowhere")]))


def test_the_command_without_mtcnn_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    write_pictures(tmp_path / "images", count_faces=0, count_empty=1)
    monkeypatch.setitem(sys.modules, "mtcnn", None)
    assert run_autolabel(parse(["autolabel", str(tmp_path)])) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facetracker-train autolabel: error:") and "pip install mtcnn" in err
    assert len(err.splitlines()) == 1
    assert not any(tmp_path.rglob("*.json"))


# ----------------------------------------------------------------------------------------- BlazeFace


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceFinder:
    return BlazeFaceFinder()


def test_the_suggestion_engines_are_face_detectors(blazeface):
    """Declared, not guessed: what the live view, autolabel and the Label tab take of a detector."""
    from training.core.detection import FaceDetector

    assert isinstance(blazeface, FaceDetector) and blazeface.multi_face and blazeface.threshold == 0.6
    assert PretrainedFaceFinder.threshold == DEFAULT_MIN_SCORE and PretrainedFaceFinder.multi_face


def test_blazeface_finds_each_real_face_where_it_is_and_none_where_there_is_none(blazeface):
    assert blazeface.name == "BlazeFace" and min_score_of(blazeface) == 0.6  # its own threshold, not MTCNN's 0.9
    for case in FACE_FRAMES:
        frame, box = compose_frame(*case)
        found = blazeface.detect_all(frame)
        assert len(found) == 1 and found[0].score > 0.6 and iou(found[0].box, box) >= 0.5, (case, found)
        assert blazeface.detect(frame) == found[0]
    for name in NO_FACE_FRAMES:
        assert blazeface.detect_all(background(name)) == [], name
        assert blazeface.detect(background(name)) is None
    frame, truths = compose_faces_frame()
    assert matched([d.box for d in blazeface.detect_all(frame)], truths, min_iou=0.5)


def test_the_autolabel_command_with_blazeface_writes_labels_that_name_it(tmp_path, capsys):
    root = tmp_path / "data"
    truth = write_pictures(root / "images", count_faces=3, count_empty=2)
    frame, truths = compose_faces_frame()
    assert cv2.imwrite(str(root / "images" / "group.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    truth["group.jpg"] = truths

    assert parse(["autolabel", str(root)]).engine == "mtcnn"  # the default stays MTCNN, the surest
    args = parse(["autolabel", str(root), "--engine", "blazeface"])
    assert (args.engine, args.min_score) == ("blazeface", None)
    assert run_autolabel(args) == 0
    out, err = capsys.readouterr()
    assert "Looking for faces with BlazeFace, MediaPipe's pretrained face detector" in err
    assert out.splitlines()[0] == "Labelled 6 pictures (4 with a face: 6 faces, 2 without), kept 0 existing labels, " \
                                  "skipped 0 unreadable."

    documents = _suggested_documents(root)
    for name, boxes in truth.items():
        document = documents[Path(name).stem]
        assert document["flags"] == {"suggested": True} and document["suggestedBy"]["engine"] == "BlazeFace", name
        mark = read_suggestion_mark(root / "labels" / f"{Path(name).stem}.json")
        assert mark.engine == "BlazeFace"
        if boxes is None:
            assert document["shapes"] == [] and mark.score is None, name
            continue
        assert mark.score >= 0.6, name
        found = [[*shape["points"][0], *shape["points"][1]] for shape in document["shapes"]]
        assert matched(found, boxes if name == "group.jpg" else [boxes], min_iou=0.5), (name, found)
        for shape in document["shapes"]:
            assert shape["description"].startswith("suggested by BlazeFace 0.")
    dataset = load_dataset(root, strict=True)  # labels training reads
    assert sum(len(s.boxes) for split in dataset.splits.values() for s in split if s.has_face) == 6
    with pytest.raises(SystemExit):
        parse(["autolabel", str(root), "--engine", "yolo"])


def test_the_blazeface_command_without_its_weights_says_which_file_is_missing(tmp_path, capsys, monkeypatch):
    import training.model.blazeface

    write_pictures(tmp_path / "images", count_faces=1, count_empty=0)
    missing = tmp_path / "assets" / "face_detection_full_range.npz"
    monkeypatch.setattr(training.model.blazeface, "weights_path", lambda: missing)
    assert run_autolabel(parse(["autolabel", str(tmp_path), "--engine", "blazeface"])) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facetracker-train autolabel: error: blazeface cannot be loaded:") and str(missing) in err
    assert len(err.splitlines()) == 1
    assert not any(tmp_path.rglob("*.json"))

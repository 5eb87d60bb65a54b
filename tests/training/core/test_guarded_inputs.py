"""Issue 19, files from other tools and odd file systems: every file FaceTracker reads goes through
``training.core.inputs`` (regular files only, sizes, JSON depth and number length, UTF-8, pictures named
inside the source), and what each reader makes of it keeps its meaning or is refused by name.

Real files throughout: named pipes made with ``os.mkfifo``, a real UNIX socket, ``/dev/zero``,
links, sparse files of gigabytes, non-UTF-8 file names. A guard that fails would hang on a pipe:
every such test runs under an alarm that turns a hang into a failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.cli import main
from training.core.detection import MODEL_FINGERPRINT, ModelFileError, file_fingerprint, read_model_metadata
from training.core.files import atomic_write_bytes, temporary_name
from training.core.inputs import InputError, read_bytes, read_json, read_text, resolve_inside
from training.data.dataset import DataError, grouped_problem_lines, load_dataset
from training.data.formats import convert, read_dataset
from training.data.formats.labelme import write_labelme

W, H = 64, 48
posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and sockets are POSIX")


class Hang(BaseException):
    """Not an OSError (which readers may catch and go on, into the next blocking open): nothing swallows it."""


@contextlib.contextmanager
def no_hang(seconds: float = 5.0) -> Iterator[None]:
    """Fails the test (Hang) instead of hanging when a guard lets a blocking open through."""

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"still blocked after {seconds} s: a named pipe was opened")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)  # and again every second, should one be swallowed
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def picture(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".png" if path.suffix == ".png" else ".jpg", image)
    assert ok
    path.write_bytes(encoded.tobytes())  # not cv2.imwrite: it crashes on a name that is not UTF-8
    return path


# ------------------------------------------------------------------------------------------ the one way in


@posix_only
@pytest.mark.parametrize("reader", [read_bytes, read_text, read_json])
def test_a_named_pipe_is_refused_at_once_naming_it(tmp_path, reader):
    fifo = tmp_path / "data.yaml"
    os.mkfifo(fifo)
    with no_hang(), pytest.raises(InputError, match="named pipe") as caught:
        reader(fifo)
    assert str(caught.value).startswith(f"{fifo}: is a named pipe (FIFO), not a regular file")


@posix_only
def test_devices_sockets_and_folders_are_refused(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    sock = tmp_path / "s.json"
    server.bind(str(sock))
    try:
        for path, kind in ((Path("/dev/zero"), "a character device"), (sock, "a socket"), (tmp_path, "a folder")):
            with no_hang(), pytest.raises(InputError) as caught:
                read_json(path)
            assert str(caught.value).startswith(f"{path}: is {kind}, not a regular file"), caught.value
    finally:
        server.close()


def test_a_huge_file_is_refused_by_its_size_before_it_is_read(tmp_path):
    huge = tmp_path / "instances_train.json"
    with open(huge, "wb") as handle:
        handle.truncate(3 * 2**30)  # sparse: 3 GB on paper, nothing on the disk
    with pytest.raises(InputError, match=r"too large for a file: 3\.0 GB, at most 16\.0 MB"):
        read_json(huge)


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000 + "]" * 100_000, "its JSON is nested too deeply (more than 64 levels)"),
    ('{"a": ' * 70 + "1" + "}" * 70, "its JSON is nested too deeply (more than 64 levels)"),
    ('{"id": ' + "7" * 5000 + "}", "a number written with 5000 digits (at most 1000)"),
    ('{"x": 1.' + "5" * 5000 + "}", "a number written with 5002 digits"),
    ("{'single': 1}", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
])
def test_odd_json_is_one_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "facetracker.json"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_json(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_json_within_the_bounds_reads(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text('{"a": ' * 60 + '[1, 2.5, "x", ' + "9" * 400 + "]" + "}" * 60)
    value = read_json(path)
    for _ in range(60):
        value = value["a"]
    assert value == [1, 2.5, "x", int("9" * 400)]


def test_text_that_is_not_utf8_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_bytes(b"face\nvisage\n" + "t\u00eate\n".encode("latin-1"))
    with pytest.raises(InputError) as caught:
        read_text(path, what="class list")
    assert str(caught.value) == f"{path}: the file is not UTF-8 text (byte 0xea on line 3): save the class list as UTF-8"


def test_a_picture_name_is_resolved_inside_the_source_or_refused(tmp_path):
    root, outside = tmp_path / "src", tmp_path / "outside"
    picture(root / "images" / "a.jpg")
    picture(outside / "x.jpg")
    (root / "images" / "link.jpg").symlink_to(outside / "x.jpg")
    (root / "images" / "inner.jpg").symlink_to(root / "images" / "a.jpg")
    where = root / "instances.json"
    assert resolve_inside(root, "images/a.jpg", where=where) == root / "images" / "a.jpg"
    assert resolve_inside(root, "inner.jpg", where=where, base=root / "images") == root / "images" / "inner.jpg"
    assert resolve_inside(root, "../a.jpg", where=where, base=root / "images" / "sub") == root / "images" / "sub/../a.jpg"
    for name, how in (("../outside/x.jpg", "climbs out with .."), (str(outside / "x.jpg"), "an absolute path"),
                      ("images/link.jpg", "a link pointing out of it")):
        with pytest.raises(InputError) as caught:
            resolve_inside(root, name, where=where)
        assert str(caught.value).startswith(f"{where}: picture ") and how in str(caught.value)
        assert "--allow-outside" in str(caught.value)
        warned: list[str] = []
        assert resolve_inside(root, name, where=where, allow_outside=True, warn=warned.append).is_file()
        assert len(warned) == 1 and "read anyway (--allow-outside)" in warned[0]


# ------------------------------------------------------------------------------------------ COCO


def coco(root: Path, images: list[dict], annotations: list[dict], categories: list[dict] | None = None) -> Path:
    """A COCO file (``instances_default.json``) over the pictures a.jpg, b.jpg, c.jpg in ``root/images``."""
    for n, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        if not (root / "images" / name).exists():
            picture(root / "images" / name, seed=n)
    path = root / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "face"}] if categories is None else categories}
    path.write_text(json.dumps(document).replace('"HUGE"', "9" * 5000))  # beyond what int() parses by default
    return path


def image(image_id, name: str) -> dict:
    return {"id": image_id, "file_name": name, "width": W, "height": H}


def face(ann_id, image_id, bbox=(5, 5, 20, 20), category_id=1) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": list(bbox)}


COCO_CASES = {
    # name: (images, annotations, categories, message the error must hold)
    "duplicate-image-id": ([image(1, "a.jpg"), image(1, "b.jpg")], [face(1, 1)], None,
                           "image id 1 is used twice ('a.jpg' and 'b.jpg')"),
    "image-id-a-list": ([image([1], "a.jpg")], [], None, "image 1 ('a.jpg') has id [1], not a whole number"),
    "image-id-text": ([image("1", "a.jpg")], [], None, "has id '1', not a whole number"),
    "annotation-image-id-a-list": ([image(1, "a.jpg")], [face(1, [1])], None,
                                   "annotation id 1: image_id [1] is not a whole number"),
    "annotation-for-a-missing-image": ([image(1, "a.jpg")], [face(7, 2)], None,
                                       "annotation id 7 is for image id 2, which is not in \"images\""),
    "other-class-for-a-missing-image": ([image(1, "a.jpg")], [face(1, 1), face(2, 9, category_id=2)],
                                        [{"id": 1, "name": "face"}, {"id": 2, "name": "hand"}],
                                        "annotation id 2 is for image id 9"),
    "category-that-does-not-exist": ([image(1, "a.jpg")], [face(3, 1, category_id=5)], None,
                                     "annotation id 3 has category_id 5, which is not in \"categories\" (1)"),
    "negative-width": ([image(1, "a.jpg")], [face(4, 1, bbox=(30, 5, -20, 20))], None,
                       "annotation id 4 (a.jpg): bbox of negative size (-20x20 px)"),
    "bbox-of-booleans": ([image(1, "a.jpg")], [face(5, 1, bbox=(True, 5, 20, 20))], None,
                         "annotation id 5: bbox must be four numbers"),
    "file-name-a-list": ([{"id": 1, "file_name": ["a.jpg"]}], [], None, "image id 1 has no file_name"),
    "5000-digit-id": ([image("HUGE", "a.jpg")], [], None, "a number written with 5000 digits"),
}


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_coco_ids_that_would_change_the_meaning_are_refused_by_name(tmp_path, case):
    images, annotations, categories, message = COCO_CASES[case]
    path = coco(tmp_path / "src", images, annotations, categories)
    with pytest.raises(DataError) as caught:
        convert(tmp_path / "src", tmp_path / "out", "labelme", source_format="coco")
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value), caught.value
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["src"]


def test_coco_with_distinct_ids_still_converts(tmp_path):
    coco(tmp_path / "src", [image(1, "a.jpg"), image(2, "b.jpg")], [face(1, 1), face(2, 1, (30, 10, 12, 12))])
    result = convert(tmp_path / "src", tmp_path / "out", "labelme", source_format="coco")
    assert (result.pictures, result.faces, result.face_boxes) == (2, 1, 2)


@pytest.mark.parametrize("where", ["parent", "absolute", "link"])
def test_a_coco_picture_outside_the_source_is_refused_or_read_with_allow_outside(tmp_path, where, capsys):
    outside = picture(tmp_path / "outside" / "x.jpg", seed=5)
    src = tmp_path / "src"
    name = {"parent": "../../outside/x.jpg", "absolute": str(outside), "link": "x.jpg"}[where]
    path = coco(src, [image(1, "a.jpg"), image(2, name)], [face(1, 2)])
    if where == "link":
        (src / "images" / "x.jpg").symlink_to(outside)
    code = main(["convert", str(src), str(tmp_path / "out"), "--to", "labelme"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith(f"facetracker-train convert: error: {path}: picture ")
    assert "lies outside the source folder" in err and not (tmp_path / "out").exists()

    code = main(["convert", str(src), str(tmp_path / "out"), "--to", "labelme", "--allow-outside"])
    out = capsys.readouterr().out
    assert code == 0 and "1 pictures named in annotation files lie outside the source folder" in out
    copied = tmp_path / "out" / "images" / "x.jpg"
    assert copied.read_bytes() == outside.read_bytes() and not copied.is_symlink()


def test_a_wider_picture_name_outside_the_source_is_refused(tmp_path):
    src = tmp_path / "wider"
    picture(src / "WIDER_train" / "images" / "0--Parade" / "a.jpg")
    picture(tmp_path / "secret.jpg")
    notes = src / "wider_face_split" / "wider_face_train_bbx_gt.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("0--Parade/a.jpg\n1\n5 5 20 20 0 0 0 0 0 0\n../../../secret.jpg\n1\n5 5 20 20 0 0 0 0 0 0\n")
    with pytest.raises(DataError) as caught:
        read_dataset(src, "wider")
    assert str(caught.value).startswith(f"{notes}: picture '../../../secret.jpg' lies outside the source folder")
    _, pictures = read_dataset(src, "wider", allow_outside=True)
    assert len(pictures) == 2


@pytest.mark.parametrize(("size", "message"), [("<width>1e999</width><height>48</height>", "<size> must hold finite "
                                                   "numbers"),
                                              ("<width>64</width><height>x</height>", "<size> must hold finite numbers"),
                                              ("<width>65</width><height>48</height>", "labelled as 65x48 but a.jpg is "
                                                                                        "64x48")])
def test_a_voc_size_that_is_not_the_pictures_is_named(tmp_path, size, message):
    src = tmp_path / "voc"
    picture(src / "JPEGImages" / "a.jpg")
    xml = src / "Annotations" / "a.xml"
    xml.parent.mkdir()
    xml.write_text(f"<annotation><filename>a.jpg</filename><size>{size}</size></annotation>")
    with pytest.raises(DataError) as caught:
        read_dataset(src, "voc")
    assert str(caught.value).startswith(f"{xml}: {message}")


def test_a_voc_picture_that_links_out_is_refused(tmp_path):
    src = tmp_path / "voc"
    (src / "JPEGImages").mkdir(parents=True)
    (src / "JPEGImages" / "a.jpg").symlink_to(picture(tmp_path / "elsewhere" / "a.jpg"))
    xml = src / "Annotations" / "a.xml"
    xml.parent.mkdir()
    xml.write_text("<annotation><filename>a.jpg</filename><object><name>face</name><bndbox><xmin>5</xmin>"
                   "<ymin>5</ymin><xmax>25</xmax><ymax>25</ymax></bndbox></object></annotation>")
    with pytest.raises(DataError, match="a link pointing out of it") as caught:
        read_dataset(src, "voc")
    assert str(caught.value).startswith(f"{xml}: picture 'a.jpg'")


# ------------------------------------------------------------------------------------------ YOLO


def yolo(root: Path, lines: str, names: str | None = "names:\n  0: face\n") -> Path:
    picture(root / "images" / "a.jpg")
    label = root / "labels" / "a.txt"
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_text(lines)
    if names is not None:
        (root / "data.yaml").write_text(names)
    return label


@pytest.mark.parametrize(("lines", "message"), [
    ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 -0.2 0.3\n", "line 2: width and height must be above 0, got -0.2 and 0.3"),
    ("\n0 0.5 0.5 0.2 -0.3\n", "line 2: width and height must be above 0"),
    ("0 0.5 0.5 0 0.2\n", "line 1: width and height must be above 0, got 0 and 0.2"),
    ("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n", "line 2: class 3 is not one of the 1 classes data.yaml names (0)"),
    ("0 0.5 0.5 0.2 0.2\n0 1.5 0.5 0.2 0.2\n", "line 2: box"),
])
def test_yolo_boxes_of_no_size_and_unknown_classes_name_the_file_and_line(tmp_path, lines, message):
    label = yolo(tmp_path / "src", lines)
    with pytest.raises(DataError) as caught:
        read_dataset(tmp_path / "src", "yolo")
    assert str(caught.value).startswith(f"{label}: {message}"), caught.value


@posix_only
@pytest.mark.parametrize("name", ["data.yaml", "classes.txt"])
def test_a_named_pipe_for_a_class_list_ends_with_its_name_not_a_hang(tmp_path, name):
    yolo(tmp_path / "src", "0 0.5 0.5 0.2 0.2\n", names=None)
    os.mkfifo(tmp_path / "src" / name)
    with no_hang():
        code, _, err = run_cli(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--to", "coco"])
    assert code == 1 and err == (f"facetracker-train convert: error: {tmp_path / 'src' / name}: is a named pipe (FIFO), "
                                 f"not a regular {'dataset description' if name.endswith('yaml') else 'class list'}: "
                                 "FaceTracker reads regular files only\n")


@pytest.mark.parametrize("name", ["classes.txt", "ImageSets/Main/train.txt"])
def test_class_and_split_lists_that_are_not_utf8_are_named(tmp_path, name):
    if name == "classes.txt":
        yolo(tmp_path / "src", "0 0.5 0.5 0.2 0.2\n", names=None)
        fmt = "yolo"
    else:
        picture(tmp_path / "src" / "JPEGImages" / "a.jpg")
        (tmp_path / "src" / "Annotations").mkdir()
        (tmp_path / "src" / "Annotations" / "a.xml").write_text("<annotation><filename>a.jpg</filename></annotation>")
        fmt = "voc"
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a\n\xe9t\xe9\n")
    with pytest.raises(DataError) as caught:
        read_dataset(tmp_path / "src", fmt)
    assert str(caught.value).startswith(f"{path}: the file is not UTF-8 text (byte 0xe9 on line 2)")


# ------------------------------------------------------------------------------------------ labelme datasets


@posix_only
def test_a_named_pipe_named_config_json_in_images_does_not_hang_the_scan(tmp_path):
    root = tmp_path / "data"
    for n in range(4):
        picture(root / "images" / f"p{n}.jpg", seed=n)
    write_labelme(root / "labels" / "p0.json", root / "images" / "p0.jpg", (5, 5, 30, 30), W, H)
    os.mkfifo(root / "images" / "config.json")
    os.mkfifo(root / "labels" / "p1.json")
    with no_hang(10):
        code, out, err = run_cli(["summary", str(root)])
    assert code == 0 and "Traceback" not in err and "total" in out


def test_a_picture_whose_name_is_not_utf8_is_one_problem_the_rest_is_read(tmp_path):
    root = tmp_path / "data"
    for n in range(3):
        picture(root / "images" / f"p{n}.jpg", seed=n)
    odd = os.fsdecode(b"caf\xe9.jpg")  # a Latin-1 name on a UTF-8 system
    picture(root / "images" / odd, seed=9)
    dataset = load_dataset(root)
    assert sum(len(s) for s in dataset.splits.values()) == 3
    assert [str(p) for p in dataset.problems] == [f"{root / 'images'}/caf\\udce9.jpg: its file name is not valid UTF-8 "
                                                  "text (a name from another system's encoding): labels cannot name "
                                                  "it; rename the picture"]
    code, out, _ = run_cli(["summary", str(root)])
    assert code == 0 and "caf\\udce9.jpg" in out


def test_a_long_picture_name_still_saves_atomically(tmp_path):
    name = "p" * 246 + ".jpg"  # 250 characters: a valid name, too long once a temporary prefix is added
    assert len(temporary_name(name, ".jpg").encode()) <= 255
    atomic_write_bytes(tmp_path / name, b"x")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_many_problems_of_one_kind_are_one_line_and_the_full_list_goes_to_a_file(tmp_path):
    root = tmp_path / "data"
    for n in range(6):
        picture(root / "images" / f"good{n}.jpg", seed=n)
    write_labelme(root / "labels" / "good0.json", root / "images" / "good0.jpg", (5, 5, 30, 30), W, H)
    for n in range(5000):
        (root / "images" / f"junk{n:05d}.jpg").touch()
    listing = tmp_path / "problems.txt"
    code, out, err = run_cli(["summary", str(root), "--problems-file", str(listing)])
    assert code == 0 and err == ""
    assert "  5,000 files: the picture file is empty, e.g. junk00000.jpg, junk00001.jpg, junk00002.jpg (and 4,997 " \
           "more)" in out
    assert out.count("\n  ") < 10 and f"Every problem (5000) and warning (0): {listing}" in out
    assert len(listing.read_text().splitlines()) == 5000
    assert len(grouped_problem_lines(load_dataset(root).problems)) == 1


# ------------------------------------------------------------------------------------------ model metadata


@posix_only
def test_a_named_pipe_for_a_model_or_its_sidecar_is_named_not_waited_on(tmp_path):
    from training.inference.detector import Detector

    for name in ("m.keras", "m.onnx", "m.tflite"):
        os.mkfifo(tmp_path / name)
        with no_hang(), pytest.raises(ModelFileError) as caught:
            Detector.from_file(tmp_path / name)
        assert str(caught.value) == (f"{tmp_path / name}: is a named pipe (FIFO), not a regular model file: "
                                     "FaceTracker reads regular files only")
    model = tmp_path / "real.tflite"
    model.write_bytes(b"\x00\x00\x00\x00TFL3 not really")
    os.mkfifo(tmp_path / "real.tflite.json")
    with no_hang(), pytest.raises(ModelFileError, match="real.tflite.json: is a named pipe"):
        read_model_metadata(model)


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 50_000 + "]" * 50_000, "its JSON is nested too deeply"),
    ('{"score_threshold": 0.4, "x": ' + "1" * 5000 + "}", "a number written with 5000 digits"),
    ("[0.4]", "not a model's metadata (a JSON object)"),
    (b"\xff\xfe{}", "not UTF-8 text"),
])
def test_a_broken_sidecar_is_one_error_naming_it(tmp_path, text, message):
    model = tmp_path / "best.onnx"
    model.write_bytes(b"onnx bytes")
    sidecar = tmp_path / "best.onnx.json"
    sidecar.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ModelFileError) as caught:
        read_model_metadata(model)
    assert str(caught.value).startswith(f"{sidecar}: ") and message in str(caught.value)


def test_a_sidecar_that_describes_another_model_is_refused(tmp_path):
    model = tmp_path / "best.tflite"
    model.write_bytes(b"the old model")
    sidecar = tmp_path / "best.tflite.json"
    sidecar.write_text(json.dumps({"score_threshold": 0.37, MODEL_FINGERPRINT: file_fingerprint(model)}))
    assert read_model_metadata(model) == {"score_threshold": 0.37}
    model.write_bytes(b"the new model, committed before an export was killed")
    with pytest.raises(ModelFileError) as caught:
        read_model_metadata(model)
    assert str(caught.value).startswith(f"{sidecar}: describes another model file than best.tflite")
    sidecar.write_text(json.dumps({"score_threshold": 0.5}))  # written by hand: no fingerprint, taken as it is
    assert read_model_metadata(model) == {"score_threshold": 0.5}


def test_nested_metadata_inside_a_keras_archive_is_named(tmp_path):
    import zipfile

    model = tmp_path / "best.keras"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("facetracker.json", "[" * 10_000 + "]" * 10_000)
    with pytest.raises(ModelFileError) as caught:
        read_model_metadata(model)
    assert str(caught.value).startswith(f"{model}: its facetracker.json cannot be read (its JSON is nested too deeply")

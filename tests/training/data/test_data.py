"""training.data.dataset: reading the three layouts, pairing by name, and a specific Problem for every bad file."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data.dataset import SPLITS, DataError, Problem, load_dataset, split_of
from training.data.formats.labelme import write_labelme
from training.data.pictures import image_size, load_image


def picture(path: Path, width: int = 64, height: int = 48, value: int = 128) -> Path:
    """Write a real picture (format from the extension) with some structure in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), value, np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (255, 0, 0), -1)
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    encoded.tofile(path)
    return path


def labelled(images: Path, labels: Path, stem: str, box_px, width: int = 64, height: int = 48,
             ext: str = ".jpg") -> Path:
    image_path = picture(images / f"{stem}{ext}", width, height)
    write_labelme(labels / f"{stem}.json", image_path, box_px, width, height)
    return image_path


def edit_json(path: Path, **changes) -> None:
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


@pytest.fixture
def tutorial(tmp_path: Path) -> Path:
    """A good tutorial-layout dataset: 3 faces + 1 no-face picture in train, one face each in val and test."""
    root = tmp_path / "data"
    for stem, box in (("a", (8, 6, 40, 30)), ("b", (0, 0, 64, 48)), ("c", (10, 10, 20, 30))):
        labelled(root / "train" / "images", root / "train" / "labels", stem, box)
    picture(root / "train" / "images" / "empty.jpg")
    labelled(root / "val" / "images", root / "val" / "labels", "v", (16, 12, 48, 36))
    labelled(root / "test" / "images", root / "test" / "labels", "t", (16, 12, 48, 36))
    return root


# ----------------------------------------------------------------------------------- layouts


def test_split_layout_reads_faces_no_faces_and_normalises_by_real_size(tutorial: Path):
    dataset = load_dataset(tutorial)
    assert dataset.layout == "split"
    assert dataset.problems == []
    assert dataset.counts() == {
        "train": {"images": 4, "faces": 3, "no_faces": 1, "face_boxes": 3, "several_faces": 0},
        "val": {"images": 1, "faces": 1, "no_faces": 0, "face_boxes": 1, "several_faces": 0},
        "test": {"images": 1, "faces": 1, "no_faces": 0, "face_boxes": 1, "several_faces": 0},
    }
    by_stem = {s.image_path.stem: s for s in dataset.splits["train"]}
    assert by_stem["a"].box == pytest.approx((8 / 64, 6 / 48, 40 / 64, 30 / 48))
    assert by_stem["b"].box == pytest.approx((0, 0, 1, 1))
    assert (by_stem["a"].width, by_stem["a"].height) == (64, 48)
    assert by_stem["a"].label_path == tutorial / "train" / "labels" / "a.json"
    assert by_stem["empty"].has_face is False
    assert by_stem["empty"].label_path is None
    assert by_stem["empty"].box == (0.0, 0.0, 0.0, 0.0)


def test_pairs_pictures_and_labels_by_name_not_by_listing_order(tmp_path: Path):
    # The tutorial zipped two sorted listings: with "a" unlabelled, "b" would get "c"'s box.
    images, labels = tmp_path / "train" / "images", tmp_path / "train" / "labels"
    picture(images / "a.jpg")
    labelled(images, labels, "b", (0, 0, 10, 10))
    labelled(images, labels, "c", (30, 20, 60, 40))
    samples = {s.image_path.stem: s for s in load_dataset(tmp_path).splits["train"]}
    assert samples["a"].has_face is False
    assert samples["b"].box == pytest.approx((0, 0, 10 / 64, 10 / 48))
    assert samples["c"].box == pytest.approx((30 / 64, 20 / 48, 60 / 64, 40 / 48))


def test_flat_layout_splits_by_name_hash_and_adding_pictures_moves_none(tmp_path: Path):
    for i in range(40):
        labelled(tmp_path / "images", tmp_path / "labels", f"img{i:03d}", (4, 4, 20, 20), 32, 24)
    first = load_dataset(tmp_path)
    assert first.layout == "flat"
    before = {s.image_path.stem: name for name, samples in first.splits.items() for s in samples}
    assert len(before) == 40
    for i in range(40, 100):
        labelled(tmp_path / "images", tmp_path / "labels", f"img{i:03d}", (4, 4, 20, 20), 32, 24)
    second = load_dataset(tmp_path)
    after = {s.image_path.stem: name for name, samples in second.splits.items() for s in samples}
    assert {stem: after[stem] for stem in before} == before
    assert all(after[stem] == split_of(stem) for stem in after)
    counts = {name: len(second.splits[name]) for name in SPLITS}
    assert 50 <= counts["train"] <= 85 and counts["val"] >= 5 and counts["test"] >= 5


def test_split_fractions_are_honoured(tmp_path: Path):
    stems = [f"p{i}" for i in range(2000)]
    shares = {name: sum(split_of(s, 0.2, 0.1) == name for s in stems) / len(stems) for name in SPLITS}
    assert shares["train"] == pytest.approx(0.7, abs=0.04)
    assert shares["val"] == pytest.approx(0.2, abs=0.03)
    assert shares["test"] == pytest.approx(0.1, abs=0.03)
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset(tmp_path, val_fraction=0.6, test_fraction=0.5)


@pytest.mark.parametrize("inside_images_folder", [False, True], ids=["root", "root/images"])
def test_beside_layout_json_next_to_each_picture(tmp_path: Path, inside_images_folder: bool):
    folder = tmp_path / "images" if inside_images_folder else tmp_path
    for i in range(6):
        labelled(folder, folder, f"shot{i}", (10, 10, 30, 30))
    picture(folder / "nothing.png")
    dataset = load_dataset(tmp_path)
    assert dataset.layout == "beside"
    samples = [s for split in dataset.splits.values() for s in split]
    assert len(samples) == 7 and sum(s.has_face for s in samples) == 6
    assert all(s.label_path is None or s.label_path.parent == folder for s in samples)


def test_picture_extensions_are_case_insensitive(tmp_path: Path):
    folder = tmp_path / "train" / "images"
    for name in ("a.JPG", "b.Jpeg", "c.PNG", "d.bmp"):
        picture(folder / name)
    (folder / "notes.txt").write_text("not a picture")
    (folder / ".hidden.jpg").write_bytes(b"ignored")
    assert sorted(s.image_path.name for s in load_dataset(tmp_path).splits["train"]) == [
        "a.JPG", "b.Jpeg", "c.PNG", "d.bmp"]


@pytest.mark.parametrize("points", [
    [[10, 5], [40, 30]], [[40, 30], [10, 5]], [[40, 5], [10, 30]], [[10, 30], [40, 5]]],
    ids=["tl-br", "br-tl", "tr-bl", "bl-tr"])
def test_rectangle_corners_in_any_order(tmp_path: Path, points):
    image = labelled(tmp_path / "train" / "images", tmp_path / "train" / "labels", "x", (0, 0, 1, 1))
    label = tmp_path / "train" / "labels" / "x.json"
    document = json.loads(label.read_text())
    document["shapes"][0]["points"] = points
    label.write_text(json.dumps(document))
    (sample,) = load_dataset(tmp_path).splits["train"]
    assert sample.image_path == image
    assert sample.box == pytest.approx((10 / 64, 5 / 48, 40 / 64, 30 / 48))


def test_box_a_pixel_past_the_edge_is_clipped(tmp_path: Path):
    labelled(tmp_path / "train" / "images", tmp_path / "train" / "labels", "x", (-0.8, 0, 64.9, 48.5))
    dataset = load_dataset(tmp_path)
    assert dataset.problems == []
    assert dataset.splits["train"][0].box == pytest.approx((0, 0, 1, 1))


def test_face_label_among_other_shapes_and_without_size_fields(tmp_path: Path):
    labelled(tmp_path / "train" / "images", tmp_path / "train" / "labels", "x", None, 80, 60)
    label = tmp_path / "train" / "labels" / "x.json"
    document = json.loads(label.read_text())
    del document["imageWidth"], document["imageHeight"]
    document["shapes"] = [
        {"label": "hand", "points": [[0, 0], [5, 5]], "shape_type": "rectangle"},
        {"label": "face", "points": [[20, 15], [60, 45]], "shape_type": "rectangle"},
        {"label": "face", "points": [[0, 0], [1, 1]], "shape_type": "rectangle"},
    ]
    label.write_text(json.dumps(document))
    (sample,) = load_dataset(tmp_path).splits["train"]
    assert sample.box == pytest.approx((0.25, 0.25, 0.75, 0.75))  # the first face, by the real 80x60 size


def test_json_with_no_face_shape_is_a_no_face_sample(tmp_path: Path):
    labelled(tmp_path / "train" / "images", tmp_path / "train" / "labels", "x", None)
    (sample,) = load_dataset(tmp_path).splits["train"]
    assert sample.has_face is False and sample.label_path is not None


# ----------------------------------------------------------------------------------- bad input

def _bad_random_bytes(root: Path) -> tuple[Path, str]:
    path = root / "train" / "images" / "bad.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    return path, "not a readable picture"


def _bad_truncated_jpeg(root: Path) -> tuple[Path, str]:
    path = picture(root / "train" / "images" / "bad.jpg", 64, 48)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path, "truncated JPEG"


def _bad_truncated_png(root: Path) -> tuple[Path, str]:
    path = picture(root / "train" / "images" / "bad.png", 64, 48)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])
    return path, "truncated PNG"


def _bad_empty_file(root: Path) -> tuple[Path, str]:
    path = root / "train" / "images" / "bad.jpg"
    path.write_bytes(b"")
    return path, "the picture file is empty"


def _bad_malformed_json(root: Path) -> tuple[Path, str]:
    picture(root / "train" / "images" / "bad.jpg")
    path = root / "train" / "labels" / "bad.json"
    path.write_text('{\n  "version": "5.5.0",\n  "shapes": [] "imagePath": "x"\n}')
    return path, "not valid JSON: Expecting ',' delimiter at line 3"


def _bad_not_labelme(root: Path) -> tuple[Path, str]:
    picture(root / "train" / "images" / "bad.jpg")
    path = root / "train" / "labels" / "bad.json"
    path.write_text("[1, 2, 3]")
    return path, 'not a labelme file: it has no "shapes" list'


def _bad_label_without_picture(root: Path) -> tuple[Path, str]:
    path = root / "train" / "labels" / "bad.json"
    write_labelme(path, root / "train" / "images" / "bad.jpg", (1, 1, 9, 9), 64, 48)
    return path, "no picture for this label: expected bad.jpg"


def _bad_box_outside(root: Path) -> tuple[Path, str]:
    labelled(root / "train" / "images", root / "train" / "labels", "bad", (700, 10, 800, 90), 640, 480)
    return root / "train" / "labels" / "bad.json", "box [700, 10, 800, 90] lies outside the 640x480 image"


def _bad_box_partly_outside(root: Path) -> tuple[Path, str]:
    labelled(root / "train" / "images", root / "train" / "labels", "bad", (600, 10, 700, 90), 640, 480)
    return root / "train" / "labels" / "bad.json", "box [600, 10, 700, 90] reaches outside the 640x480 image"


def _bad_zero_size_box(root: Path) -> tuple[Path, str]:
    labelled(root / "train" / "images", root / "train" / "labels", "bad", (10, 10, 10, 40))
    return root / "train" / "labels" / "bad.json", "box [10, 10, 10, 40] has zero size"


def _bad_polygon_face(root: Path) -> tuple[Path, str]:
    labelled(root / "train" / "images", root / "train" / "labels", "bad", None)
    path = root / "train" / "labels" / "bad.json"
    edit_json(path, shapes=[{"label": "face", "points": [[1, 1], [9, 1], [5, 9]], "shape_type": "polygon"}])
    return path, 'the "face" shape is a polygon, not a rectangle'


def _bad_size_mismatch(root: Path) -> tuple[Path, str]:
    labelled(root / "train" / "images", root / "train" / "labels", "bad", (10, 10, 100, 100), 320, 240)
    path = root / "train" / "labels" / "bad.json"
    edit_json(path, imageWidth=640, imageHeight=480)
    return path, "labelled for a 640x480 picture but the picture is 320x240"


def _bad_duplicate_name(root: Path) -> tuple[Path, str]:
    picture(root / "train" / "images" / "bad.jpg")
    return picture(root / "train" / "images" / "bad.png"), "another picture has the same name (bad.jpg)"


def _bad_unsupported_format(root: Path) -> tuple[Path, str]:
    path = root / "train" / "images" / "bad.webp"
    path.write_bytes(b"RIFF....WEBP")
    return path, "unsupported picture format .webp"


BAD_INPUTS = {
    "random-bytes": _bad_random_bytes,
    "truncated-jpeg": _bad_truncated_jpeg,
    "truncated-png": _bad_truncated_png,
    "empty-file": _bad_empty_file,
    "malformed-json": _bad_malformed_json,
    "not-labelme": _bad_not_labelme,
    "label-without-picture": _bad_label_without_picture,
    "box-outside": _bad_box_outside,
    "box-partly-outside": _bad_box_partly_outside,
    "zero-size-box": _bad_zero_size_box,
    "polygon-face": _bad_polygon_face,
    "size-mismatch": _bad_size_mismatch,
    "duplicate-name": _bad_duplicate_name,
    "unsupported-format": _bad_unsupported_format,
}


@pytest.mark.parametrize("make_bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_file_is_skipped_and_reported_by_name(tutorial: Path, make_bad):
    bad_path, message = make_bad(tutorial)
    dataset = load_dataset(tutorial)
    assert len(dataset.problems) == 1, dataset.problems
    (problem,) = dataset.problems
    assert problem.path == bad_path
    assert message in problem.message
    assert str(problem) == f"{bad_path}: {problem.message}"
    assert f"{bad_path}: {message}" in dataset.summary_text()
    assert dataset.to_dict()["problems"] == [str(problem)]
    good = {s.image_path.stem for s in dataset.splits["train"]}
    assert {"a", "b", "c", "empty"} <= good


@pytest.mark.parametrize("make_bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_file_raises_in_strict_mode(tutorial: Path, make_bad):
    bad_path, message = make_bad(tutorial)
    with pytest.raises(DataError) as caught:
        load_dataset(tutorial, strict=True)
    assert caught.value.path == bad_path
    assert message in caught.value.message
    assert str(caught.value) == f"{bad_path}: {caught.value.message}"


def test_empty_dataset_names_the_folder(tmp_path: Path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DataError, match="no pictures found") as caught:
        load_dataset(tmp_path)
    assert caught.value.path == tmp_path


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    file = picture(tmp_path / "x.jpg")
    with pytest.raises(DataError, match="not a folder") as caught:
        load_dataset(file)
    assert caught.value.path == file


def test_empty_split_is_reported_by_require_split_and_summary(tutorial: Path):
    shutil.rmtree(tutorial / "val")
    dataset = load_dataset(tutorial)
    assert dataset.splits["val"] == []
    assert dataset.require_split("train") == dataset.splits["train"]
    with pytest.raises(DataError, match="the val split has no pictures") as caught:
        dataset.require_split("val")
    assert caught.value.path == tutorial / "val"
    assert "Empty splits: val" in dataset.summary_text()
    summary = json.loads(json.dumps(dataset.to_dict()))
    assert summary["empty_splits"] == ["val"] and summary["layout"] == "split"
    assert summary["counts"]["train"] == {"images": 4, "faces": 3, "no_faces": 1, "face_boxes": 3, "several_faces": 0}
    with pytest.raises(ValueError, match="unknown split"):
        dataset.require_split("training")


def test_summary_text_is_a_table_of_counts(tutorial: Path):
    text = load_dataset(tutorial).summary_text()
    assert str(tutorial) in text and "layout: split" in text
    assert [line.split() for line in text.splitlines() if line.startswith(("split", "train", "total"))] == [
        ["split", "images", "faces", "no", "face", "boxes"], ["train", "4", "3", "1", "3"],
        ["total", "6", "5", "1", "5"]]
    assert "Problems: none" in text
    assert "several faces" not in text  # said only when some picture has several


def test_several_faces_are_kept_counted_and_noted_not_warned(tutorial: Path):
    """A label with several faces is a picture with several faces (every box kept, largest first), not a
    dataset warning; the notes that a single-face trainer gives name each such picture and its largest."""
    labelled(tutorial / "train" / "images", tutorial / "train" / "labels", "three",
             [(2, 2, 12, 12), (30, 10, 60, 40), (14, 30, 24, 46)])
    labelled(tutorial / "val" / "images", tutorial / "val" / "labels", "two", [(1, 1, 9, 9), (40, 4, 52, 16)])
    dataset = load_dataset(tutorial, strict=True)
    assert dataset.warnings == [] and dataset.problems == []
    three = next(s for s in dataset.splits["train"] if s.image_path.stem == "three")
    assert three.face_count == 3 and three.has_face
    assert [tuple(round(v * k) for v, k in zip(b, (64, 48, 64, 48), strict=True)) for b in three.boxes] == [
        (30, 10, 60, 40), (14, 30, 24, 46), (2, 2, 12, 12)]  # largest first
    assert three.box == three.boxes[0]
    counts = dataset.counts()
    assert counts["train"] == {"images": 5, "faces": 4, "no_faces": 1, "face_boxes": 6, "several_faces": 1}
    assert counts["val"] == {"images": 2, "faces": 2, "no_faces": 0, "face_boxes": 3, "several_faces": 1}
    notes = dataset.several_faces_notes()
    assert [str(n) for n in notes] == [
        f'{tutorial / "train" / "labels" / "three.json"}: 3 "face" rectangles: a single-face model finds one face, '
        "so the largest, [30, 10, 60, 40], is used",
        f'{tutorial / "val" / "labels" / "two.json"}: 2 "face" rectangles: a single-face model finds one face, '
        "so the largest, [40, 4, 52, 16], is used"]
    text = dataset.summary_text()
    assert ["total", "8", "7", "1", "10"] in [line.split() for line in text.splitlines()]
    assert ("2 pictures show several faces (10 face boxes in all): a multi-face model learns every face, "
            "a single-face model the largest of each picture") in text
    assert "Warnings" not in text
    summary = json.loads(json.dumps(dataset.to_dict()))
    assert summary["several_faces"] == 2 and summary["warnings"] == []
    assert summary["counts"]["train"]["face_boxes"] == 6


def test_problem_and_data_error_format():
    assert str(Problem(Path("x/y.json"), "bad")) == f"{Path('x/y.json')}: bad"
    error = DataError("x/y.jpg", "broken")
    assert isinstance(error, ValueError) and error.path == Path("x/y.jpg") and error.message == "broken"


# ----------------------------------------------------------------------------------- files


def test_write_labelme_writes_what_labelme_expects(tmp_path: Path):
    image = picture(tmp_path / "images" / "me.jpg", 64, 48)
    write_labelme(tmp_path / "labels" / "me.json", image, (30, 20, 10, 5), 64, 48)
    document = json.loads((tmp_path / "labels" / "me.json").read_text())
    assert set(document) == {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
    assert document["imagePath"] == "../images/me.jpg"
    assert document["imageData"] is None and document["flags"] == {}
    assert (document["imageWidth"], document["imageHeight"]) == (64, 48)
    assert document["shapes"] == [{
        "label": "face", "points": [[30.0, 20.0], [10.0, 5.0]], "group_id": None, "description": "",
        "shape_type": "rectangle", "flags": {}}]
    write_labelme(tmp_path / "images" / "none.json", image, None, 64, 48)
    beside = json.loads((tmp_path / "images" / "none.json").read_text())
    assert beside["shapes"] == [] and beside["imagePath"] == "me.jpg"


def test_write_labelme_round_trips_through_load_dataset(tmp_path: Path):
    rng = np.random.default_rng(5)
    expected = {}
    for i in range(8):
        width, height = int(rng.integers(40, 90)), int(rng.integers(30, 70))
        x1, y1 = float(rng.uniform(0, width / 2)), float(rng.uniform(0, height / 2))
        box = (x1, y1, x1 + width / 3, y1 + height / 3)
        labelled(tmp_path / "test" / "images", tmp_path / "test" / "labels", f"r{i}", box, width, height, ".png")
        expected[f"r{i}"] = (box[0] / width, box[1] / height, box[2] / width, box[3] / height)
    samples = load_dataset(tmp_path).splits["test"]
    assert {s.image_path.stem: pytest.approx(s.box) for s in samples} == expected


def test_load_image_returns_bgr_and_names_bad_files(tmp_path: Path):
    path = picture(tmp_path / "p.png", 30, 20)
    image = load_image(path)
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    assert tuple(image[7, 10]) == (255, 0, 0)  # blue in BGR order
    (tmp_path / "junk.jpg").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="not a readable picture") as caught:
        load_image(tmp_path / "junk.jpg")
    assert caught.value.path == tmp_path / "junk.jpg"
    with pytest.raises(DataError, match="does not exist"):
        load_image(tmp_path / "gone.jpg")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
def test_image_size_reads_headers_of_each_format(tmp_path: Path, ext: str):
    assert image_size(picture(tmp_path / f"p{ext}", 123, 45)) == (123, 45)


def test_image_size_follows_exif_orientation_like_the_decoder(tmp_path: Path):
    ok, encoded = cv2.imencode(".jpg", np.zeros((40, 80, 3), np.uint8))
    tiff = b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + b"\0\0\0\0"
    app1 = b"Exif\x00\x00" + tiff
    data = encoded.tobytes()
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    height, width = load_image(path).shape[:2]
    assert image_size(path) == (width, height) == (40, 80)


def test_data_module_does_not_import_tensorflow():
    code = ("import sys, training, training.data.dataset, training.data.demo; "
            "sys.exit(bool({'tensorflow', 'keras'} & set(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0

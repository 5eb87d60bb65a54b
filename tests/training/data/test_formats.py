"""Annotation formats: labelme -> COCO / YOLO / VOC -> labelme on real face pictures, third-party layouts,
format detection, and bad files named in the error. Real files throughout; no TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import pytest
import skimage.data

from training.cli import main
from training.core.boxes import ordered
from training.core.preprocess import box_to_pixels
from training.data.dataset import DataError, load_dataset
from training.data.formats import FORMATS, READ_FORMATS, convert, detect_format, read_dataset
from training.data.formats.labelme import write_labelme
from training.data.realfaces import make_real_demo_data

ASTRONAUT_BOX = (80.25, 20.5, 130.75, 85.4)  # her face in the 256x256 picture, in fractional pixels


@pytest.fixture(scope="module")
def labelme_data(tmp_path_factory) -> Path:
    """14 real-face frames in the tutorial's layout, boxes moved to fractional pixels (one dragged from the
    bottom-right corner), plus the astronaut as a PNG: every split has faces and no-face pictures."""
    root = make_real_demo_data(tmp_path_factory.mktemp("labelme") / "data", count=14, width=320, height=240, seed=4)
    for n, label in enumerate(sorted(root.glob("*/labels/*.json"))):
        document = json.loads(label.read_text())
        (x1, y1), (x2, y2) = document["shapes"][0]["points"]
        corners = [[x1 + 0.37, y1 + 0.61], [x2 - 0.29, y2 - 0.43]]
        document["shapes"][0]["points"] = corners[::-1] if n == 0 else corners
        label.write_text(json.dumps(document))
    astronaut = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (256, 256))
    picture = root / "train" / "images" / "astronaut.png"
    assert cv2.imwrite(str(picture), astronaut)
    write_labelme(root / "train" / "labels" / "astronaut.json", picture, ASTRONAUT_BOX, 256, 256)
    counts = load_dataset(root, strict=True).counts()
    assert all(c["faces"] and c["no_faces"] for c in counts.values()), counts
    return root


def boxes_by_picture(root: Path) -> dict[tuple[str, str], tuple[float, ...] | None]:
    """(split, picture name) -> face box in pixels (None: no face), as training reads the dataset."""
    dataset = load_dataset(root, strict=True)
    return {(split, s.image_path.name): box_to_pixels(s.box, s.width, s.height) if s.has_face else None
            for split, samples in dataset.splits.items() for s in samples}


@pytest.mark.parametrize("target", ["coco", "yolo", "voc"])
def test_round_trip_through_each_format_keeps_boxes_splits_and_no_face_pictures(labelme_data, tmp_path, target):
    middle = convert(labelme_data, tmp_path / target, target)
    assert (middle.source_format, middle.target_format) == ("labelme", target)
    assert detect_format(tmp_path / target) == target
    original = boxes_by_picture(labelme_data)
    assert middle.pictures == len(original) and middle.faces == sum(b is not None for b in original.values())
    no_faces = {name for (_split, name), box in original.items() if box is None}
    check_no_face_pictures_are_kept[target](tmp_path / target, no_faces, len(original))

    back = convert(tmp_path / target, tmp_path / "back", "labelme")
    assert back.source_format == target
    again = boxes_by_picture(tmp_path / "back")
    assert again.keys() == original.keys()  # same pictures in the same splits
    for key, box in original.items():
        if box is None:
            assert again[key] is None, key
        else:
            assert again[key] is not None, key
            assert max(abs(a - b) for a, b in zip(again[key], box, strict=True)) <= 0.5, (key, again[key], box)
    split, name = next(iter(original))
    assert (tmp_path / "back" / split / "images" / name).read_bytes() == \
        (labelme_data / split / "images" / name).read_bytes()
    # a no-face picture comes back with a label that says so, as the Label tab's "no face" writes it
    split, name = next(key for key, box in original.items() if box is None)
    label = json.loads((tmp_path / "back" / split / "labels" / f"{Path(name).stem}.json").read_text())
    assert label["shapes"] == []


def _coco_kept(root: Path, no_faces: set[str], total: int) -> None:
    pictures, without_annotations = 0, set()
    for split in ("train", "val", "test"):
        document = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
        assert all((root / "images" / split / image["file_name"]).is_file() for image in document["images"])
        pictures += len(document["images"])
        annotated = {a["image_id"] for a in document["annotations"]}
        without_annotations |= {image["file_name"] for image in document["images"] if image["id"] not in annotated}
    assert pictures == total
    assert without_annotations == no_faces


def _yolo_kept(root: Path, no_faces: set[str], total: int) -> None:
    labels = list(root.glob("labels/*/*.txt"))
    assert len(labels) == total == len(list(root.glob("images/*/*")))
    assert {p.stem for p in labels if p.read_text() == ""} == {Path(n).stem for n in no_faces}
    assert "0: face" in (root / "data.yaml").read_text()


def _voc_kept(root: Path, no_faces: set[str], total: int) -> None:
    xmls = list((root / "Annotations").glob("*.xml"))
    assert len(xmls) == total == len(list((root / "JPEGImages").iterdir()))
    empty = {ET.parse(p).getroot().findtext("filename") for p in xmls if ET.parse(p).getroot().find("object") is None}
    assert empty == no_faces
    listed = sum(len((root / "ImageSets" / "Main" / f"{s}.txt").read_text().split()) for s in ("train", "val", "test"))
    assert listed == total


check_no_face_pictures_are_kept = {"coco": _coco_kept, "yolo": _yolo_kept, "voc": _voc_kept}


# --------------------------------------------------------------------------------- several faces per picture


@pytest.fixture(scope="module")
def several_faces_data(tmp_path_factory) -> Path:
    """12 real 640x480 frames with 0 to 4 faces each, every corner moved to a quarter pixel (exact in binary, two
    decimals: what VOC keeps), one rectangle dragged from its bottom-right corner."""
    root = make_real_demo_data(tmp_path_factory.mktemp("several") / "data", count=12, seed=8, max_faces=4)
    for n, label in enumerate(sorted(root.glob("*/labels/*.json"))):
        document = json.loads(label.read_text())
        for shape in document["shapes"]:
            shape["points"] = [[round(v * 4) / 4 for v in point] for point in shape["points"]]
        if n == 0:
            document["shapes"][-1]["points"].reverse()
        label.write_text(json.dumps(document))
    return root


def faces_by_picture(root: Path) -> dict[tuple[str, str], list[tuple[float, ...]]]:
    """(split, picture name) -> every face box in the labelme files, in pixels as written, sorted."""
    faces = {}
    for picture in root.glob("*/images/*"):
        label = picture.parent.parent / "labels" / f"{picture.stem}.json"
        shapes = json.loads(label.read_text())["shapes"] if label.is_file() else []
        faces[(picture.parent.parent.name, picture.name)] = sorted(
            ordered([v for point in shape["points"] for v in point]) for shape in shapes)
    return faces


@pytest.mark.parametrize(("target", "tolerance"), [("coco", 0.0), ("voc", 0.0), ("yolo", 0.0002)])
def test_every_face_of_a_picture_survives_a_round_trip(several_faces_data, tmp_path, target, tolerance):
    original = faces_by_picture(several_faces_data)
    counts = sorted(len(boxes) for boxes in original.values())
    assert counts[0] == 0 and counts[-1] >= 3, counts
    middle = convert(several_faces_data, tmp_path / target, target)
    assert middle.faces == sum(1 for boxes in original.values() if boxes)
    assert middle.face_boxes == sum(counts) > middle.faces
    assert f"; {sum(counts)} face boxes;" in middle.summary()
    _, pictures = read_dataset(tmp_path / target)
    assert sorted(len(p.boxes) for p in pictures) == counts

    convert(tmp_path / target, tmp_path / "back", "labelme")
    again = faces_by_picture(tmp_path / "back")
    assert again.keys() == original.keys()
    for key, boxes in original.items():
        assert len(again[key]) == len(boxes), key
        worst = max((abs(a - b) for got, want in zip(again[key], boxes, strict=True)
                     for a, b in zip(got, want, strict=True)), default=0.0)
        assert worst <= tolerance, (key, again[key], boxes)
    dataset = load_dataset(tmp_path / "back", strict=True)
    assert dataset.warnings == [] and sum(c["face_boxes"] for c in dataset.counts().values()) == sum(counts)


# --------------------------------------------------------------------------------- layouts of other tools


def _pictures(labelme_data: Path) -> list[tuple[str, Path, tuple[float, ...] | None, int, int]]:
    dataset = load_dataset(labelme_data, strict=True)
    return [(split, s.image_path, box_to_pixels(s.box, s.width, s.height) if s.has_face else None, s.width, s.height)
            for split, samples in dataset.splits.items() for s in samples]


def roboflow_yolo(labelme_data: Path, root: Path) -> None:
    """Roboflow's YOLO export: train/ valid/ test/ each with images/ + labels/, and data.yaml names as a list."""
    for split, picture, box, w, h in _pictures(labelme_data):
        folder = root / {"val": "valid"}.get(split, split)
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        shutil.copy(picture, folder / "images" / picture.name)
        if box is not None:  # no-face pictures: no label file at all (Ultralytics reads that as background)
            x1, y1, x2, y2 = box
            (folder / "labels" / f"{picture.stem}.txt").write_text(
                f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
                                    "nc: 1\nnames: ['face']\n")


def roboflow_coco(labelme_data: Path, root: Path) -> None:
    """Roboflow's COCO export: SPLIT/_annotations.coco.json with the pictures beside it, a supercategory at id 0."""
    groups: dict[str, list] = {}
    for item in _pictures(labelme_data):
        groups.setdefault(item[0], []).append(item)
    for split, items in groups.items():
        folder = root / {"val": "valid"}.get(split, split)
        folder.mkdir(parents=True)
        images, annotations = [], []
        for image_id, (_split, picture, box, w, h) in enumerate(items):
            shutil.copy(picture, folder / picture.name)
            images.append({"id": image_id, "file_name": picture.name, "width": w, "height": h})
            if box is not None:
                x1, y1, x2, y2 = box
                annotations.append({"id": len(annotations), "image_id": image_id, "category_id": 1,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": 1, "iscrowd": 0, "segmentation": []})
        categories = [{"id": 0, "name": "faces", "supercategory": "none"},
                      {"id": 1, "name": "Face", "supercategory": "faces"}]
        (folder / "_annotations.coco.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))


def labelimg_voc(labelme_data: Path, root: Path) -> None:
    """labelImg's default: one XML beside each labelled picture, whole pixels, no splits; no-face: no XML."""
    root.mkdir()
    for _split, picture, box, w, h in _pictures(labelme_data):
        shutil.copy(picture, root / picture.name)
        if box is not None:
            x1, y1, x2, y2 = (round(v) for v in box)
            (root / f"{picture.stem}.xml").write_text(
                f"<annotation><folder>data</folder><filename>{picture.name}</filename><size><width>{w}</width>"
                f"<height>{h}</height><depth>3</depth></size><object><name>face</name><difficult>0</difficult>"
                f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
                "</annotation>")


@pytest.mark.parametrize(("make", "fmt", "splits", "tolerance"), [
    (roboflow_yolo, "yolo", True, 0.01),
    (roboflow_coco, "coco", True, 1e-6),
    (labelimg_voc, "voc", False, 0.5),  # labelImg rounds to whole pixels
])
def test_other_tools_layouts_are_read(labelme_data, tmp_path, make, fmt, splits, tolerance):
    make(labelme_data, tmp_path / "export")
    found, pictures = read_dataset(tmp_path / "export")
    assert found == fmt
    expected = {picture.name: (split, box) for split, picture, box, _w, _h in _pictures(labelme_data)}
    assert {p.image.name for p in pictures} == set(expected)
    for p in pictures:
        split, box = expected[p.image.name]
        assert p.split == (split if splits else None)
        assert (p.box is None) == (box is None), p.image.name
        if box is not None:
            assert max(abs(a - b) for a, b in zip(p.box, box, strict=True)) <= tolerance


def test_a_flat_dataset_stays_flat(labelme_data, tmp_path):
    flat = tmp_path / "flat"
    for _split, picture, box, w, h in _pictures(labelme_data):
        (flat / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(picture, flat / "images" / picture.name)
        write_labelme(flat / "labels" / f"{picture.stem}.json", flat / "images" / picture.name, box, w, h)
    convert(flat, tmp_path / "yolo", "yolo")
    assert sorted(p.name for p in (tmp_path / "yolo" / "images").iterdir()) == \
        sorted(p.name for p in (flat / "images").iterdir())
    assert "train: images" in (tmp_path / "yolo" / "data.yaml").read_text()
    convert(tmp_path / "yolo", tmp_path / "back", "labelme")
    assert load_dataset(tmp_path / "back").layout == "flat"
    assert boxes_by_picture(tmp_path / "back").keys() == boxes_by_picture(flat).keys()


# --------------------------------------------------------------------------------- detection and errors


def test_format_is_detected_only_when_unambiguous(labelme_data, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(labelme_data, mixed)
    (mixed / "train" / "labels" / "extra.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # a YOLO label among labelme's
    with pytest.raises(DataError, match=r"more than one format: labelme .*; yolo .*--from") as caught:
        detect_format(mixed)
    assert caught.value.path == mixed
    assert read_dataset(mixed, "labelme")[0] == "labelme"  # --from settles it

    (tmp_path / "nothing" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="cannot tell the annotation format.*--from"):
        detect_format(tmp_path / "nothing")


def _converted(labelme_data: Path, tmp_path: Path, fmt: str) -> Path:
    out = tmp_path / fmt
    convert(labelme_data, out, fmt)
    return out


def _first_face(document: dict) -> dict:
    return document["annotations"][0]


def break_coco_json(root: Path) -> Path:
    path = root / "annotations" / "instances_val.json"
    path.write_text(path.read_text()[:-20])
    return path


def coco_picture_missing(root: Path) -> Path:
    path = root / "annotations" / "instances_test.json"
    document = json.loads(path.read_text())
    (root / "images" / "test" / document["images"][0]["file_name"]).unlink()
    return path


def coco_box_outside(root: Path) -> Path:
    path = root / "annotations" / "instances_train.json"
    document = json.loads(path.read_text())
    _first_face(document)["bbox"] = [300, 10, 30, 30]
    path.write_text(json.dumps(document))
    return path


def yolo_short_line(root: Path) -> Path:
    path = next(p for p in sorted(root.glob("labels/train/*.txt")) if p.read_text())
    path.write_text("0 0.5 0.5 0.2\n")
    return path


def yolo_label_without_picture(root: Path) -> Path:
    path = root / "labels" / "val" / "stray.txt"
    path.write_text("0 0.5 0.5 0.2 0.2\n")
    return path


def voc_broken_xml(root: Path) -> Path:
    path = sorted((root / "Annotations").glob("*.xml"))[1]
    path.write_text("<annotation><filename>x.jpg</filename>")
    return path


def voc_resized_picture(root: Path) -> Path:
    path = sorted((root / "Annotations").glob("*.xml"))[0]
    picture = root / "JPEGImages" / ET.parse(path).getroot().findtext("filename")
    assert cv2.imwrite(str(picture), cv2.resize(cv2.imread(str(picture)), (160, 120)))
    return path


def voc_two_classes(root: Path) -> Path:
    """Every face renamed: the first to "head", the others to "person"; none is called face any more."""
    labelled = [p for p in sorted((root / "Annotations").glob("*.xml")) if "<object>" in p.read_text()]
    for n, path in enumerate(labelled):
        path.write_text(path.read_text().replace("<name>face</name>", "<name>head</name>" if n == 0 else
                                                 "<name>person</name>"))
    return root


@pytest.mark.parametrize(("fmt", "spoil", "message"), [
    ("coco", break_coco_json, "not valid JSON"),
    ("coco", coco_picture_missing, "is not in any of the folders looked in"),
    ("coco", coco_box_outside, r"annotation id \d+ \(.*\): box \[300, 10, 330, 40\] (lies|reaches) outside the"),
    ("yolo", yolo_short_line, "line 1: expected 'class x_center y_center width height', got 4 numbers"),
    ("yolo", yolo_label_without_picture, "no picture for this label"),
    ("voc", voc_broken_xml, "not valid XML"),
    ("voc", voc_resized_picture, r"labelled as \d+x\d+ but .* is 160x120 \(was it resized after labelling\?\)"),
    ("voc", voc_two_classes, r"no class named \"face\" among the 2 classes used \(head, person\)"),
])
def test_bad_input_stops_with_an_error_naming_the_file(labelme_data, tmp_path, fmt, spoil, message):
    root = _converted(labelme_data, tmp_path, fmt)
    bad = spoil(root)
    with pytest.raises(DataError, match=message) as caught:
        convert(root, tmp_path / "out", "labelme")
    assert caught.value.path == bad
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".facetracker-*"))  # no staging folder left behind


def test_cli_convert_copies_or_links_and_refuses_a_used_folder(labelme_data, tmp_path, capsys):
    assert main(["convert", str(labelme_data), str(tmp_path / "voc"), "--to", "voc", "--link"]) == 0
    out = capsys.readouterr().out
    assert "from labelme to voc" in out and f"Results saved to {tmp_path / 'voc'}" in out
    linked = tmp_path / "voc" / "JPEGImages" / "astronaut.png"
    assert os.path.samefile(linked, labelme_data / "train" / "images" / "astronaut.png")

    assert main(["convert", str(tmp_path / "voc"), str(tmp_path / "coco"), "--to", "coco"]) == 0
    copied = tmp_path / "coco" / "images" / "train" / "astronaut.png"
    assert not os.path.samefile(copied, linked) and copied.read_bytes() == linked.read_bytes()
    capsys.readouterr()

    marker = tmp_path / "coco" / "keep.txt"
    marker.write_text("mine")
    assert main(["convert", str(labelme_data), str(tmp_path / "coco"), "--to", "yolo"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"facetracker-train convert: error: {tmp_path / 'coco'}: already exists and is not an empty "
                   "folder: choose a new folder for the converted dataset")
    assert marker.read_text() == "mine"

    assert main(["convert", str(tmp_path / "coco"), str(tmp_path / "x"), "--to", "yolo", "--from", "voc"]) == 1
    assert "no Pascal VOC XML files" in capsys.readouterr().err
    assert set(FORMATS) == {"labelme", "coco", "yolo", "voc"} and set(READ_FORMATS) == {*FORMATS, "wider"}

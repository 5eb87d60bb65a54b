"""WIDER FACE annotation files: `convert --from wider` on a small tree written here in WIDER's own layout
(annotation files of its format, real JPEG pictures); every valid face kept, invalid and zero-size boxes
skipped and counted, errors naming the file and line. Nothing is downloaded; no TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.cli import main
from training.data.dataset import DataError, load_dataset
from training.data.formats import convert, detect_format, read_dataset

W, H = 200, 150


def picture(path: Path, width: int = W, height: int = H, seed: int = 0) -> Path:
    """A real JPEG with some structure (noise and a few blocks)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    for _ in range(4):
        x, y = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        image[y : y + 20, x : x + 20] = rng.integers(0, 256, 3, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def box_line(x: int, y: int, w: int, h: int, invalid: int = 0, blur: int = 0) -> str:
    """x1 y1 w h blur expression illumination invalid occlusion pose, as WIDER writes them (trailing space)."""
    return f"{x} {y} {w} {h} {blur} 0 0 {invalid} 0 0 "


def entry(name: str, boxes: list[str]) -> list[str]:
    return [name, str(len(boxes)), *(boxes or ["0 0 0 0 0 0 0 0 0 0 "])]


GRID = [(5 + 24 * (i % 8), 5 + 24 * (i // 8), 18, 20) for i in range(40)]  # 40 small faces, a crowd

TRAIN = {  # picture -> its box lines
    "0--Parade/0_Parade_marchingband_1_849.jpg": [box_line(10, 20, 40, 50), box_line(120, 30, 30, 35, blur=2),
                                                  box_line(60, 90, 20, 22, invalid=1)],
    "0--Parade/0_Parade_Parade_0_904.jpg": [],  # no face: ten zeros
    "1--Handshaking/1_Handshaking_Handshaking_1_35.jpg": [box_line(50, 40, 60, 70), box_line(150, 10, 0, 12)],
    "1--Handshaking/1_Handshaking_Handshaking_1_94.jpg": [box_line(30, 30, 25, 25, invalid=1)],  # left out
    "2--Demonstration/2_Demonstration_Protesters_2_56.jpg": [box_line(*b) for b in GRID],
}
VAL = {"0--Parade/0_Parade_marchingband_1_465.jpg": [box_line(0, 0, 200, 150), box_line(80, 60, 10, 10)]}


@pytest.fixture
def wider(tmp_path: Path) -> Path:
    """A WIDER FACE download unpacked: wider_face_split/ beside WIDER_train/, WIDER_val/, WIDER_test/."""
    root = tmp_path / "WIDER"
    for split, pictures in (("train", TRAIN), ("val", VAL)):
        lines = [line for name, boxes in pictures.items() for line in entry(name, boxes)]
        annotations = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
        annotations.parent.mkdir(parents=True, exist_ok=True)
        annotations.write_text("\n".join(lines) + "\n")
        for n, name in enumerate(pictures):
            picture(root / f"WIDER_{split}" / "images" / name, seed=n)
    test_list = root / "wider_face_split" / "wider_face_test_filelist.txt"
    test_list.write_text("0--Parade/0_Parade_marchingband_1_737.jpg\n")
    picture(root / "WIDER_test" / "images" / "0--Parade" / "0_Parade_marchingband_1_737.jpg")
    return root


def normalised(x: int, y: int, w: int, h: int) -> tuple[float, ...]:
    return (x / W, y / H, (x + w) / W, (y + h) / H)


def close(boxes, expected) -> bool:
    return len(boxes) == len(expected) and np.allclose(np.array(boxes), np.array(expected), atol=1e-9)


def test_a_wider_tree_converts_with_every_valid_face(wider: Path, tmp_path: Path):
    assert detect_format(wider) == "wider"
    result = convert(wider, tmp_path / "faces", "labelme")
    assert (result.source_format, result.split_counts) == ("wider", {"train": 4, "val": 1})
    assert (result.pictures, result.faces, result.face_boxes) == (5, 4, 2 + 1 + 40 + 2)
    assert result.notes == (
        "WIDER_test: not converted, WIDER FACE gives its test pictures without face boxes",
        "wider_face_train_bbx_gt.txt: skipped 2 face boxes marked invalid and 1 of zero width or height; "
        "1 pictures left out, every face on them skipped")
    assert "; 45 face boxes; train 4, val 1) from wider to labelme.\nWIDER_test: not converted" in result.summary()

    dataset = load_dataset(tmp_path / "faces", strict=True)  # a crowd of 40 faces is a picture like any other
    assert dataset.problems == [] and dataset.warnings == []
    samples = {s.image_path.name: s for split in dataset.splits.values() for s in split}
    assert set(samples) == {Path(n).name for n in [*TRAIN, *VAL]} - {"1_Handshaking_Handshaking_1_94.jpg"}
    assert close(samples["0_Parade_marchingband_1_849.jpg"].boxes,
                 [normalised(10, 20, 40, 50), normalised(120, 30, 30, 35)])  # the invalid one skipped
    assert not samples["0_Parade_Parade_0_904.jpg"].has_face
    assert close(samples["1_Handshaking_Handshaking_1_35.jpg"].boxes, [normalised(50, 40, 60, 70)])
    crowd = samples["2_Demonstration_Protesters_2_56.jpg"]
    assert crowd.face_count == 40 and close(sorted(crowd.boxes), sorted(normalised(*b) for b in GRID))
    assert samples["0_Parade_marchingband_1_465.jpg"].box == pytest.approx((0, 0, 1, 1))  # the largest first
    assert [s.image_path.name for s in dataset.splits["val"]] == ["0_Parade_marchingband_1_465.jpg"]
    assert dataset.splits["test"] == []
    assert dataset.counts()["train"] == {"images": 4, "faces": 3, "no_faces": 1, "face_boxes": 43,
                                         "several_faces": 2}
    assert len(dataset.several_faces_notes()) == 3


def test_cli_convert_from_wider_says_what_it_skipped(wider: Path, tmp_path: Path, capsys):
    assert main(["convert", str(wider), str(tmp_path / "yolo"), "--to", "yolo", "--from", "wider"]) == 0
    out = capsys.readouterr().out
    assert "Converted 5 pictures (4 with a face, 1 without; 45 face boxes; train 4, val 1) from wider to yolo." in out
    assert "skipped 2 face boxes marked invalid and 1 of zero width or height" in out
    assert "WIDER_test: not converted" in out
    crowd = tmp_path / "yolo" / "labels" / "train" / "2_Demonstration_Protesters_2_56.txt"
    assert len(crowd.read_text().splitlines()) == 40


def test_only_the_splits_whose_pictures_are_there(wider: Path, tmp_path: Path):
    for name in TRAIN:
        (wider / "WIDER_train" / "images" / name).unlink()
    (wider / "WIDER_train" / "images").rename(wider / "elsewhere")
    notes: list[str] = []
    _, pictures = read_dataset(wider, "wider", notes)
    assert [p.split for p in pictures] == ["val"]
    assert f"wider_face_train_bbx_gt.txt: not converted, its pictures folder {wider / 'WIDER_train' / 'images'} " \
           "does not exist" in notes
    (wider / "WIDER_val" / "images").rename(wider / "elsewhere2")
    with pytest.raises(DataError, match="the WIDER FACE pictures folder does not exist") as caught:
        read_dataset(wider, "wider")
    assert caught.value.path == wider / "WIDER_train" / "images"


def _rewrite(wider: Path, lines: list[str]) -> Path:
    path = wider / "wider_face_split" / "wider_face_train_bbx_gt.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


PARADE = "0--Parade/0_Parade_marchingband_1_849.jpg"
PARADE_2 = "0--Parade/0_Parade_Parade_0_904.jpg"


@pytest.mark.parametrize(("lines", "message"), [
    ([PARADE, "two", box_line(1, 1, 5, 5)], r"line 2: expected the number of faces of 0--Parade/.*849.jpg \(line 1\), "
                                           r"got 'two'"),
    ([PARADE, "-1", box_line(1, 1, 5, 5)], r"line 2: expected the number of faces"),
    ([PARADE, "3", box_line(1, 1, 5, 5), box_line(20, 20, 5, 5), *entry(PARADE_2, [])],
     r"line 5: expected ten numbers \(x1 y1 w h blur expression illumination invalid occlusion pose\), got "
     r"'0--Parade/0_Parade_Parade_0_904.jpg' \(only 2 box lines for the 3 faces of 0--Parade/.*849.jpg, line 1\?\)"),
    ([PARADE, "2", box_line(1, 1, 5, 5)], r"line 1: 0--Parade/.*849.jpg has 2 faces but the file ends after 1 of "
                                          r"its box lines"),
    ([PARADE], r"line 1: 0--Parade/.*849.jpg is not followed by its number of faces"),
    ([PARADE, "1", "1 1 5 5 0 0 0 0 0"], r"line 3: expected ten numbers"),
    ([PARADE, "1", "1 1 five 5 0 0 0 0 0 0"], r"line 3: not ten numbers: '1 1 five 5 0 0 0 0 0 0'"),
    ([*entry(PARADE_2, []), "0--Parade/0_Parade_missing_1.jpg", "1", box_line(1, 1, 5, 5)],
     r"line 4: the picture 0--Parade/0_Parade_missing_1.jpg does not exist in .*WIDER_train/images"),
    ([PARADE, "1", box_line(10, 20, -5, 30)], r"line 3 \(0--Parade/.*849.jpg\): a box of negative size"),
], ids=["count-not-a-number", "negative-count", "too-few-box-lines", "file-ends-in-boxes", "file-ends-before-count",
        "nine-numbers", "not-numbers", "missing-picture", "negative-size"])
def test_errors_name_the_annotation_file_and_line(wider: Path, tmp_path: Path, lines, message):
    path = _rewrite(wider, lines)
    with pytest.raises(DataError, match=message) as caught:
        convert(wider, tmp_path / "out", "labelme")
    assert caught.value.path == path
    assert not (tmp_path / "out").exists()


def test_boxes_past_the_edge_are_clipped_and_counted(wider: Path):
    # WIDER FACE has boxes running past the picture (a face cut by the edge): clipped, counted, never a stop.
    _rewrite(wider, [PARADE, "3", box_line(190, 20, 30, 30), box_line(-4, -3, 20, 20), box_line(300, 10, 5, 5)])
    notes: list[str] = []
    _, pictures = read_dataset(wider, "wider", notes)
    by_name = {p.image.name: p for p in pictures if p.split == "train"}
    assert by_name[Path(PARADE).name].boxes == ((190, 20, 200, 50), (0, 0, 16, 17))
    assert "wider_face_train_bbx_gt.txt: 2 face boxes reaching past their picture's edge were clipped to it" in notes
    assert any("and 1 of zero width or height" in note for note in notes)  # wholly outside: nothing left


def test_a_picture_without_faces_may_lack_its_line_of_zeros(wider: Path, tmp_path: Path):
    _rewrite(wider, [PARADE_2, "0", PARADE, "1", box_line(10, 20, 40, 50)])
    _, pictures = read_dataset(wider, "wider")
    by_name = {p.image.name: p for p in pictures if p.split == "train"}
    assert by_name[Path(PARADE_2).name].boxes == () and by_name[Path(PARADE).name].boxes == ((10, 20, 50, 70),)


def test_a_wider_tree_is_told_from_the_other_formats(wider: Path):
    (wider / "WIDER_val" / "images" / "0--Parade" / "x.json").write_text(json.dumps({"shapes": []}))
    assert detect_format(wider) == "wider"  # labelme JSON is looked for where labelme keeps it, not in here
    (wider / "wider_face_split" / "wider_face_train_bbx_gt.txt").rename(wider / "wider_face_train_bbx_gt.txt")
    (wider / "wider_face_split" / "wider_face_val_bbx_gt.txt").unlink()
    assert detect_format(wider) == "wider"  # the annotation file beside the picture folders is read too

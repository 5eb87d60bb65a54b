"""training.data.demo: a synthetic dataset in the tutorial layout that load_dataset reads without a problem."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data.dataset import SPLITS, DataError, load_dataset
from training.data.demo import SKIN_TONES, make_demo_data


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_data(tmp_path_factory.mktemp("demo") / "data", count=40, width=160, height=120, seed=7)


def test_demo_data_is_a_clean_tutorial_layout_split_70_15_15(demo: Path):
    dataset = load_dataset(demo, strict=True)
    assert dataset.layout == "split"
    counts = dataset.counts()
    assert [counts[name]["images"] for name in SPLITS] == [28, 6, 6]
    for name in SPLITS:
        assert sorted(p.name for p in (demo / name / "images").iterdir()) == sorted(
            s.image_path.name for s in dataset.splits[name])
    no_faces = sum(c["no_faces"] for c in counts.values())
    assert 3 <= no_faces <= 14  # ~20 % of 40
    samples = [s for split in dataset.splits.values() for s in split]
    assert all((s.width, s.height) == (160, 120) for s in samples)
    assert all(s.label_path is None for s in samples if not s.has_face)  # as in the tutorial: no JSON


def test_faces_have_the_promised_size_and_look_like_skin(demo: Path):
    samples = [s for split in load_dataset(demo).splits.values() for s in split if s.has_face]
    widths = [s.box[2] - s.box[0] for s in samples]
    assert min(widths) >= 0.1 and max(widths) <= 0.46
    assert max(widths) - min(widths) > 0.1  # varied sizes
    centres = [((s.box[0] + s.box[2]) / 2, (s.box[1] + s.box[3]) / 2) for s in samples]
    assert np.std(centres, axis=0).min() > 0.08  # varied places
    for sample in samples:
        image = cv2.imread(str(sample.image_path)).astype(np.float32)
        x1, y1, x2, y2 = (sample.box * np.array([160, 120, 160, 120])).round().astype(int)
        assert 0 <= x1 < x2 <= 160 and 0 <= y1 < y2 <= 120
        cheek = image[y1 + (y2 - y1) * 6 // 10 : y1 + (y2 - y1) * 7 // 10, x1 + (x2 - x1) // 5 : x1 + (x2 - x1) * 3 // 10]
        distance = np.linalg.norm(SKIN_TONES - cheek.reshape(-1, 3).mean(axis=0), axis=1).min()
        assert distance < 45, (sample.image_path, distance)


def test_labels_are_labelme_rectangles(demo: Path):
    label = next((demo / "train" / "labels").iterdir())
    document = json.loads(label.read_text())
    assert document["shapes"][0]["label"] == "face" and document["shapes"][0]["shape_type"] == "rectangle"
    assert document["imagePath"] == f"../images/{label.stem}.jpg"
    assert (document["imageWidth"], document["imageHeight"]) == (160, 120)


def test_same_seed_same_files_other_seed_other_files(demo: Path, tmp_path: Path):
    again = make_demo_data(tmp_path / "again", count=40, width=160, height=120, seed=7)
    other = make_demo_data(tmp_path / "other", count=40, width=160, height=120, seed=8)
    files = sorted(p.relative_to(demo) for p in demo.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((demo / f).read_bytes() == (again / f).read_bytes() for f in files)
    first = sorted((demo / "train" / "images").iterdir())[0].name
    other_first = next(other.rglob(first))
    assert other_first.read_bytes() != next(demo.rglob(first)).read_bytes()


def test_refuses_a_folder_that_already_has_pictures(demo: Path, tmp_path: Path):
    with pytest.raises(DataError, match="already holds pictures") as caught:
        make_demo_data(demo, count=5)
    assert caught.value.path == demo / "train" / "images"
    make_demo_data(tmp_path, count=3, width=64, height=48)  # an existing but empty folder is fine
    assert sum(1 for _ in tmp_path.rglob("*.jpg")) == 3


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"width": 10}], ids=["no-pictures", "too-small"])
def test_rejects_bad_arguments(tmp_path: Path, kwargs):
    with pytest.raises(ValueError):
        make_demo_data(tmp_path, **kwargs)

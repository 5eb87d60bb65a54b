"""training.realfaces: a benchmark of real face photos in the tutorial layout, honest by identity."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import realfaces
from training.data import SPLITS, DataError, load_dataset
from training.realfaces import make_real_demo_data, real_face_sources

WIDTH, HEIGHT = 320, 240  # half of 640x480: face boxes 30-90 px


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    return make_real_demo_data(tmp_path_factory.mktemp("real") / "data", count=40, width=WIDTH, height=HEIGHT, seed=3)


def _manifest(root: Path) -> dict:
    return json.loads((root / "sources.json").read_text(encoding="utf-8"))


def test_a_clean_tutorial_layout_split_60_15_25_with_45_percent_no_face(real: Path):
    dataset = load_dataset(real, strict=True)
    assert dataset.layout == "split" and not dataset.problems
    counts = dataset.counts()
    assert [counts[name]["images"] for name in SPLITS] == [24, 6, 10]
    for name in SPLITS:
        assert abs(counts[name]["no_faces"] - 0.45 * counts[name]["images"]) <= 0.5, (name, counts[name])
        assert sorted(p.name for p in (real / name / "images").iterdir()) == sorted(
            s.image_path.name for s in dataset.splits[name])
    samples = [s for split in dataset.splits.values() for s in split]
    assert all((s.width, s.height) == (WIDTH, HEIGHT) for s in samples)
    assert all(s.label_path is None for s in samples if not s.has_face)  # as training.demo: no JSON
    label = json.loads(next(s.label_path for s in samples if s.has_face).read_text())
    assert [(shape["label"], shape["shape_type"]) for shape in label["shapes"]] == [("face", "rectangle")]


def test_the_manifest_matches_the_files(real: Path):
    dataset = load_dataset(real, strict=True)
    frames = _manifest(real)["frames"]
    samples = {s.image_path.relative_to(real).as_posix(): s for split in dataset.splits.values() for s in split}
    assert set(frames) == set(samples)
    for path, frame in frames.items():
        sample = samples[path]
        assert frame["split"] == path.split("/")[0]
        assert (frame["face"] is not None) == sample.has_face
        if sample.has_face:
            assert np.allclose(np.array(sample.box) * [WIDTH, HEIGHT, WIDTH, HEIGHT], frame["box"], atol=0.01)


def test_boxes_lie_inside_the_frame_and_are_face_sized_at_many_places(real: Path):
    samples = [s for split in load_dataset(real, strict=True).splits.values() for s in split if s.has_face]
    assert len(samples) >= 15
    boxes = np.array([s.box for s in samples]) * [WIDTH, HEIGHT, WIDTH, HEIGHT]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= WIDTH).all() and (boxes[:, 3] <= HEIGHT).all()
    sides = np.concatenate([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
    assert sides.min() >= 30 and sides.max() <= 90, (sides.min(), sides.max())  # 60-180 px at 640x480
    assert sides.max() - sides.min() > 30  # varied sizes
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / [WIDTH, HEIGHT]
    assert np.std(centres, axis=0).min() > 0.12  # varied places


def test_test_split_faces_are_other_photos_than_train_and_val(real: Path):
    pools = real_face_sources()
    assert pools["train"] == pools["val"]
    for kind in ("faces", "non_faces"):
        assert not set(pools["test"][kind]) & set(pools["train"][kind])
    all_faces = set(pools["train"]["faces"]) | set(pools["test"]["faces"])
    assert {f"lfw_{i:03d}" for i in range(100)} | {"astronaut", "camera", "grace_hopper"} == all_faces
    assert not all_faces & (set(pools["train"]["non_faces"]) | set(pools["test"]["non_faces"]))

    manifest = _manifest(real)
    assert manifest["pools"] == pools
    used = {name: set() for name in SPLITS}
    for frame in manifest["frames"].values():
        pool = pools[frame["split"]]
        if frame["face"] is not None:
            assert frame["face"] in pool["faces"]
            used[frame["split"]].add(frame["face"])
        for name in frame["distractors"]:  # non-face crops, and the surroundings of face photos, split too
            assert name in pool["non_faces"] or name in pool["faces"] or name in realfaces.BACKGROUNDS, name
            assert not name.startswith("lfw_") or name in pool["non_faces"]
    assert used["test"] and used["train"]
    assert not used["test"] & (used["train"] | used["val"])


def _face_of(name: str) -> np.ndarray:
    """The grey face crop of a source photo, as it was labelled."""
    source = realfaces._photos()[name]
    x1, y1, x2, y2 = source.box
    return cv2.cvtColor(np.ascontiguousarray(source.image[y1:y2, x1:x2]), cv2.COLOR_BGR2GRAY)


def _centre(grey: np.ndarray) -> np.ndarray:
    """The middle half of a face at 24x24, zero mean and unit spread (clear of the feathered edge)."""
    centre = cv2.resize(grey.astype(np.float32), (24, 24), interpolation=cv2.INTER_AREA)[6:18, 6:18].ravel()
    return (centre - centre.mean()) / (centre.std() + 1e-6)


def test_the_labelled_box_holds_the_recorded_face_photo(real: Path):
    """Inside every box is the face photo the manifest names (flipped if it says so), and it matches that
    photo better than any other face: the box is on the face and the record tells the truth."""
    names = sorted(real_face_sources()["train"]["faces"] + real_face_sources()["test"]["faces"])
    faces = {name: _face_of(name) for name in names}
    frames = [(path, f) for path, f in _manifest(real)["frames"].items() if f["face"] is not None]
    for path, frame in frames:
        image = cv2.imread(str(real / path), cv2.IMREAD_GRAYSCALE)
        x1, y1, x2, y2 = (round(v) for v in frame["box"])
        seen = _centre(image[y1:y2, x1:x2])
        scores = {n: float(seen @ _centre(f[:, ::-1] if frame["flipped"] else f)) / seen.size for n, f in faces.items()}
        best = max(scores, key=scores.get)
        assert best == frame["face"] and scores[best] > 0.6, (path, frame["face"], best, scores[best])


def test_non_face_patches_appear_with_and_without_a_face(real: Path):
    frames = list(_manifest(real)["frames"].values())
    assert all(0 <= len(f["distractors"]) <= 3 for f in frames)
    assert any(f["distractors"] for f in frames if f["face"] is None)
    assert any(f["distractors"] for f in frames if f["face"] is not None)
    assert sum(len(f["distractors"]) for f in frames) >= len(frames)  # 1.5 a picture on average


def test_same_seed_same_bytes_other_seed_other_pictures(tmp_path: Path):
    first = make_real_demo_data(tmp_path / "a", count=8, width=160, height=120, seed=5)
    again = make_real_demo_data(tmp_path / "b", count=8, width=160, height=120, seed=5)
    other = make_real_demo_data(tmp_path / "c", count=8, width=160, height=120, seed=6)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) > 8 and files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (again / f).read_bytes() for f in files)
    pictures = [p.name for p in first.rglob("*.jpg")]
    assert all(next(first.rglob(n)).read_bytes() != next(other.rglob(n)).read_bytes() for n in pictures)


def test_split_fractions_and_no_face_fraction_are_the_callers(tmp_path: Path):
    out = make_real_demo_data(tmp_path / "d", count=12, width=128, height=96, no_face_fraction=0.0,
                              split_fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    counts = load_dataset(out, strict=True).counts()
    assert [counts[name]["images"] for name in SPLITS] == [6, 3, 3]
    assert all(counts[name]["no_faces"] == 0 for name in SPLITS)


def test_builds_offline_from_installed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def no_network(*args, **kwargs):
        raise AssertionError("realfaces tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    realfaces._photos.cache_clear()
    out = make_real_demo_data(tmp_path / "e", count=3, width=128, height=96)
    assert len(list(out.rglob("*.jpg"))) == 3


def test_refuses_a_folder_that_already_has_pictures(real: Path, tmp_path: Path):
    with pytest.raises(DataError, match="already holds pictures") as caught:
        make_real_demo_data(real, count=5)
    assert caught.value.path == real / "train" / "images"
    make_real_demo_data(tmp_path, count=2, width=128, height=96)  # an existing but empty folder is fine
    assert sum(1 for _ in tmp_path.rglob("*.jpg")) == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"count": 0}, {"width": 32}, {"no_face_fraction": 1.5}, {"split_fractions": {"train": 0.9, "test": 0.2}},
     {"split_fractions": {"train": 0.8, "holdout": 0.2}}, {"max_faces": 0}, {"max_faces": 5}],
    ids=["no-pictures", "too-small", "bad-no-face-fraction", "fractions-not-summing-to-1", "unknown-split",
         "no-faces-at-most", "more-faces-than-fit"],
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs):
    with pytest.raises(ValueError):
        make_real_demo_data(tmp_path, **kwargs)


def test_seen_test_people_draws_the_test_split_from_the_training_people(tmp_path):
    seen = make_real_demo_data(tmp_path / "seen", count=40, width=WIDTH, height=HEIGHT, seed=4, test_people="seen")
    frames = _manifest(seen)["frames"].values()
    train_faces = set(real_face_sources()["train"]["faces"])
    test_faces = {f["face"] for f in frames if f["split"] == "test" and f["face"]}
    assert test_faces and test_faces <= train_faces
    with pytest.raises(ValueError, match="test_people"):
        make_real_demo_data(tmp_path / "bad", count=10, test_people="old")


def _digest(root: Path, pattern: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob(pattern)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_one_face_at_most_writes_the_same_bytes_as_before_several_faces(tmp_path: Path):
    """The single-face set is a benchmark whose numbers are compared across versions: adding several faces
    must not move one byte of it. The digests were taken from the code before ``max_faces`` existed
    (commit c340d3c), with this project's pinned OpenCV and NumPy; a newer OpenCV may encode JPEGs
    differently, which changes the second digest only."""
    out = make_real_demo_data(tmp_path / "one", count=30, width=160, height=120, seed=7, max_faces=1)
    assert _digest(out, "*.json") == "b8496b71f72a4e8baceee4094e7844c4333c6af5b060eeb310c7828e42e819ec"  # labels
    assert _digest(out, "*.jpg") == "b50541ac5382ec9ef87769707400185eeaeb43a0eb3e0bd92a1df2d778d20d37"  # pictures


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> Path:
    return make_real_demo_data(tmp_path_factory.mktemp("crowd") / "data", count=40, width=WIDTH, height=HEIGHT,
                               seed=11, max_faces=4)


def test_several_faces_apart_each_labelled_and_recorded(crowd: Path):
    dataset = load_dataset(crowd, strict=True)
    assert dataset.problems == [] and dataset.warnings == []
    manifest = _manifest(crowd)
    assert manifest["max_faces"] == 4
    frames = manifest["frames"]
    samples = {s.image_path.relative_to(crowd).as_posix(): s for split in dataset.splits.values() for s in split}
    assert set(frames) == set(samples)
    assert {s.face_count for s in samples.values()} == {0, 1, 2, 3, 4}
    counts = dataset.counts()
    for name in SPLITS:  # no-face pictures as in the single-face set: 45 %, without a label file
        assert abs(counts[name]["no_faces"] - 0.45 * counts[name]["images"]) <= 0.5, (name, counts[name])
    assert all(s.label_path is None for s in samples.values() if not s.has_face)
    scale = [WIDTH, HEIGHT, WIDTH, HEIGHT]
    for path, frame in frames.items():
        sample = samples[path]
        label = json.loads(sample.label_path.read_text()) if sample.label_path else {"shapes": []}
        assert len(label["shapes"]) == len(frame["faces"]) == sample.face_count, path
        recorded = sorted(tuple(face["box"]) for face in frame["faces"])
        read = sorted(tuple(np.array(box) * scale) for box in sample.boxes)
        assert np.allclose(np.array(read).reshape(-1, 4), np.array(recorded).reshape(-1, 4), atol=0.01), path
        names = [face["face"] for face in frame["faces"]]
        assert len(set(names)) == len(names), path  # several people, not one person twice
        for face in frame["faces"]:
            a, patch = face["box"], face["patch"]
            assert a[0] >= 0 and a[1] >= 0 and a[2] <= WIDTH and a[3] <= HEIGHT, path
            assert 30 - 0.01 <= min(a[2] - a[0], a[3] - a[1]) and max(a[2] - a[0], a[3] - a[1]) <= 80 + 0.01, path
            assert patch[0] <= a[0] and patch[1] <= a[1] and a[2] <= patch[2] and a[3] <= patch[3], path
            others = [other["box"] for other in frame["faces"] if other is not face]
            assert all(realfaces._apart(patch, b) for b in others), path  # no face pasted over another


def test_every_face_of_a_crowd_is_the_recorded_photo_whole(crowd: Path):
    """No face patch, nor its surroundings, covers another face: each box still holds its own photo."""
    names = sorted(real_face_sources()["train"]["faces"] + real_face_sources()["test"]["faces"])
    faces = {name: _face_of(name) for name in names}
    checked = 0
    for path, frame in _manifest(crowd)["frames"].items():
        if len(frame["faces"]) < 2:
            continue
        image = cv2.imread(str(crowd / path), cv2.IMREAD_GRAYSCALE)
        for face in frame["faces"]:
            x1, y1, x2, y2 = (round(v) for v in face["box"])
            seen = _centre(image[y1:y2, x1:x2])
            scores = {n: float(seen @ _centre(f[:, ::-1] if face["flipped"] else f)) / seen.size
                      for n, f in faces.items()}
            best = max(scores, key=scores.get)
            assert best == face["face"] and scores[best] > 0.6, (path, face["face"], best, scores[best])
            checked += 1
    assert checked >= 20


def test_the_crowds_test_faces_are_people_never_in_train_or_val(crowd: Path):
    pools = real_face_sources()
    used: dict[str, set[str]] = {name: set() for name in SPLITS}
    for frame in _manifest(crowd)["frames"].values():
        for face in frame["faces"]:
            assert face["face"] in pools[frame["split"]]["faces"]
            used[frame["split"]].add(face["face"])
        for name in frame["distractors"]:
            assert not name.startswith("lfw_") or name in pools[frame["split"]]["non_faces"]
    assert used["test"] and used["train"]
    assert not used["test"] & (used["train"] | used["val"])


def test_the_command_line_writes_several_faces_a_picture(tmp_path, capsys):
    from training.cli import main

    assert main(["make-demo-data", str(tmp_path / "multi"), "--real", "--count", "24", "--max-faces", "4"]) == 0
    assert "Wrote 24 real-face labelled pictures, up to 4 faces each." in capsys.readouterr().out
    samples = [s for split in load_dataset(tmp_path / "multi").splits.values() for s in split]
    assert len(samples) == 24 and max(s.face_count for s in samples) > 1
    assert max(s.face_count for s in samples) <= 4
    assert main(["make-demo-data", str(tmp_path / "drawn"), "--max-faces", "3"]) == 2  # drawn faces: one a picture
    assert "--max-faces needs --real" in capsys.readouterr().err

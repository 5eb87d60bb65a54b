"""training.data.realfaces: a benchmark of real face photos in the tutorial layout, honest by identity."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from training.data import realfaces
from training.data.dataset import SPLITS, DataError, load_dataset
from training.data.realfaces import make_real_demo_data, real_face_sources

WIDTH, HEIGHT = 320, 240  # half of 640x480: face boxes 20-160 px wide


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    return make_real_demo_data(tmp_path_factory.mktemp("real") / "data", count=40, width=WIDTH, height=HEIGHT, seed=3)


@pytest.fixture(scope="module")
def webcam(tmp_path_factory) -> Path:
    """Enough single-face frames to see the distributions (sizes, kinds, colour, camera)."""
    return make_real_demo_data(tmp_path_factory.mktemp("webcam") / "data", count=160, width=WIDTH, height=HEIGHT,
                               seed=21)


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
    assert all(s.label_path is None for s in samples if not s.has_face)  # as training.data.demo: no JSON
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


def test_boxes_lie_inside_the_frame_at_many_places(real: Path):
    samples = [s for split in load_dataset(real, strict=True).splits.values() for s in split if s.has_face]
    assert len(samples) >= 15
    boxes = np.array([s.box for s in samples]) * [WIDTH, HEIGHT, WIDTH, HEIGHT]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= WIDTH).all() and (boxes[:, 3] <= HEIGHT).all()
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / [WIDTH, HEIGHT]
    assert np.std(centres, axis=0).min() > 0.12  # varied places


def _face_widths_at_640(root: Path) -> np.ndarray:
    """Every labelled face's box width, as in a 640x480 frame."""
    samples = [s for split in load_dataset(root, strict=True).splits.values() for s in split if s.has_face]
    return np.array([(box[2] - box[0]) * 640 for s in samples for box in s.boxes])


def test_face_sizes_run_from_far_away_to_selfie(webcam: Path):
    """Faces 40-320 px wide at 640x480, selfie sizes (200 px and up: a user at a desk) common enough to
    learn, and every size between them well filled."""
    widths = _face_widths_at_640(webcam)
    assert len(widths) >= 70
    assert widths.min() >= 40 - 1 and widths.max() <= 320 + 1, (widths.min(), widths.max())
    histogram, _ = np.histogram(widths, [0, 80, 120, 200, 1000])
    shares = histogram / len(widths)
    assert shares.min() >= 0.1, shares  # 40-80, 80-120, 120-200, 200-320 px
    assert 0.2 <= np.mean(widths >= 200) <= 0.45, np.mean(widths >= 200)
    assert widths.max() >= 280 and widths.min() <= 50


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
        if frame["kind"] in ("photo", "surroundings"):  # whole photographs, with or without their face
            assert frame["photo"] in pool["faces"]
            used[frame["split"]].add(frame["photo"])
        for name in frame["distractors"]:  # non-face crops, and the surroundings of face photos, split too
            assert name in pool["non_faces"] or name in pool["faces"] or name in realfaces.BACKGROUNDS, name
            assert not name.startswith("lfw_") or name in pool["non_faces"]
    assert used["test"] and used["train"]
    assert not used["test"] & (used["train"] | used["val"])


def _sources_of(frame: dict) -> set[str]:
    """Every photo a frame's pixels came from: faces, whole photographs, non-face patches, the scene."""
    names = {face["face"] for face in frame.get("faces", [])} | set(frame["distractors"])
    names |= {frame.get("face"), frame.get("photo"), frame.get("background")}
    return names - {None}


@pytest.mark.parametrize("fixture", ["real", "webcam", "crowd"])
def test_grace_hopper_never_reaches_train_or_val(fixture: str, request):
    """Grace Hopper is the photograph real-photo benchmarks keep out of every training set: no pixel of her
    in train or val, as a face, a whole photo, its surroundings or a non-face patch."""
    frames = _manifest(request.getfixturevalue(fixture))["frames"].values()
    assert any("grace_hopper" in _sources_of(f) for f in frames if f["split"] == "test")
    assert not any("grace_hopper" in _sources_of(f) for f in frames if f["split"] != "test")
    assert all("grace_hopper" not in real_face_sources()[split]["faces"] for split in ("train", "val"))


def _photo_in_frame(frame: dict, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The recorded whole photograph (grey) where the record says it lies in the frame, and where it is."""
    source = realfaces._photos()[frame["photo"]].image
    source = source[:, ::-1] if frame["flipped"] else source
    grey = cv2.cvtColor(np.ascontiguousarray(source), cv2.COLOR_BGR2GRAY).astype(np.float32)
    x1, y1, x2, y2 = frame["photo_rect"]
    sx, sy = (x2 - x1) / grey.shape[1], (y2 - y1) / grey.shape[0]
    matrix = np.float32([[sx, 0, x1 + 0.5 * sx - 0.5], [0, sy, y1 + 0.5 * sy - 0.5]])
    warped = cv2.warpAffine(grey, matrix, shape[::-1], flags=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones_like(grey), matrix, shape[::-1], flags=cv2.INTER_NEAREST) > 0.5
    return warped, inside


def test_whole_photographs_keep_the_face_in_its_real_surroundings(webcam: Path):
    """Many face pictures are a whole photograph, not a pasted crop: around the labelled face (out to twice
    its size) the frame shows the photo's own surroundings, so the face's edges are real."""
    frames = _manifest(webcam)["frames"]
    with_face = [f for f in frames.values() if f["face"]]
    photos = [(path, f) for path, f in frames.items() if f["kind"] == "photo"]
    assert 0.3 <= len(photos) / len(with_face) <= 0.6
    assert {f["photo"] for _, f in photos} == {"astronaut", "camera", "grace_hopper"}
    assert {f["fill"] for _, f in photos} >= {None, "scene"}  # zoomed in to fill the frame, or inside a scene
    assert all(f["face"] == f["photo"] for _, f in photos)
    assert sum(f["kind"] == "surroundings" for f in frames.values()) >= 0.15 * (len(frames) - len(with_face))
    agreement = []
    for path, frame in photos:
        image = cv2.imread(str(webcam / path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        photo, inside = _photo_in_frame(frame, image.shape)
        x1, y1, x2, y2 = frame["box"]
        w, h = x2 - x1, y2 - y1
        ring = np.zeros_like(inside)
        ring[max(0, round(y1 - h / 2)) : round(y2 + h / 2), max(0, round(x1 - w / 2)) : round(x2 + w / 2)] = True
        ring[round(y1) : round(y2), round(x1) : round(x2)] = False
        ring &= inside
        a, b = image[ring] - image[ring].mean(), photo[ring] - photo[ring].mean()
        agreement.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-6)))
    assert np.median(agreement) > 0.8 and np.mean(np.array(agreement) > 0.5) > 0.85, sorted(agreement)


def _chroma(image: np.ndarray) -> np.ndarray:
    """How coloured each pixel is: its largest channel minus its smallest (0 for grey)."""
    image = image.astype(np.int16)
    return image.max(axis=2) - image.min(axis=2)


def test_colour_and_grey_both_ways(webcam: Path):
    """Colour is no clue to a face: colour faces in grey frames and grey faces in colour frames both
    happen, as the pixels show, besides frames all colour and all grey."""
    kinds: dict[tuple[bool, bool], list] = {}
    for path, frame in _manifest(webcam)["frames"].items():
        if frame["face"] is None:
            continue
        chroma = _chroma(cv2.imread(str(webcam / path)))
        x1, y1, x2, y2 = frame["box"]
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        face = float(np.median(chroma[round(cy - h / 4) : round(cy + h / 4), round(cx - w / 4) : round(cx + w / 4)]))
        outside = np.ones(chroma.shape, bool)
        outside[round(y1) : round(y2), round(x1) : round(x2)] = False
        kinds.setdefault((frame["colour"], frame["grey_surroundings"]), []).append((face, float(np.median(chroma[outside]))))
    faces = sum(len(v) for v in kinds.values())
    assert all(len(kinds.get(kind, [])) >= 0.05 * faces for kind in [(True, True), (False, False), (True, False),
                                                                      (False, True)]), {k: len(v) for k, v in kinds.items()}
    for (colour, grey_surroundings), measured in kinds.items():
        face, around = np.array(measured).T
        assert np.all(face > 6) if colour else np.all(face <= 4), (colour, face)
        if grey_surroundings:
            assert np.mean(around <= 4) >= 0.85, around  # colour non-face patches may lie on a grey scene


def test_a_cheap_webcams_blur_noise_and_jpeg(webcam: Path):
    """Frames are blurred (defocus, motion), noisy, sometimes all grey, and saved at the JPEG quality
    their record names (30-95): the files' quantisation tables grow coarser as the quality drops."""
    frames = _manifest(webcam)["frames"]
    cameras = [f["camera"] for f in frames.values()]
    blurs = [c["blur"] for c in cameras]
    assert 0.2 <= np.mean([b is not None for b in blurs]) <= 0.5 and {"defocus", "motion"} <= set(blurs)
    assert 0.05 <= np.mean([c["grey"] for c in cameras]) <= 0.3
    noise = np.array([c["noise"] for c in cameras])
    assert noise.min() < 1 and noise.max() > 5
    quality = np.array([c["jpeg_quality"] for c in cameras])
    assert quality.min() >= 30 and quality.max() <= 95 and quality.min() < 40 and quality.max() > 85
    coarseness = []
    for path in frames:
        with Image.open(webcam / path) as picture:
            coarseness.append(sum(picture.quantization[0]))
    order = np.argsort(quality, kind="stable")
    assert np.all(np.diff(np.array(coarseness)[order]) <= 0)  # higher quality, finer tables
    assert len(set(coarseness)) > 20
    for path, frame in frames.items():  # grey camera frames are grey in the file too
        if frame["camera"]["grey"]:
            assert np.percentile(_chroma(cv2.imread(str(webcam / path))), 99) <= 3, path


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
    """Inside every box is the face photo the manifest names (flipped if it says so), and unless the camera
    blurred it, it matches that photo better than any other face: the box is on the face and the record
    tells the truth."""
    names = sorted(real_face_sources()["train"]["faces"] + real_face_sources()["test"]["faces"])
    faces = {name: _face_of(name) for name in names}
    frames = [(path, f) for path, f in _manifest(real)["frames"].items() if f["face"] is not None]
    for path, frame in frames:
        image = cv2.imread(str(real / path), cv2.IMREAD_GRAYSCALE)
        x1, y1, x2, y2 = (round(v) for v in frame["box"])
        seen = _centre(image[y1:y2, x1:x2])
        scores = {n: float(seen @ _centre(f[:, ::-1] if frame["flipped"] else f)) / seen.size for n, f in faces.items()}
        best = max(scores, key=scores.get)
        assert scores[frame["face"]] > 0.6, (path, frame["face"], scores[frame["face"]])
        if frame["camera"]["blur"] is None:  # a blurred small face may look as much like another LFW face
            assert best == frame["face"], (path, frame["face"], best, scores[best])


def test_non_face_patches_appear_with_and_without_a_face(real: Path):
    frames = list(_manifest(real)["frames"].values())
    assert all(0 <= len(f["distractors"]) <= (2 if f["kind"] in ("photo", "surroundings") else 3) for f in frames)
    assert any(f["distractors"] for f in frames if f["face"] is None)
    assert any(f["distractors"] for f in frames if f["face"] is not None)
    assert sum(len(f["distractors"]) for f in frames) >= 0.8 * len(frames)  # about one a picture on average


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


def test_the_single_face_set_is_pinned_byte_for_byte(tmp_path: Path):
    """The single-face set is a benchmark whose numbers are compared across versions: no change may move
    one byte of it unnoticed. The digests were taken when the frames were made webcam-like (issue 18:
    whole photographs, faces 40-320 px, colour and grey both ways, blur, noise, JPEG 30-95), with this
    project's pinned OpenCV and NumPy; a newer OpenCV may encode JPEGs differently, which changes the
    second digest only."""
    out = make_real_demo_data(tmp_path / "one", count=30, width=160, height=120, seed=7, max_faces=1)
    assert _digest(out, "*.json") == "aacf8cba82e189539c71cbe7e1c19c5b674ddf8c75be476de3c9f8f6f2a7e80a"  # labels
    assert _digest(out, "*.jpg") == "6ee095dcf7a89fc149642bfd73ba060fbb4b161b9fc312af1cd7553e51468f5c"  # pictures


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
        kinds = [face["kind"] for face in frame["faces"]]  # a whole photograph's face first, then pasted ones
        assert kinds == (["photo"] if frame["kind"] == "photo" else []) + ["pasted"] * (len(kinds) - (frame["kind"] == "photo"))
        for face in frame["faces"]:
            a, patch = face["box"], face["patch"]
            assert a[0] >= 0 and a[1] >= 0 and a[2] <= WIDTH and a[3] <= HEIGHT, path
            assert 20 - 0.5 <= a[2] - a[0] <= 160 + 0.5 and a[3] - a[1] <= HEIGHT, path  # 40-320 px at 640x480
            assert patch[0] <= a[0] and patch[1] <= a[1] and a[2] <= patch[2] and a[3] <= patch[3], path
            others = [other["box"] for other in frame["faces"] if other is not face]
            if face["kind"] == "pasted":  # a whole photograph lies under the pasted faces, never over one
                assert all(realfaces._apart(patch, b) for b in others), path  # no face pasted over another
        if any(face["box"][2] - face["box"][0] >= 100 for face in frame["faces"]):  # selfie-sized: 200 px at 640
            assert len(frame["faces"]) <= 2, path  # fewer faces when one is large


def test_a_crowd_has_selfie_sized_faces_and_whole_photographs_too(crowd: Path, tmp_path: Path):
    frames = _manifest(crowd)["frames"].values()
    assert any(f["kind"] == "photo" and len(f["faces"]) >= 2 for f in frames)  # a photo and pasted faces over it
    many = make_real_demo_data(tmp_path / "many", count=150, width=160, height=120, seed=5, max_faces=4)
    widths = _face_widths_at_640(many)  # enough faces for shares: 40-320 px, about a quarter selfie-sized
    assert 0.18 <= np.mean(widths >= 200) <= 0.4 and widths.min() <= 60 and widths.max() >= 280, (
        np.mean(widths >= 200), widths.min(), widths.max())
    counts = [len(f["faces"]) for f in _manifest(many)["frames"].values()]
    assert all(counts.count(n) >= 5 for n in range(5)), counts  # 0 to 4 faces, all common


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
            assert scores[face["face"]] > 0.6, (path, face["face"], scores[face["face"]])
            if frame["camera"]["blur"] is None:  # a blurred small face may look as much like another LFW face
                assert best == face["face"], (path, face["face"], best, scores[best])
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

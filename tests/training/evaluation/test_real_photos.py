"""The real-photograph benchmark (benchmarks/real_photos.py): fixed frames, labels that fit them, and a
score that can fail. Runs on the photos of our own dependencies; the packaged group photos too when
``FACETRACKER_PHOTOS`` names a folder holding their sdists. No TensorFlow model."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

from training.evaluation import realphotos as real_photos  # noqa: E402
from training.evaluation.realphotos import FRAME_H, FRAME_W, MAX_FACE_PX, MIN_FACE_PX, Frame, Photo  # noqa: E402


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    return real_photos.real_photo_frames(photo_dirs=[])


def _detector(frames: list[Frame], change=lambda box: [box]):
    """A detector that answers each frame's true boxes (changed by ``change``), looked up by the frame."""
    by_image = {id(f.image): f for f in frames}

    def detect_all(image: np.ndarray) -> list[tuple[float, tuple]]:
        return [(0.9, b) for box in by_image[id(image)].faces for b in change(box)]
    return detect_all


def test_frames_are_the_same_on_every_call(frames: list[Frame]) -> None:
    real_photos._load_cached.cache_clear()
    again = real_photos.real_photo_frames(photo_dirs=[])
    assert [f.name for f in again] == [f.name for f in frames]
    for a, b in zip(frames, again, strict=True):
        assert a.faces == b.faces and a.ignore == b.ignore and a.kind == b.kind
        assert np.array_equal(a.image, b.image)


def test_every_face_lies_in_its_frame_at_a_webcam_size(frames: list[Frame]) -> None:
    assert len({f.name for f in frames}) == len(frames)
    for frame in frames:
        assert frame.image.shape == (FRAME_H, FRAME_W, 3) and frame.image.dtype == np.uint8
        assert frame.kind in real_photos.KINDS
        for x1, y1, x2, y2 in frame.faces + frame.ignore:
            assert 0 <= x1 < x2 <= FRAME_W and 0 <= y1 < y2 <= FRAME_H, frame.name
        for x1, _, x2, _ in frame.faces:
            assert MIN_FACE_PX <= x2 - x1 <= MAX_FACE_PX, frame.name
        assert bool(frame.faces) == (frame.kind != "no face"), frame.name


def test_our_dependencies_alone_give_every_kind_of_frame(frames: list[Frame]) -> None:
    kinds = {f.kind for f in frames}
    assert kinds == set(real_photos.KINDS)
    assert sum(not f.faces for f in frames) >= 4
    assert {"grace_hopper", "coffee", "chelsea"} <= {f.photo for f in frames}
    widths = [b[2] - b[0] for f in frames for b in f.faces]
    assert min(widths) < 80 and max(widths) >= 250  # far away and selfie-sized both


def test_no_benchmark_photo_is_a_training_photo() -> None:
    from training.data import realfaces

    # grace_hopper is in realfaces' *test* split only; astronaut and camera train, and are not used here.
    assert not real_photos.BENCHMARK_ONLY & set(realfaces.POOLS["trainval"]["photos"])
    assert set(realfaces.POOLS["test"]["photos"]) <= real_photos.BENCHMARK_ONLY


def test_the_truth_scores_one_and_wrong_answers_score_less(frames: list[Frame]) -> None:
    perfect = real_photos.score(_detector(frames), frames)
    assert perfect["ap50"] == 1.0 and perfect["recall"] == 1.0 and perfect["false_alarms"] == 0
    assert perfect["faces"] == sum(len(f.faces) for f in frames)
    assert all(ap == 1.0 for ap, count in perfect["ap50_bands"].values() if count)
    assert all(done == total for done, total in perfect["found_by_kind"].values())

    def shifted(box):  # half a face to the side: IoU 1/3
        w = box[2] - box[0]
        return [(box[0] + w / 2, box[1], box[2] + w / 2, box[3])]
    moved = real_photos.score(_detector(frames, shifted), frames)
    assert moved["ap50"] == 0.0 and moved["recall"] == 0.0

    by_image = {id(f.image): f for f in frames}

    def with_false_boxes(image):  # every true box at 0.5, and a confident false box in every frame
        return [(0.99, (5, 5, 60, 70))] + [(0.5, box) for box in by_image[id(image)].faces]
    noisy = real_photos.score(with_false_boxes, frames)
    assert 0 < noisy["ap50"] < 1.0
    assert noisy["false_alarms"] == noisy["no_face_frames"] == noisy["false_alarm_frames"] > 0
    assert noisy["recall"] == 0.0  # a box counts above the threshold, and 0.5 is not above 0.5
    assert real_photos.score(with_false_boxes, frames, threshold=0.4)["recall"] == 1.0
    assert real_photos.score(with_false_boxes, frames, threshold=0.6)["recall"] == 0.0


def test_bands_count_only_their_own_faces_and_false_boxes() -> None:
    image = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    small, big = (10.0, 10.0, 60.0, 70.0), (200.0, 100.0, 450.0, 400.0)
    frame = Frame(image, (small, big), "test", "whole", "t")
    # The big face is found; the small one is missed; a big false box scores above the big face.
    found = [[(0.9, (300.0, 0.0, 600.0, 300.0)), (0.8, big)]]
    small_ap, small_faces = real_photos.band_ap(found, [frame], (0.0, 80.0))
    big_ap, big_faces = real_photos.band_ap(found, [frame], (160.0, 320.5))
    assert (small_faces, big_faces) == (1, 1)
    assert small_ap == 0.0  # its face missed; the big boxes are not this band's false alarms
    assert big_ap == 0.5    # one false box of its size above the face: precision 1/2 at recall 1


def test_a_box_on_an_ignored_face_is_neither_found_nor_false() -> None:
    image = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    painted = (500.0, 20.0, 530.0, 55.0)
    frame = Frame(image, (), "test", "no face", "t", ignore=(painted,))
    result = real_photos.score(lambda _: [(0.95, painted)], [frame])
    assert result["false_alarms"] == 0
    result = real_photos.score(lambda _: [(0.95, (100.0, 100.0, 150.0, 160.0))], [frame])
    assert result["false_alarms"] == 1


def test_a_photo_is_read_from_a_source_archive_and_checked(tmp_path: Path) -> None:
    data = real_photos._dependency_file(real_photos.PHOTOS[0]).read_bytes()
    with tarfile.open(tmp_path / "some_package-1.0.tar.gz", "w:gz") as archive:
        member = tarfile.TarInfo("some_package-1.0/docs/photo.jpg")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    good = Photo("p", "some-package", "docs/photo.jpg", hashlib.sha256(data).hexdigest(), ())
    image = real_photos.load_photo(good, [tmp_path])
    assert image is not None and image.shape == (600, 512, 3)
    changed = Photo("p", "some-package", "docs/photo.jpg", "0" * 64, ())
    assert real_photos.load_photo(changed, [tmp_path]) is None
    assert real_photos.load_photo(good, []) is None


def test_frames_written_as_labelme_load_back_with_their_faces(frames: list[Frame], tmp_path: Path) -> None:
    from training.data.dataset import load_dataset

    some = frames[:3] + [f for f in frames if not f.faces][:1]
    real_photos.write_labelme_folder(some, tmp_path)
    test = load_dataset(tmp_path, strict=True).require_split("test")
    assert len(test) == len(some)
    names = {Path(s.image_path).stem: s for s in test}
    for frame in some:
        label = json.loads((tmp_path / "test" / "labels" / f"{frame.name}.json").read_text())
        faces = [s for s in label["shapes"] if s["label"] == "face"]
        assert len(faces) == len(frame.faces) and frame.name in names


def test_blazeface_anchors_match_the_models_outputs() -> None:
    from bench_real_photos import blazeface_anchors

    short, full = blazeface_anchors(128), blazeface_anchors(192)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    assert np.allclose(short[0], [0.5 / 16, 0.5 / 16]) and np.allclose(short[512], [0.5 / 8, 0.5 / 8])
    assert np.allclose(full[49], [1.5 / 48, 1.5 / 48])


@pytest.mark.skipif(not real_photos.photo_dirs_from_env(), reason="FACETRACKER_PHOTOS names no photo folder")
def test_the_packaged_photos_give_the_full_benchmark() -> None:
    every = real_photos.real_photo_frames()
    assert not real_photos.missing_photos(), real_photos.DOWNLOAD_HINT
    assert len(every) >= 60 and sum(len(f.faces) for f in every) >= 100

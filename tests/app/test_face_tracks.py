"""Face tracks (desktop.face_tracks): stable ids across frames, steady boxes, no ghosts, no reused ids."""

from __future__ import annotations

import time

import numpy as np
import pytest

from desktop.face_tracks import BoxSmoother, FaceTracks, iou_matrix
from training.core.detection import Detection


def face(x: float, y: float, side: float = 60.0, score: float = 0.9) -> Detection:
    return Detection(score, (x, y, x + side, y + side))


def ids_by_position(tracks) -> dict[int, tuple[float, float]]:
    return {track.id: track.raw_box[:2] for track in tracks}


def test_box_smoother_averages_corners_and_resets_when_the_face_goes() -> None:
    smoother = BoxSmoother(alpha=0.5)
    assert smoother.update((0, 0, 10, 10)) == (0, 0, 10, 10)  # the first box is taken as it is
    assert smoother.update((10, 10, 20, 20)) == (5, 5, 15, 15)
    assert smoother.update((10, 10, 20, 20)) == (7.5, 7.5, 17.5, 17.5)
    assert smoother.update(None) is None
    assert smoother.update((100, 100, 120, 120)) == (100, 100, 120, 120)  # no slide from the old face
    assert BoxSmoother(alpha=1.0).update((1, 2, 3, 4)) == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="alpha"):
        BoxSmoother(alpha=0.0)


def test_two_faces_crossing_paths_keep_their_ids() -> None:
    """A walks right, B walks left a little lower; their boxes overlap as they pass. The detector lists
    them left to right (and scores them the other way round after the crossing): order means nothing."""
    tracks = FaceTracks()
    first: dict[str, int] = {}
    for i in range(40):
        a = face(40 + 12 * i, 100, score=0.9 if i < 20 else 0.7)
        b = face(520 - 12 * i, 120, score=0.7 if i < 20 else 0.9)
        shown = tracks.update(sorted([a, b], key=lambda d: d.box[0]))
        assert len(shown) == 2
        by_box = {track.raw_box: track.id for track in shown}
        if i == 0:
            first = {"a": by_box[a.box], "b": by_box[b.box]}
        assert by_box[a.box] == first["a"], f"frame {i}: A's box went to another track"
        assert by_box[b.box] == first["b"], f"frame {i}: B's box went to another track"
    assert first["a"] != first["b"]


def test_faces_passing_on_the_same_line_and_a_fast_face_keep_their_ids() -> None:
    """Matching uses where each track is heading: two faces that cover each other as they pass on one
    line come out on the right sides, and a face speeding up to more than its width per frame stays itself."""
    tracks = FaceTracks()
    for i in range(31):
        a, b = face(100 + 10 * i, 100), face(400 - 10 * i, 104)
        shown = {track.raw_box: track.id for track in tracks.update([b, a])}
        if i == 0:
            first = (shown[a.box], shown[b.box])
        assert (shown[a.box], shown[b.box]) == first, f"frame {i}: the faces swapped ids"
    tracks = FaceTracks()
    ids = {track.id for i in range(10) for track in tracks.update([face(20 + 4 * i * i, 200)])}  # up to 76 px/frame
    assert len(ids) == 1, "a fast face got a new id"


def test_a_face_missed_for_a_frame_keeps_its_id_and_is_still_drawn_then_goes() -> None:
    tracks = FaceTracks(keep_missed=3, show_missed=1)
    (seen,) = tracks.update([face(100, 100)])
    (missed,) = tracks.update([])
    assert missed.id == seen.id and missed.missed == 1 and missed.visible  # bridges the detector's flicker
    assert missed.box == seen.box and missed.age == 2
    (back,) = tracks.update([face(104, 102)])
    assert back.id == seen.id and back.missed == 0 and back.age == 3

    tracks.update([])
    (hidden,) = tracks.update([])
    assert hidden.missed == 2 and not hidden.visible  # no ghost box where a face has left
    assert len(tracks.update([])) == 1  # missed 3 frames: kept
    assert tracks.update([]) == []  # missed 4 > keep_missed: dropped
    (new,) = tracks.update([face(100, 100)])
    assert new.id != seen.id


def test_jitter_is_smoothed() -> None:
    rng = np.random.default_rng(0)
    tracks = FaceTracks(alpha=0.3)
    raw, smoothed = [], []
    for _ in range(200):
        x, y = 200 + rng.normal(0, 3), 150 + rng.normal(0, 3)
        (track,) = tracks.update([face(x, y)])
        raw.append(track.raw_box)
        smoothed.append(track.box)
    raw_var, smooth_var = np.var(raw, axis=0), np.var(smoothed, axis=0)
    assert (smooth_var < 0.5 * raw_var).all(), (smooth_var, raw_var)
    tracks.alpha = 1.0  # the "Smooth boxes" switch off: boxes as detected
    (track,) = tracks.update([face(205, 152)])
    assert track.box == track.raw_box == (205, 152, 265, 212)


def test_a_new_face_gets_a_new_id_and_ids_are_never_reused() -> None:
    tracks = FaceTracks(keep_missed=0, show_missed=0)
    (a,) = tracks.update([face(50, 50)])
    one, two = tracks.update([face(52, 50), face(400, 300)])
    assert one.id == a.id and two.id not in (a.id,)
    seen = {a.id, two.id}
    assert tracks.update([]) == []  # keep_missed=0: both gone at once
    tracks.reset()
    for _ in range(5):  # the same place again, after a drop and after a reset: always a fresh id
        (again,) = tracks.update([face(50, 50)])
        assert again.id not in seen
        seen.add(again.id)
        tracks.reset()
    far = tracks.update([face(50, 50)])
    jumped = tracks.update([face(300, 300)])  # no overlap: not the same face
    assert far[0].id not in {t.id for t in jumped if t.missed == 0}


def test_iou_matrix_and_arguments() -> None:
    overlap = iou_matrix(np.array([[0, 0, 10, 10], [0, 0, 0, 0]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10]]))
    assert overlap == pytest.approx(np.array([[1 / 3, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="alpha"):
        FaceTracks(alpha=0.0)
    with pytest.raises(ValueError, match="show_missed"):
        FaceTracks(keep_missed=1, show_missed=2)
    with pytest.raises(ValueError, match="alpha"):
        BoxSmoother(alpha=1.5)


def test_tracking_costs_little_per_frame() -> None:
    """The live view tracks every frame: with five faces it must cost well under a millisecond."""
    tracks = FaceTracks()
    rng = np.random.default_rng(1)
    tracks.update([face(100 * k, 100) for k in range(5)])
    timings = []
    for i in range(300):
        frame = [face(100 * k + i % 7 + rng.normal(0, 1), 100 + rng.normal(0, 1)) for k in range(5)]
        started = time.perf_counter()
        tracks.update(frame)
        timings.append(time.perf_counter() - started)
    assert np.median(timings) < 1e-3, f"median {np.median(timings) * 1e3:.3f} ms per frame"

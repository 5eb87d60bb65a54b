"""Every face's box kept steady across frames: detections matched to tracks by IoU, each track smoothed.

A multi-face detector answers each frame on its own: the boxes come in any order, jitter by a few
pixels, and a face can be missed for a frame. :class:`FaceTracks` gives each face a stable id by
matching this frame's boxes to the tracks of the frames before (the assignment that maximises the
total overlap, on the box each track is predicted to have now), smooths each track's box with
:class:`BoxSmoother`, keeps a track through a few missed frames (so the face keeps its id when it
comes back) and starts new tracks for boxes that match none. Qt-free and cheap (tens of
microseconds for a few faces); the live view's inference worker runs it on every frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.core import Box, Detection, iou_matrix

MIN_IOU = 0.3  # a box overlapping a track's predicted box less than this starts a new track
KEEP_MISSED = 8  # frames a track survives without a matching box (its id waits for the face to come back)
SHOW_MISSED = 1  # of those, frames its box is still drawn: bridges a detector's one-frame miss, no ghost after


class BoxSmoother:
    """Exponential moving average of box corners across frames, so a still face gets a still box.

    ``alpha`` is the weight of the newest box (1.0 = no smoothing). A frame without a face resets
    it, so a face that comes back does not slide in from where the last one was.
    """

    def __init__(self, alpha: float = 0.5) -> None:
        self._box: np.ndarray | None = None
        self.alpha = alpha

    @property
    def alpha(self) -> float:
        return self._alpha

    @alpha.setter
    def alpha(self, alpha: float) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self._alpha = float(alpha)

    def update(self, box: Sequence[float] | None) -> Box | None:
        """Feed this frame's box (None: no face) and return the smoothed box (None: no face)."""
        if box is None:
            self._box = None
            return None
        new = np.asarray(box, dtype=np.float64)
        self._box = new if self._box is None else self._alpha * new + (1.0 - self._alpha) * self._box
        return tuple(float(v) for v in self._box)

    def reset(self) -> None:
        self._box = None


@dataclass(frozen=True)
class Track:
    """One face followed across frames, as it stands after the latest frame.

    ``box`` is the smoothed box (frame pixels), ``raw_box`` the detector's own box of the last frame
    it was seen, ``score`` that frame's score, ``age`` the frames since the track started (1 on its
    first), ``missed`` the frames since it was last seen (0: seen in this frame), ``visible`` whether
    the live view draws it (seen now, or missed for at most ``show_missed`` frames).
    """

    id: int
    box: Box
    raw_box: Box
    score: float
    age: int
    missed: int
    visible: bool

    @property
    def detection(self) -> Detection:
        """The face to draw: the smoothed box with the latest score."""
        return Detection(score=self.score, box=self.box)


class _State:
    """A track's mutable state inside :class:`FaceTracks`."""

    __slots__ = ("id", "smoother", "box", "raw", "velocity", "score", "age", "missed")

    def __init__(self, track_id: int, detection: Detection, alpha: float) -> None:
        self.id = track_id
        self.smoother = BoxSmoother(alpha)
        self.raw = np.asarray(detection.box, dtype=np.float64)
        self.box = self.smoother.update(detection.box)
        self.velocity = np.zeros(4)  # pixels per frame, per corner (smoothed): where the box is heading
        self.score = float(detection.score)
        self.age = 1
        self.missed = 0

    def predicted(self) -> np.ndarray:
        """Where the face's box should be in the coming frame: its last box moved on by its velocity."""
        return self.raw + self.velocity * (self.missed + 1)

    def seen(self, detection: Detection) -> None:
        raw = np.asarray(detection.box, dtype=np.float64)
        step = (raw - self.raw) / (self.missed + 1)
        self.velocity = 0.5 * step + 0.5 * self.velocity
        self.raw = raw
        self.box = self.smoother.update(detection.box)
        self.score = float(detection.score)
        self.missed = 0
        self.age += 1


class FaceTracks:
    """Tracks of the faces in a stream of frames; feed each frame's detections to :meth:`update`.

    Args:
        alpha: the smoothing weight of the newest box (1.0: boxes as detected). Settable later.
        min_iou: the least overlap between a box and a track's predicted box for them to match.
        keep_missed: frames a track is kept without a matching box before it is dropped.
        show_missed: frames a missed track is still marked ``visible`` (at most ``keep_missed``).

    Ids count up from 1 and are never reused, not even after :meth:`reset`.
    """

    def __init__(self, alpha: float = 0.5, *, min_iou: float = MIN_IOU, keep_missed: int = KEEP_MISSED,
                 show_missed: int = SHOW_MISSED) -> None:
        if not 0.0 <= min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], got {min_iou}")
        if keep_missed < 0 or not 0 <= show_missed <= keep_missed:
            raise ValueError(f"need 0 <= show_missed <= keep_missed, got {show_missed} and {keep_missed}")
        BoxSmoother(alpha)  # checks alpha
        self._alpha = float(alpha)
        self.min_iou = float(min_iou)
        self.keep_missed = int(keep_missed)
        self.show_missed = int(show_missed)
        self._tracks: list[_State] = []
        self._ids = itertools.count(1)

    @property
    def alpha(self) -> float:
        return self._alpha

    @alpha.setter
    def alpha(self, alpha: float) -> None:
        """Change the smoothing of every track, the live ones included (the "Smooth boxes" switch)."""
        BoxSmoother(alpha)
        self._alpha = float(alpha)
        for track in self._tracks:
            track.smoother.alpha = alpha

    def reset(self) -> None:
        """Forget every track (a new source or detector: its faces are not the old ones)."""
        self._tracks = []

    def update(self, detections: Sequence[Detection]) -> list[Track]:
        """Match this frame's faces to the tracks, and return every track kept, oldest first.

        ``detections`` are the faces to track (the caller has applied its score threshold).
        A detection that matches no track starts one; a track unmatched for more than
        ``keep_missed`` frames is dropped.
        """
        tracks = self._tracks
        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        if tracks and detections:
            predicted = np.stack([track.predicted() for track in tracks])
            boxes = np.asarray([detection.box for detection in detections], dtype=np.float64).reshape(-1, 4)
            overlap = iou_matrix(predicted, boxes)
            for t, d in _best_pairs(overlap, self.min_iou):
                tracks[t].seen(detections[d])
                matched_tracks.add(t)
                matched_detections.add(d)
        kept: list[_State] = []
        for t, track in enumerate(tracks):
            if t not in matched_tracks:
                track.missed += 1
                track.age += 1
                if track.missed > self.keep_missed:
                    continue
            kept.append(track)
        for d, detection in enumerate(detections):
            if d not in matched_detections:
                kept.append(_State(next(self._ids), detection, self._alpha))
        self._tracks = kept
        return [Track(track.id, track.box, tuple(float(v) for v in track.raw), track.score, track.age,
                      track.missed, track.missed <= self.show_missed) for track in kept]


def preload_matcher() -> None:
    """Import the assignment solver now (about 0.1 s): called while a detector loads in the background,
    so that the first frame with faces is not late."""
    import scipy.optimize  # noqa: F401


def _best_pairs(overlap: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(track, detection) pairs of the assignment with the largest total IoU, each pair at least ``min_iou``.

    scipy's Hungarian solver (scipy comes with scikit-image, a dependency of the package): with faces
    that cross, the greedy best-pair-first choice can take one face's box for the other's track.
    """
    from scipy.optimize import linear_sum_assignment  # imported on the first frame with a face to match

    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if overlap[r, c] >= min_iou and overlap[r, c] > 0]

"""What a detector answers, and the error for an unusable model file: plain Python, no TensorFlow.

They live apart from :mod:`training.inference` so the desktop app (its classic face finder, its
drawing code, its error messages) can use them before, or without, loading TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ModelFileError(ValueError):
    """A model file that cannot be used as a FaceTracker detector; ``str()`` names the file and why."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


@dataclass(frozen=True)
class Detection:
    """One frame's answer: the face score and the box in the frame's pixels (present whatever the score)."""

    score: float
    box: tuple[float, float, float, float]

    def is_face(self, threshold: float = 0.5) -> bool:
        """The tutorial's rule: a face when the score is above the threshold."""
        return self.score > threshold

"""What a detector answers, and the error for an unusable model file: plain Python, no TensorFlow.

They live apart from :mod:`training.inference` so the desktop app (its classic face finder, its
drawing code, its error messages) can use them before, or without, loading TensorFlow.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: The file inside a ``.keras`` archive with what FaceTracker knows of the model beyond Keras's own
#: files: its score threshold (chosen on validation), the epoch and figures it was chosen at.
MODEL_METADATA = "facetracker.json"
DEFAULT_SCORE_THRESHOLD = 0.5  # the tutorial's rule, for models that carry no threshold


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


def write_model_metadata(path: str | Path, metadata: dict) -> None:
    """Store ``metadata`` (JSON) inside a saved ``.keras`` archive, replacing any earlier copy.

    Keras ignores the extra file; any program can read it back with :func:`read_model_metadata`
    (a zip reader and a JSON parser), no custom objects or TensorFlow needed.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        present = MODEL_METADATA in archive.namelist()
    if present:  # zip archives cannot drop a member in place: copy the others over
        tmp = path.with_name(f".{path.stem}.meta{path.suffix}")
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                if item.filename != MODEL_METADATA:
                    target.writestr(item, source.read(item.filename))
        tmp.replace(path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MODEL_METADATA, json.dumps(metadata, indent=2, default=str))


def read_model_metadata(path: str | Path) -> dict:
    """What :func:`write_model_metadata` stored in a ``.keras`` file; ``{}`` when it holds none or is unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            if MODEL_METADATA not in archive.namelist():
                return {}
            value = json.loads(archive.read(MODEL_METADATA).decode("utf-8"))
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError, KeyError):
        return {}
    return value if isinstance(value, dict) else {}


def score_threshold_of(metadata: dict) -> float:
    """The model's stored score threshold, or the tutorial's 0.5 when none (or nonsense) is stored."""
    value = metadata.get("score_threshold")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0:
        return float(value)
    return DEFAULT_SCORE_THRESHOLD

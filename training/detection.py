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

#: The model files FaceTracker runs, by suffix: Keras' own, and the two exported formats
#: (``facetracker-train export``) that light runtimes read.
MODEL_SUFFIXES = (".keras", ".onnx", ".tflite")
#: Exported files carry their metadata in a JSON file beside them: ``best.onnx`` -> ``best.onnx.json``.
SIDECAR_SUFFIX = ".json"
#: What to install for each exported format's runtime (the package's optional extras).
RUNTIME_EXTRAS = {".onnx": "onnx", ".tflite": "litert"}


class ModelFileError(ValueError):
    """A model file that cannot be used as a FaceTracker detector; ``str()`` names the file and why."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class MissingRuntimeError(ModelFileError):
    """The model file is fine, but the runtime that runs its format is not installed here.

    A :class:`ModelFileError` so that every place that reports an unusable model (the CLI, the Detect
    tab) shows it as one line naming the file; the message names the extra to install.
    """


def install_hint(suffix: str) -> str:
    """The pip command that installs the runtime for a model file suffix (``.onnx`` or ``.tflite``)."""
    return f'pip install "facetracker[{RUNTIME_EXTRAS[suffix.lower()]}]"'


def sniff_model_format(path: str | Path) -> str | None:
    """What a file holds by its first bytes: ``"keras"`` (a zip archive), ``"tflite"`` (the ``TFL3``
    FlatBuffer identifier), ``"hdf5"``; None for anything else (ONNX, a protobuf, has no magic number).

    Lets the loaders say "this is a TFLite model named .onnx" instead of a parser's error.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "keras"
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    return None


def metadata_sidecar(path: str | Path) -> Path:
    """Where an exported model's metadata lives: the file's full name plus ``.json`` (best.onnx.json)."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


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
    """What :func:`write_model_metadata` stored in a ``.keras`` file; ``{}`` when it holds none or is unreadable.

    For an exported ``.onnx`` or ``.tflite`` file, the JSON file beside it (:func:`metadata_sidecar`),
    which ``facetracker-train export`` writes with the same contents.
    """
    if Path(path).suffix.lower() in RUNTIME_EXTRAS:
        try:
            value = json.loads(metadata_sidecar(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        return value if isinstance(value, dict) else {}
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

"""What a detector answers, and the error for an unusable model file: plain Python, no TensorFlow.

They live apart from :mod:`training.inference.detector` so the desktop app (its classic face finder, its
drawing code, its error messages) can use them before, or without, loading TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from training.core.inputs import check_regular_file, parse_json, read_json, shown

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: The file inside a ``.keras`` archive with what FaceTracker knows of the model beyond Keras's own
#: files: its score threshold (chosen on validation), the epoch and figures it was chosen at.
MODEL_METADATA = "facetracker.json"
DEFAULT_SCORE_THRESHOLD = 0.5  # the tutorial's rule, for models that carry no threshold

#: Exported files carry their metadata in a JSON file beside them: ``best.onnx`` -> ``best.onnx.json``.
SIDECAR_SUFFIX = ".json"
#: What to install for each exported format's runtime (the package's optional extras).
RUNTIME_EXTRAS = {".onnx": "onnx", ".tflite": "litert"}
#: The sidecar's record of the model file it describes (name, size, SHA-256), written by ``export``:
#: a sidecar beside another model (an export killed between its two renames, files mixed up) is refused.
MODEL_FINGERPRINT = "model_file"
MAX_METADATA_BYTES = 2**20  # a few hundred bytes in practice
MAX_METADATA_DEPTH = 16


class ModelFileError(ValueError):
    """A model file that cannot be used as a FaceTracker detector; ``str()`` names the file and why."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{shown(self.path)}: {message}")


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
        check_regular_file(path)  # a named pipe would block the open
        with open(path, "rb") as handle:
            head = handle.read(8)
    except (OSError, ValueError):
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


#: The tag on the boxes of the user's own model (other detectors name themselves: "face (classic)"...).
MODEL_LABEL = "face"


@runtime_checkable
class FaceDetector(Protocol):
    """What finds faces in a frame, whatever runs it: a trained or exported model
    (:class:`training.inference.detector.Detector`, the pretrained BlazeFace among them), the classic finder
    (:class:`training.inference.classic.ClassicFaceFinder`), the Label tab's suggestion engines
    (:class:`training.inference.autolabel.PretrainedFaceFinder` (MTCNN), ``BlazeFaceFinder``).

    The live view, the Label tab, ``autolabel``, evaluation and export take any of them through these
    names only: nothing asks a detector at run time what it can do.
    """

    #: The score above which a detection is a face (a model's: chosen on validation, stored with it).
    threshold: float
    #: The tag on its boxes: :data:`MODEL_LABEL` for the user's model, "face (pretrained)", "face (classic)"...
    label: str
    #: Who it is, in words, for people and the suggested-by marks: "your model", "MTCNN", "the classic finder"...
    name: str
    #: What it runs on, in words: "CPU (...)", "GPU: ...", "CPU (LiteRT)", "CPU (classic face finder)"...
    device: str
    #: Whether it answers for every face in a frame; False: a single-face model, whose :meth:`detect`
    #: gives its one score and box whatever the score (the live view shows it under the threshold too).
    multi_face: bool

    def detect(self, frame_bgr: np.ndarray) -> Detection | None:
        """Its one best face in a BGR frame (box in the frame's pixels), or None where it finds none."""
        ...

    def detect_all(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Every face in a BGR frame scoring above ``threshold``, best first (a single-face model: at most
        one). ``threshold`` None: its own rule (a model's :attr:`threshold`; MTCNN: every face it finds)."""
        ...


def write_model_metadata(path: str | Path, metadata: dict) -> None:
    """Store ``metadata`` (JSON) inside a saved ``.keras`` archive, replacing any earlier copy.

    Keras ignores the extra file; any program can read it back with :func:`read_model_metadata`
    (a zip reader and a JSON parser), no custom objects or TensorFlow needed.
    """
    from training.core.files import atomic_path

    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        present = MODEL_METADATA in archive.namelist()
    if present:  # zip archives cannot drop a member in place: copy the others over (atomically)
        with atomic_path(path, suffix=path.suffix) as tmp, zipfile.ZipFile(path) as source, \
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                if item.filename != MODEL_METADATA:
                    target.writestr(item, source.read(item.filename))
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MODEL_METADATA, json.dumps(metadata, indent=2, default=str))


def file_fingerprint(path: str | Path) -> dict:
    """A model file's name, size and SHA-256: what its sidecar records of it (see MODEL_FINGERPRINT)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def read_model_metadata(path: str | Path) -> dict:
    """What :func:`write_model_metadata` stored in a ``.keras`` file; ``{}`` when it holds none.

    For an exported ``.onnx`` or ``.tflite`` file, the JSON file beside it (:func:`metadata_sidecar`),
    which ``facetracker-train export`` writes with the same contents and a fingerprint of the model
    file; ``{}`` when there is none. A sidecar that is not a regular file, not a JSON object (or JSON
    nested too deeply, a number too long...), or whose fingerprint names another model file, is a
    :class:`ModelFileError` naming it; so is metadata inside a ``.keras`` archive that cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() in RUNTIME_EXTRAS:
        sidecar = metadata_sidecar(path)
        if not sidecar.exists() and not sidecar.is_symlink():
            return {}
        value = read_json(sidecar, max_bytes=MAX_METADATA_BYTES, max_depth=MAX_METADATA_DEPTH, error=ModelFileError,
                          what="model metadata file")
        if not isinstance(value, dict):
            raise ModelFileError(sidecar, "not a model's metadata (a JSON object): delete it, or export the model again")
        _check_fingerprint(path, sidecar, value.pop(MODEL_FINGERPRINT, None))
        return value
    try:
        with zipfile.ZipFile(path) as archive:
            if MODEL_METADATA not in archive.namelist():
                return {}
            info = archive.getinfo(MODEL_METADATA)
            if info.file_size > MAX_METADATA_BYTES:
                raise ModelFileError(path, f"its {MODEL_METADATA} is too large ({info.file_size} bytes) to be "
                                           "FaceTracker's metadata: a damaged model file?")
            data = archive.read(MODEL_METADATA)
    except (OSError, zipfile.BadZipFile, KeyError, EOFError, RuntimeError):
        return {}  # not a readable archive at all: the model loader says so, naming the file
    try:
        value = parse_json(data.decode("utf-8"), max_depth=MAX_METADATA_DEPTH)
    except (UnicodeDecodeError, ValueError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise ModelFileError(path, f"its {MODEL_METADATA} cannot be read ({reason}): a damaged model file?") from None
    return value if isinstance(value, dict) else {}


def _check_fingerprint(model: Path, sidecar: Path, recorded: object) -> None:
    """ModelFileError naming ``sidecar`` when it records another model file than ``model`` (none recorded:
    a sidecar written by hand, taken as it is)."""
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise ModelFileError(sidecar, f"its \"{MODEL_FINGERPRINT}\" is not a record of a model file: delete it, "
                                      "or export the model again")
    try:
        actual = file_fingerprint(model)
    except OSError:
        return  # the model itself cannot be read: its loader says so
    if recorded.get("bytes") != actual["bytes"] or recorded.get("sha256") != actual["sha256"]:
        raise ModelFileError(sidecar, f"describes another model file than {shown(model.name)} (written for one of "
                                      f"{_value(recorded.get('bytes'))} bytes, SHA-256 {_value(recorded.get('sha256'))}"
                                      f"; this one: {actual['bytes']} bytes, {actual['sha256'][:16]}...): an export "
                                      "was interrupted, or the files were mixed up; export the model again, or delete "
                                      "the .json to use the model without its settings")


def _value(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return shown(text if len(text) <= 19 else text[:16] + "...")


def score_threshold_of(metadata: dict) -> float:
    """The model's stored score threshold, or the tutorial's 0.5 when none (or nonsense) is stored."""
    value = metadata.get("score_threshold")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0:
        return float(value)
    return DEFAULT_SCORE_THRESHOLD

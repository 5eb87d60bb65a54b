"""Export a trained ``.keras`` detector to ONNX or LiteRT (TFLite), for light runtimes and other tools.

``facetracker-train export best.keras --format onnx|tflite`` goes through Keras 3's own
``model.export(path, format="onnx" | "litert")`` (tf2onnx and TensorFlow's TFLite converter
underneath), with two adjustments, both checked by running the exported file:

* Keras' TensorFlow ``argmax`` (the grid head picks its best cell with it) tells -0.0 from +0.0 through
  ``signbit``, which it computes with a ``Bitcast`` and a ``BitwiseAnd``: neither ONNX nor LiteRT's
  built-in ops have them. While the model is traced for export, ``signbit`` is computed from
  comparisons instead (``x < 0`` or ``1 / x < 0``): the same answer for every float, -0.0 included.
* The TFLite converter may use built-in ops only (Keras' default also allows "select TensorFlow ops",
  which LiteRT's interpreter cannot run), and a model trained under mixed precision is exported in
  float32 (the same weights; ONNX export requires it, and the answers then match the float32 model).

Every export is then loaded with :meth:`training.inference.detector.Detector.from_file` and run on real
pictures beside the ``.keras`` model; unless score and box agree within :data:`TOLERANCE` the file is
not written. A multi-face model's export keeps its four outputs (best score, best box, every cell's
score, every cell's box), and every cell's score and box are checked too. The model's metadata (its
score threshold chosen on validation, the epoch, ...) travels in a JSON file beside the export
(``best.onnx.json``), which the loaders read; an ONNX file also carries it inside
(``metadata_props``), so it is not lost when the file travels alone.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.core.detection import (
    MODEL_FINGERPRINT,
    file_fingerprint,
    install_hint,
    metadata_sidecar,
    read_model_metadata,
)
from training.core.files import atomic_path, atomic_write_text, remove_stale_temporaries
from training.core.inputs import read_json_object

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from training.inference.detector import Detector

#: Export formats and the suffix each file must have (Detector.from_file picks the runtime by it).
FORMATS = {"onnx": ".onnx", "tflite": ".tflite"}
#: Largest difference allowed between the export and the ``.keras`` model, on the score and on each
#: box coordinate (in [0, 1] of the frame): float32 arithmetic in another order, nothing more.
TOLERANCE = 1e-4
#: The ONNX metadata_props key that holds the model's metadata as JSON.
ONNX_METADATA_KEY = "facetracker"


class ExportError(RuntimeError):
    """An export that could not be made or did not check out; ``str()`` names the file and why."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote, and how closely the export reproduces the ``.keras`` model."""

    path: Path
    sidecar: Path
    format: str
    runtime: str  # the runtime that ran the check: onnxruntime, litert or tensorflow-lite
    size_bytes: int
    seconds: float
    frames_checked: int
    max_score_difference: float
    max_box_difference: float
    metadata: dict = field(default_factory=dict)

    def summary(self) -> str:
        """Two lines for people: what was written and what was checked."""
        threshold = self.metadata.get("score_threshold")
        kept = f"score threshold {threshold:.3f}" if isinstance(threshold, (int, float)) else "no score threshold stored"
        return (f"Wrote {self.path} ({self.size_bytes / 1e6:.1f} MB, {self.format}) in {self.seconds:.1f} s, "
                f"and its metadata ({kept}) in {self.sidecar}.\n"
                f"Checked in {self.runtime} on {self.frames_checked} pictures: score within "
                f"{self.max_score_difference:.1e} and box within {self.max_box_difference:.1e} of the .keras model.")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings), for ``--progress json`` and the app."""
        return {"path": str(self.path), "sidecar": str(self.sidecar), "format": self.format,
                "runtime": self.runtime, "size_bytes": self.size_bytes, "seconds": self.seconds,
                "frames_checked": self.frames_checked, "max_score_difference": self.max_score_difference,
                "max_box_difference": self.max_box_difference, "metadata": self.metadata}


def format_of(path: str | Path) -> str | None:
    """The export format a file name asks for (by its suffix), or None."""
    suffix = Path(path).suffix.lower()
    return next((name for name, known in FORMATS.items() if known == suffix), None)


def default_export_path(model_path: str | Path, fmt: str) -> Path:
    """Beside the model, same name, the format's suffix: ``runs/x/best.keras`` -> ``runs/x/best.onnx``."""
    return Path(model_path).with_suffix(FORMATS[fmt])


def verification_frames() -> list[np.ndarray]:
    """Real pictures (BGR, as frames arrive) that every export is checked on: faces and no faces.

    scikit-image ships them, so nothing is downloaded: the astronaut (a frontal face) alone and
    placed in a 640x480 webcam-sized frame, the cameraman (grey, a profile), and the coffee cup and
    the cat (no human face).
    """
    import cv2
    import skimage.data

    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    webcam = np.full((480, 640, 3), 90, dtype=np.uint8)
    webcam[60:460, 180:580] = cv2.resize(astronaut, (400, 400), interpolation=cv2.INTER_AREA)
    return [
        astronaut,
        webcam,
        skimage.data.camera(),  # grey: the same preprocessing turns it into BGR
        cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR),
        cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR),
    ]


# ----------------------------------------------------------------------------- conversion


@contextlib.contextmanager
def portable_signbit() -> Iterator[None]:
    """Trace Keras' TensorFlow ``signbit`` from comparisons instead of a bit cast, meanwhile.

    Keras' TensorFlow ``argmax`` calls ``signbit`` (so that -0.0 ranks below +0.0, as in NumPy and
    JAX); its ``Bitcast``/``BitwiseAnd`` have no ONNX or LiteRT built-in counterpart. ``x < 0 or
    1 / x < 0`` is the sign bit of every float too (1 / -0.0 is -inf). Only graphs traced inside
    the block change; the functions Keras has already traced keep theirs. Does nothing where Keras
    no longer has the function (the export check would then catch any difference).
    """
    from keras.src.backend.tensorflow import numpy as tf_numpy

    original = getattr(tf_numpy, "signbit", None)
    if original is None:
        yield
        return
    import tensorflow as tf

    def signbit(x: Any) -> Any:
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            return original(x)
        x = tf.cast(x, tf.float32)
        return tf.logical_or(tf.less(x, 0.0), tf.less(tf.math.divide(1.0, x), 0.0))

    tf_numpy.signbit = signbit
    try:
        yield
    finally:
        tf_numpy.signbit = original


def _as_float32_config(value: Any) -> Any:
    """A model config with every mixed-precision dtype policy replaced by float32."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" and isinstance(value.get("config"), dict):
            name = str(value["config"].get("name", ""))
            if name.startswith("mixed_"):
                return {**value, "config": {**value["config"], "name": "float32"}}
        return {key: _as_float32_config(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_float32_config(item) for item in value]
    return value


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` itself when it computes in float32; else a float32 copy with the same weights.

    A model trained on a GPU with mixed precision computes most layers in float16. ONNX export
    needs float32 throughout, and float32 is also what CPU runtimes are fastest and exact in.
    """
    config = model.get_config()
    if "mixed_" not in json.dumps(config, default=str):
        return model
    copy = model.__class__.from_config(_as_float32_config(config))
    copy.set_weights(model.get_weights())
    return copy


def _require(path: Path, modules: tuple[str, ...], why: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ExportError(path, f"{why} needs the {name} package, which is not installed: "
                                    f"{install_hint('.onnx')}") from exc


def _convert(model: keras.Model, fmt: str, target: Path) -> None:
    """Write ``model`` as ``fmt`` to ``target`` with Keras 3's exporter (see the module docstring)."""
    import tensorflow as tf

    from training.core.device import filtered_native_stderr

    # The converters print warnings and native log lines meant for their developers (tf2onnx's NumPy
    # shims, MLIR's pass statistics); real failures arrive as exceptions.
    with warnings.catch_warnings(), portable_signbit(), filtered_native_stderr():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            model.export(str(target), format="onnx", verbose=False)
        else:
            model.export(str(target), format="litert", verbose=False,
                         target_spec={"supported_ops": {tf.lite.OpsSet.TFLITE_BUILTINS}})


def _embed_onnx_metadata(path: Path, metadata: dict) -> None:
    """Store ``metadata`` as JSON in the ONNX file's own ``metadata_props`` (ONNX Runtime reads it back)."""
    import onnx

    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != ONNX_METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=ONNX_METADATA_KEY, value=json.dumps(metadata, default=str))
    onnx.save(proto, str(path))


def compare_detectors(reference: Detector, candidate: Detector, frames: list[np.ndarray]) -> tuple[float, float]:
    """The largest score difference and box difference (in [0, 1] of each frame) between two detectors,
    over ``frames`` one by one and as one batch (both paths of the Detector API); for multi-face
    models also over every cell's score and box (what ``detect_all`` reads).

    Raises:
        ValueError: one detector answers for every face and the other does not.
    """
    if reference.multi_face != candidate.multi_face:
        raise ValueError("one model answers for every face (four outputs) and the other does not")
    score_diff = box_diff = 0.0
    for ours, theirs in ((reference.detect_batch(frames), candidate.detect_batch(frames)),
                         ([reference.detect(f) for f in frames], [candidate.detect(f) for f in frames])):
        for frame, a, b in zip(frames, ours, theirs, strict=True):
            height, width = frame.shape[:2]
            scale = np.array([width, height, width, height], dtype=np.float64)
            score_diff = max(score_diff, abs(a.score - b.score))
            box_diff = max(box_diff, float(np.max(np.abs(np.subtract(a.box, b.box)) / scale)))
    if reference.multi_face:
        from training.core.preprocess import preprocess_frames

        x = preprocess_frames(frames, reference.input_size)
        ours, theirs = reference.forward(x), candidate.forward(x)
        score_diff = max(score_diff, float(np.max(np.abs(ours[2] - theirs[2]))))
        box_diff = max(box_diff, float(np.max(np.abs(ours[3] - theirs[3]))))
    return score_diff, box_diff


def export_model(model_path: str | Path, fmt: str | None = None, out: str | Path | None = None) -> ExportResult:
    """Export a FaceTracker ``.keras`` model to ``fmt`` (``"onnx"`` or ``"tflite"``), check it, write it.

    ``out`` defaults to the model's name with the format's suffix; without ``fmt``, ``out``'s suffix
    says the format. The file (and its metadata JSON beside it) is written only once the export
    gives the ``.keras`` model's score and box within :data:`TOLERANCE` on real pictures; an older
    file of that name stays untouched until then.

    The two files are committed model first, sidecar second, and the sidecar records the model file's
    size and SHA-256 (:data:`training.core.detection.MODEL_FINGERPRINT`): an export killed between the two
    renames leaves the new model beside the old sidecar, which the loaders refuse (it names another
    model file; an old sidecar without a fingerprint is removed before the model is committed), or
    beside none; never a new sidecar beside the old model. What a killed export left (our
    temporary files beside ``out``) is removed by the next export of the same file.

    Raises:
        ValueError: no or an unknown format, or an ``out`` whose suffix does not match it.
        training.core.detection.ModelFileError: ``model_path`` is not a usable ``.keras`` detector.
        ExportError: the converter is not installed, the conversion failed, or the export does
            not reproduce the model.
    """
    from training.inference.detector import Detector, load_detector_model

    model_path = Path(model_path)
    if fmt is None:
        fmt = format_of(out) if out is not None else None
        if fmt is None:
            raise ValueError("say which format to export to: onnx or tflite")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    suffix = FORMATS[fmt]
    out = Path(out) if out is not None else default_export_path(model_path, fmt)
    if out.suffix.lower() != suffix:
        raise ValueError(f"{out}: a {fmt} export must be named *{suffix} (FaceTracker picks the runtime by the name)")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; give the file to write")
    if fmt == "onnx":
        _require(out, ("tf2onnx", "onnx"), "ONNX export")

    started = time.perf_counter()
    model = load_detector_model(model_path)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(out, f"export runs on Keras' TensorFlow backend, not {keras.backend.backend()!r} "
                               "(set KERAS_BACKEND=tensorflow)")
    model = float32_model(model)
    input_size = int(model.inputs[0].shape[1])
    metadata = {**read_model_metadata(model_path), "format": fmt, "exported_from": model_path.name,
                "input_size": input_size, "keras_version": keras.__version__}
    reference = Detector(model)
    frames = verification_frames()
    sidecar = metadata_sidecar(out)
    for name in (out.name, sidecar.name):  # a killed export's temporaries (ours by name, their process gone)
        remove_stale_temporaries(out.parent, name)

    with atomic_path(out, suffix=suffix) as tmp:
        try:
            _convert(model, fmt, tmp)
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise ExportError(out, f"could not be converted to {fmt} ({text[0] if text else type(exc).__name__})") from exc
        if fmt == "onnx":
            _embed_onnx_metadata(tmp, metadata)
        from training.core.detection import ModelFileError

        try:
            exported = Detector.from_file(tmp)
        except ModelFileError as exc:
            raise ExportError(out, f"the exported file does not run: {exc.message}") from exc
        try:
            score_diff, box_diff = compare_detectors(reference, exported, frames)
        except ValueError as exc:
            raise ExportError(out, f"the export does not reproduce the .keras model: {exc}; nothing was written") from exc
        if not (score_diff <= TOLERANCE and box_diff <= TOLERANCE):
            raise ExportError(out, f"the export does not reproduce the .keras model (score off by up to "
                                   f"{score_diff:.2g}, box by up to {box_diff:.2g}; allowed {TOLERANCE:g}); "
                                   "nothing was written")
        size, runtime = tmp.stat().st_size, exported.runtime
        del exported  # LiteRT maps the file it reads: let go of it before it is renamed (Windows)
        fingerprint = {**file_fingerprint(tmp), "name": out.name}
        if sidecar.exists() and MODEL_FINGERPRINT not in read_json_object(sidecar):
            sidecar.unlink()  # an old sidecar without a fingerprint could pass for the new model's: gone first
    # The model is in place (atomic_path renamed it); now its sidecar, naming it by size and SHA-256.
    atomic_write_text(sidecar, json.dumps({**metadata, MODEL_FINGERPRINT: fingerprint}, indent=2, default=str) + "\n")
    return ExportResult(path=out, sidecar=sidecar, format=fmt, runtime=runtime,
                        size_bytes=size, seconds=time.perf_counter() - started, frames_checked=len(frames),
                        max_score_difference=score_diff, max_box_difference=box_diff, metadata=metadata)

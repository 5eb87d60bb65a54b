"""Running a trained detector on frames: load a ``.keras`` file safely, then detect fast.

The tutorial called ``model.predict`` once per webcam frame, which rebuilds a data pipeline every
call (tens of milliseconds). :class:`Detector` instead compiles the model's forward pass once for
the active Keras backend and reuses it, so a frame costs what the network itself costs.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from training.detection import (
    DEFAULT_SCORE_THRESHOLD,
    Detection,
    ModelFileError,
    read_model_metadata,
    score_threshold_of,
)
from training.model import model_input_size
from training.preprocess import box_to_pixels, preprocess_frame, preprocess_frames

# Frames sent through the network at once by detect_batch: bounds memory for long lists.
_BATCH_CHUNK = 32


def _shape_problem(model: keras.Model) -> str | None:
    """Why ``model`` is not a two-head detector (image in, [score (N,1), box (N,4)] out), or None."""
    inputs = list(model.inputs or [])
    if len(inputs) != 1:
        return f"expected one image input, the model has {len(inputs)}"
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        return f"expected a square RGB image input (None, S, S, 3), the model takes {shape}"
    outputs = list(model.outputs or [])
    if len(outputs) != 2:
        return f"expected two outputs [face score, box], the model has {len(outputs)}"
    got = [tuple(o.shape)[1:] for o in outputs]
    if got != [(1,), (4,)]:
        return f"expected outputs shaped [(N, 1), (N, 4)] (face score, box), the model gives {got}"
    return None


def load_detector_model(path: str | Path) -> keras.Model:
    """Load a FaceTracker ``.keras`` file in Keras' safe mode and check it is a two-head detector.

    Raises:
        ModelFileError: the file is missing, is not a ``.keras`` archive, is damaged, or holds some
            other kind of model.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "no such file")
    if path.is_dir():
        raise ModelFileError(path, "is a folder, not a .keras model file")
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelFileError(
            path, "is an old HDF5 (.h5) model; FaceTracker reads Keras 3 .keras files (train again to get one)"
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError(path, "is not a .keras model file (not a zip archive: another kind of file, or cut short)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(path, f"is a damaged zip archive ({exc})") from exc
    if "config.json" not in names:
        raise ModelFileError(path, "is a zip archive but not a Keras model (it has no config.json)")
    if path.suffix.lower() != ".keras":
        raise ModelFileError(path, "looks like a Keras model but its name must end in .keras")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds (ValueError, TypeError, OSError, zip errors)
        text = str(exc).strip()
        if "safe_mode" in text:
            raise ModelFileError(
                path, "holds Python code (e.g. a Lambda layer) that safe mode refuses to run; "
                "FaceTracker only loads plain models"
            ) from exc
        first_line = text.splitlines()[0] if text else type(exc).__name__
        raise ModelFileError(path, f"could not be read as a Keras model, is it damaged? ({first_line})") from exc
    if not isinstance(model, keras.Model):
        raise ModelFileError(path, f"holds a {type(model).__name__}, not a Keras model")
    problem = _shape_problem(model)
    if problem:
        raise ModelFileError(path, f"is not a FaceTracker face detector: {problem}")
    return model


def _compile_forward(model: keras.Model, input_size: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Return ``f(x (N,S,S,3) float32) -> [scores (N,1), boxes (N,4)]`` as NumPy, compiled once per backend.

    Eager ``model(x)`` pays tens of milliseconds of per-call overhead on CPU; a traced function with
    a fixed input signature pays it once.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, input_size, input_size, 3), tf.float32)
        # The concrete function skips tf.function's per-call argument matching (about 0.5 ms).
        # autograph=False: a plain Keras call needs no conversion, and a frozen app has no source to parse.
        forward = tf.function(lambda x: model(x, training=False), autograph=False).get_concrete_function(spec)
        return lambda x: [out.numpy() for out in forward(tf.convert_to_tensor(x, tf.float32))]
    if backend == "jax":
        import jax

        @jax.jit
        def forward_jax(trainable, non_trainable, x):
            outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return outputs

        def call(x: np.ndarray) -> list[np.ndarray]:
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return [np.asarray(out) for out in forward_jax(trainable, non_trainable, x)]

        return call
    return lambda x: [keras.ops.convert_to_numpy(out) for out in model(x, training=False)]


def _device_name() -> str:
    """Where the forward pass runs, in words: "GPU: <name>" or "CPU (<model>)"."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from training.device import device_name

        return device_name()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "CPU" if device.platform == "cpu" else f"GPU: {device.device_kind}"
    return "CPU"


class Detector:
    """A loaded detector ready for frames: preprocessing, a compiled forward pass, pixel boxes."""

    def __init__(self, model: keras.Model, path: Path | None = None, threshold: float | None = None) -> None:
        problem = _shape_problem(model)
        if problem:
            raise ValueError(f"not a FaceTracker face detector: {problem}")
        self.model = model
        self.path = Path(path) if path is not None else None
        #: What the model file says of itself (training.detection.write_model_metadata); {} for none.
        self.metadata: dict = read_model_metadata(self.path) if self.path is not None else {}
        #: The score above which a detection is a face: the one chosen on validation when the model
        #: was trained (stored in the file), else the tutorial's 0.5.
        self.threshold: float = (float(threshold) if threshold is not None
                                 else score_threshold_of(self.metadata) if self.metadata else DEFAULT_SCORE_THRESHOLD)
        self.input_size: int = model_input_size(model)
        self.device: str = _device_name()
        self._forward = _compile_forward(model, self.input_size)
        # Trace once now, so the first real frame is as fast as the rest.
        self._forward(np.zeros((1, self.input_size, self.input_size, 3), dtype=np.float32))

    @classmethod
    def from_file(cls, path: str | Path, threshold: float | None = None) -> Detector:
        """Load a ``.keras`` file (see :func:`load_detector_model`) and get it ready for frames;
        ``threshold`` overrides the one stored in the file."""
        return cls(load_detector_model(path), path=Path(path), threshold=threshold)

    def __repr__(self) -> str:
        return (f"Detector(path={self.path}, input_size={self.input_size}, threshold={self.threshold:.3f}, "
                f"device={self.device!r})")

    def detect(self, frame_bgr: np.ndarray) -> Detection:
        """Score one BGR frame (any size) and place the box in its pixels."""
        _check_frame(frame_bgr)
        x = preprocess_frame(frame_bgr, self.input_size)[np.newaxis]
        scores, boxes = self._forward(x)
        height, width = frame_bgr.shape[:2]
        return Detection(float(scores[0, 0]), box_to_pixels(boxes[0], width, height))

    def detect_batch(self, frames_bgr: Sequence[np.ndarray]) -> list[Detection]:
        """:meth:`detect` for many frames (sizes may differ), run through the network in chunks."""
        frames = list(frames_bgr)
        for frame in frames:
            _check_frame(frame)
        detections: list[Detection] = []
        for start in range(0, len(frames), _BATCH_CHUNK):
            chunk = frames[start : start + _BATCH_CHUNK]
            scores, boxes = self._forward(preprocess_frames(chunk, self.input_size))
            for frame, score, box in zip(chunk, scores[:, 0], boxes, strict=True):
                height, width = frame.shape[:2]
                detections.append(Detection(float(score), box_to_pixels(box, width, height)))
        return detections


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ValueError("expected a non-empty image array (H, W[, C]), got " + _describe(frame))


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__

"""Running a trained detector on frames: load a model file safely, then detect fast.

The tutorial called ``model.predict`` once per webcam frame, which rebuilds a data pipeline every
call (tens of milliseconds). :class:`Detector` instead compiles the model's forward pass once for
the active Keras backend and reuses it, so a frame costs what the network itself costs.

:meth:`Detector.from_file` also runs the files ``facetracker-train export`` writes, each in its light
runtime, an optional extra: ``.onnx`` in ONNX Runtime (``pip install "facetracker[onnx]"``) and
``.tflite`` in LiteRT (``"facetracker[litert]"``; TensorFlow's own ``tf.lite.Interpreter`` stands in
when LiteRT is missing). Frames go through the same :mod:`training.core.preprocess` functions whatever the
runtime, so a box is the same box. Keras (and so TensorFlow) is only imported for ``.keras`` files.
"""

from __future__ import annotations

import os
import threading
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.core.boxes import NMS_IOU, faces_from_cells
from training.core.detection import (
    DEFAULT_SCORE_THRESHOLD,
    MODEL_LABEL,
    Detection,
    MissingRuntimeError,
    ModelFileError,
    install_hint,
    read_model_metadata,
    score_threshold_of,
    sniff_model_format,
)
from training.core.inputs import check_regular_file, parse_json
from training.core.preprocess import box_to_pixels, preprocess_frame, preprocess_frames
from training.inference.pretrained import PRETRAINED_TAG

if TYPE_CHECKING:  # pragma: no cover
    import keras

# Frames sent through the network at once by detect_batch: bounds memory for long lists.
_BATCH_CHUNK = 32


_OUTPUTS_WANTED = ("[face score (N, 1), box (N, 4)], or for a multi-face model [face score (N, 1), "
                   "box (N, 4), cell scores (N, C), cell boxes (N, C, 4)]")


def _outputs_problem(shapes: Sequence[Sequence]) -> str | None:
    """Why output shapes (batch first, in the model's order) are not a detector's, or None."""
    got = [tuple(shape)[1:] for shape in shapes]
    if len(shapes) not in (2, 4):
        return f"expected two outputs (four for a multi-face model): {_OUTPUTS_WANTED}; the model has {len(shapes)}"
    if got[:2] != [(1,), (4,)] or (len(got) == 4 and not (
            len(got[2]) == 1 and isinstance(got[2][0], int) and got[2][0] > 0 and got[3] == (got[2][0], 4))):
        return f"expected outputs shaped {_OUTPUTS_WANTED}; the model gives {got}"
    return None


def _shape_problem(model: keras.Model) -> str | None:
    """Why ``model`` is not a detector (image in; [score (N,1), box (N,4)] out, or the multi-face
    model's [score, box, cell scores (N,C), cell boxes (N,C,4)]), or None."""
    inputs = list(model.inputs or [])
    if len(inputs) != 1:
        return f"expected one image input, the model has {len(inputs)}"
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        return f"expected a square RGB image input (None, S, S, 3), the model takes {shape}"
    return _outputs_problem([tuple(o.shape) for o in model.outputs or []])


def check_keras_file(path: str | Path) -> Path:
    """The checks a ``.keras`` file gets before Keras reads it, without TensorFlow (the app makes them in
    its own process before it asks a child process to export the model): there, a regular file, a zip
    archive with a ``config.json``, named ``.keras``. Returns the path.

    Raises:
        ModelFileError: the file is missing, a folder, an old ``.h5``, not a zip archive, or not a Keras model.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "no such file")
    if path.is_dir():
        raise ModelFileError(path, "is a folder, not a .keras model file")
    check_regular_file(path, error=ModelFileError, what="model file")  # a named pipe would block the read
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelFileError(
            path, "is an old HDF5 (.h5) model; FaceTracker reads Keras 3 .keras files (train again to get one)"
        )
    if not zipfile.is_zipfile(path):
        if sniff_model_format(path) == "tflite":
            raise ModelFileError(path, "is a TFLite model, not a .keras model file (name it .tflite to use it)")
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
    return path


def load_detector_model(path: str | Path) -> keras.Model:
    """Load a FaceTracker ``.keras`` file in Keras' safe mode and check it is a two-head detector.

    Raises:
        ModelFileError: the file is missing, is not a ``.keras`` archive, is damaged, or holds some
            other kind of model.
    """
    path = check_keras_file(path)
    import keras

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
    """Return ``f(x (N,S,S,3) float32) -> [scores (N,1), boxes (N,4), ...]`` (every output, in the
    model's order) as NumPy, compiled once per backend.

    Eager ``model(x)`` pays tens of milliseconds of per-call overhead on CPU; a traced function with
    a fixed input signature pays it once.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, input_size, input_size, 3), tf.float32)

        def concrete(jit_compile: bool):
            # The concrete function skips tf.function's per-call argument matching (about 0.5 ms).
            # autograph=False: a plain Keras call needs no conversion, and a frozen app has no source to parse.
            function = tf.function(lambda x: model(x, training=False), autograph=False, jit_compile=jit_compile)
            return function.get_concrete_function(spec)

        # XLA fuses the small convolutions and normalisations of the grid models but runs depthwise convolutions
        # (BlazeFace) several times slower than the plain graph (docs/models.md); each backbone's spec says which
        # (BackboneSpec.xla). Where XLA cannot compile the model, the plain graph runs it.
        forward = concrete(False)
        if _wants_xla(model):
            try:
                compiled = concrete(True)
                compiled(tf.zeros((1, input_size, input_size, 3), tf.float32))
                forward = compiled
            except Exception:  # noqa: BLE001 - any XLA failure: the plain graph runs the model
                pass
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


def _wants_xla(model: keras.Model) -> bool:
    """Whether the model's backbone runs faster under XLA (its spec says; a model of unknown make: yes)."""
    from training.model.backbones import BACKBONES
    from training.model.build import backbone_of

    try:
        return BACKBONES[backbone_of(model)].xla
    except ValueError:
        return True


def _device_name() -> str:
    """Where the forward pass runs, in words: "GPU: <name>" or "CPU (<model>)"."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        from training.core.device import device_name

        return device_name()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "CPU" if device.platform == "cpu" else f"GPU: {device.device_kind}"
    return "CPU"


class Detector:
    """A loaded detector ready for frames: preprocessing, a compiled forward pass, pixel boxes. A
    :class:`~training.core.detection.FaceDetector`, as the classic finder and the suggestion engines are.

    ``runtime`` says what runs the network: ``"keras"`` (a ``.keras`` file or a built model),
    ``"onnxruntime"`` (``.onnx``), ``"litert"`` or ``"tensorflow-lite"`` (``.tflite``). ``model`` is the
    Keras model for ``"keras"`` and None otherwise. ``multi_face`` says whether the model answers for
    every face (the multiface backbone: :meth:`detect_all` then finds each one).
    """

    def __init__(self, model: keras.Model, path: Path | None = None, threshold: float | None = None) -> None:
        problem = _shape_problem(model)
        if problem:
            raise ValueError(f"not a FaceTracker face detector: {problem}")
        self.model: keras.Model | None = model
        self.runtime: str = "keras"
        input_size = int(model.inputs[0].shape[1])
        self._setup(path, threshold, input_size, _device_name(), _compile_forward(model, input_size),
                    read_model_metadata(path) if path is not None else {}, len(model.outputs) == 4)

    def _setup(self, path: Path | None, threshold: float | None, input_size: int, device: str,
               forward: Callable[[np.ndarray], list[np.ndarray]], metadata: dict, multi_face: bool) -> None:
        self.path = Path(path) if path is not None else None
        #: What the model file says of itself (training.core.detection.write_model_metadata, or the JSON
        #: beside an exported file); {} for none.
        self.metadata: dict = metadata
        #: The score above which a detection is a face: the one chosen on validation when the model
        #: was trained (stored in the file), else the tutorial's 0.5.
        self.threshold: float = (float(threshold) if threshold is not None
                                 else score_threshold_of(self.metadata) if self.metadata else DEFAULT_SCORE_THRESHOLD)
        self.input_size: int = input_size
        self.device: str = device
        #: Whether the model answers for every face (four outputs: per-cell scores and boxes too).
        self.multi_face: bool = bool(multi_face)
        #: Non-maximum suppression's IoU for detect_all: boxes overlapping a better one more are the same face.
        self.nms_iou: float = NMS_IOU
        self._forward = forward
        # Trace once now, so the first real frame is as fast as the rest.
        self._forward(np.zeros((1, self.input_size, self.input_size, 3), dtype=np.float32))

    @property
    def label(self) -> str:
        """The tag on its boxes: "face (pretrained)" for the pretrained detector (its metadata says so), else
        the user's model's plain "face"."""
        return PRETRAINED_TAG if self.metadata.get("pretrained") else MODEL_LABEL

    @property
    def name(self) -> str:
        """Who it is, in words: "the pretrained detector" or "your model"."""
        return "the pretrained detector" if self.metadata.get("pretrained") else "your model"

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """The network's raw outputs for preprocessed frames ``x`` (N, S, S, 3) float32 (see
        :func:`training.core.preprocess.preprocess_frames`): ``[scores (N, 1), boxes (N, 4)]`` in [0, 1] of the
        input, and for a multi-face model every cell's ``scores (N, C)`` and ``boxes (N, C, 4)`` after them."""
        return self._forward(x)

    @classmethod
    def from_file(cls, path: str | Path, threshold: float | None = None) -> Detector:
        """Load a model file and get it ready for frames; ``threshold`` overrides the one stored with it.

        ``.onnx`` and ``.tflite`` files (``facetracker-train export``) run in ONNX Runtime and LiteRT;
        anything else is read as a ``.keras`` file (see :func:`load_detector_model`).

        Raises:
            ModelFileError: the file is missing, damaged, of another format than its name says, or
                not a FaceTracker detector. :class:`~training.core.detection.MissingRuntimeError` (a
                ModelFileError) when the runtime for its format is not installed; it names the extra.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return cls._from_runtime(_load_onnx(path), path, threshold)
        if suffix == ".tflite":
            return cls._from_runtime(_load_tflite(path), path, threshold)
        return cls(load_detector_model(path), path=path, threshold=threshold)

    @classmethod
    def _from_runtime(cls, loaded: _LoadedRuntime, path: Path, threshold: float | None) -> Detector:
        """A Detector around an exported model that a light runtime runs (no Keras model behind it)."""
        detector = cls.__new__(cls)
        detector.model = None
        detector.runtime = loaded.name
        metadata = read_model_metadata(path) or loaded.embedded_metadata
        detector._setup(path, threshold, loaded.input_size, loaded.device, loaded.forward, metadata,
                        loaded.multi_face)
        return detector

    def __repr__(self) -> str:
        return (f"Detector(path={self.path}, runtime={self.runtime!r}, input_size={self.input_size}, "
                f"threshold={self.threshold:.3f}, multi_face={self.multi_face}, device={self.device!r})")

    def detect(self, frame_bgr: np.ndarray) -> Detection:
        """Score one BGR frame (any size) and place the box in its pixels."""
        _check_frame(frame_bgr)
        x = preprocess_frame(frame_bgr, self.input_size)[np.newaxis]
        scores, boxes = self._forward(x)[:2]
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
            scores, boxes = self._forward(preprocess_frames(chunk, self.input_size))[:2]
            for frame, score, box in zip(chunk, scores[:, 0], boxes, strict=True):
                height, width = frame.shape[:2]
                detections.append(Detection(float(score), box_to_pixels(box, width, height)))
        return detections

    def detect_all(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Every face in one BGR frame above ``threshold`` (default :attr:`threshold`), best score first,
        boxes in its pixels. (The Detect tab passes its slider's value: one Detector may serve two tabs.)

        A multi-face model's cells are thresholded and thinned out by non-maximum suppression
        (:func:`training.core.boxes.faces_from_cells`); a single-face model gives ``[detect(frame)]`` when
        that is a face, else ``[]``.
        """
        _check_frame(frame_bgr)
        outputs = self._forward(preprocess_frame(frame_bgr, self.input_size)[np.newaxis])
        return self._faces(frame_bgr, [out[0] for out in outputs], threshold)

    def detect_all_batch(self, frames_bgr: Sequence[np.ndarray], threshold: float | None = None) -> list[list[Detection]]:
        """:meth:`detect_all` for many frames (sizes may differ), run through the network in chunks."""
        frames = list(frames_bgr)
        for frame in frames:
            _check_frame(frame)
        found: list[list[Detection]] = []
        for start in range(0, len(frames), _BATCH_CHUNK):
            chunk = frames[start : start + _BATCH_CHUNK]
            outputs = self._forward(preprocess_frames(chunk, self.input_size))
            for i, frame in enumerate(chunk):
                found.append(self._faces(frame, [out[i] for out in outputs], threshold))
        return found

    def _faces(self, frame: np.ndarray, outputs: list[np.ndarray], threshold: float | None) -> list[Detection]:
        """One frame's faces from its row of every output (score (1,), box (4,)[, scores (C,), boxes (C, 4)])."""
        height, width = frame.shape[:2]
        threshold = self.threshold if threshold is None else float(threshold)
        if not self.multi_face:
            best = Detection(float(outputs[0][0]), box_to_pixels(outputs[1], width, height))
            return [best] if best.is_face(threshold) else []
        return [Detection(score, box_to_pixels(box, width, height))
                for score, box in faces_from_cells(outputs[2], outputs[3], threshold, self.nms_iou)]


# ----------------------------------------------------------------------------- light runtimes


@dataclass
class _LoadedRuntime:
    """An exported model opened in its runtime: ``forward(x (N,S,S,3) float32) -> [scores (N,1), boxes (N,4)]``
    (and, when ``multi_face``, every cell's scores (N,C) and boxes (N,C,4) after them)."""

    name: str
    input_size: int
    device: str
    forward: Callable[[np.ndarray], list[np.ndarray]]
    embedded_metadata: dict = field(default_factory=dict)
    multi_face: bool = False


_FORMAT_WORDS = {
    "keras": "a Keras model (a .keras zip archive)",
    "tflite": "a TFLite model",
    "hdf5": "an old HDF5 (.h5) Keras model",
}
_SUFFIX_OF = {"keras": ".keras", "tflite": ".tflite"}


def _check_exported_file(path: Path, expected: str, format_name: str) -> None:
    """The checks every exported file gets before its runtime reads it: there, a file, not empty,
    and not some other format under this name."""
    if not path.exists():
        raise ModelFileError(path, "no such file")
    if path.is_dir():
        raise ModelFileError(path, f"is a folder, not {format_name} model file")
    check_regular_file(path, error=ModelFileError, what="model file")  # a named pipe would block the read
    if path.stat().st_size == 0:
        raise ModelFileError(path, f"is empty, not {format_name} model")
    found = sniff_model_format(path)
    if found is not None and found != expected:
        rename = f" (name it {_SUFFIX_OF[found]} to use it)" if found in _SUFFIX_OF else ""
        raise ModelFileError(path, f"is {_FORMAT_WORDS[found]}, not {format_name} model{rename}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _output_order(output_shapes: Sequence[Sequence]) -> list[int] | None:
    """The positions of [face score, box(, cell scores, cell boxes)] among an exported model's outputs,
    told apart by shape (converters may reorder them); None when the shapes are not a detector's."""
    shapes = [tuple(int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in s)
              for s in output_shapes]  # NumPy integers from LiteRT, names or None for free dimensions
    ranks = [len(s) for s in shapes]
    last = [s[-1] if s else None for s in shapes]
    score = [i for i, s in enumerate(shapes) if ranks[i] == 2 and last[i] == 1]
    box = [i for i, s in enumerate(shapes) if ranks[i] == 2 and last[i] == 4]
    if len(shapes) == 2:
        return [score[0], box[0]] if len(score) == 1 and len(box) == 1 else None
    if len(shapes) != 4:
        return None
    cells = [i for i, s in enumerate(shapes) if ranks[i] == 2 and isinstance(last[i], int) and last[i] not in (1, 4)]
    cell_boxes = [i for i, s in enumerate(shapes) if ranks[i] == 3 and last[i] == 4]
    if not (len(score) == len(box) == len(cells) == len(cell_boxes) == 1):
        return None
    if shapes[cell_boxes[0]][1] != last[cells[0]]:
        return None
    return [score[0], box[0], cells[0], cell_boxes[0]]


def _io_problem(input_shape: Sequence, output_shapes: Sequence[Sequence]) -> str | None:
    """Why an exported model's inputs and outputs are not a FaceTracker detector's, or None.

    ``input_shape`` (batch, S, S, 3) with the batch dimension free; ``output_shapes`` either two
    shapes, (N, 1) the face score and (N, 4) the box, or four (a multi-face model): those two, (N, C)
    every cell's score and (N, C, 4) every cell's box; in any order (see :func:`_output_order`).
    """
    shape = tuple(input_shape)
    if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2] or shape[1] < 1:
        return f"expected a square RGB image input (N, S, S, 3), the model takes {shape}"
    if len(output_shapes) not in (2, 4):
        return (f"expected two outputs (four for a multi-face model): {_OUTPUTS_WANTED}; "
                f"the model has {len(output_shapes)}")
    if _output_order(output_shapes) is None:
        return f"expected outputs shaped {_OUTPUTS_WANTED}; the model gives {[tuple(s) for s in output_shapes]}"
    return None


def _load_onnx(path: Path) -> _LoadedRuntime:
    """Open an ``.onnx`` detector in ONNX Runtime (CUDA when onnxruntime-gpu has it, else the CPU)."""
    _check_exported_file(path, "onnx", "an ONNX")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingRuntimeError(
            path, f"needs ONNX Runtime to run, which is not installed: {install_hint('.onnx')}") from exc
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites, not the user's file
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # InvalidProtobuf, InvalidGraph, Fail, NotImplemented ...
        raise ModelFileError(path, f"could not be read as an ONNX model, is it damaged? ({_first_line(exc)})") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelFileError(path, f"is not a FaceTracker face detector: expected one image input, "
                                   f"the model has {len(inputs)}")
    shape = [d if isinstance(d, int) else None for d in inputs[0].shape]
    problem = _io_problem(shape, [o.shape for o in outputs])
    if problem is None and inputs[0].type != "tensor(float)":
        problem = f"expected a float32 image input, the model takes {inputs[0].type}"
    if problem:
        raise ModelFileError(path, f"is not a FaceTracker face detector: {problem}")
    order = _output_order([o.shape for o in outputs]) or []
    names, input_name = [outputs[i].name for i in order], inputs[0].name

    def forward(x: np.ndarray) -> list[np.ndarray]:
        return session.run(names, {input_name: np.ascontiguousarray(x, dtype=np.float32)})

    provider = session.get_providers()[0]
    device = "GPU (ONNX Runtime, CUDA)" if provider == "CUDAExecutionProvider" else "CPU (ONNX Runtime)"
    embedded = {}
    text = session.get_modelmeta().custom_metadata_map.get("facetracker")
    if text:
        try:
            value = parse_json(text, max_depth=16)  # bounded: no RecursionError from a crafted file
            embedded = value if isinstance(value, dict) else {}
        except ValueError:
            embedded = {}
    return _LoadedRuntime("onnxruntime", int(shape[1]), device, forward, embedded, multi_face=len(names) == 4)


def _tflite_interpreter(path: Path) -> tuple[type, str]:
    """LiteRT's Interpreter, else TensorFlow's own (deprecated for LiteRT, but there wherever TensorFlow is)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "litert"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow-lite"
    except (ImportError, AttributeError) as exc:
        raise MissingRuntimeError(
            path, f"needs LiteRT to run, which is not installed: {install_hint('.tflite')}") from exc


#: LiteRT threads for one forward pass: its XNNPACK kernels gain little past a few on a small network.
TFLITE_THREADS = max(1, min(4, os.cpu_count() or 1))


def _load_tflite(path: Path) -> _LoadedRuntime:
    """Open a ``.tflite`` detector in LiteRT; one lock per model, since an interpreter is not thread-safe."""
    _check_exported_file(path, "tflite", "a TFLite")
    if sniff_model_format(path) != "tflite":
        raise ModelFileError(path, "is not a TFLite model (no TFL3 identifier): another kind of file, or cut short")
    interpreter_class, runtime = _tflite_interpreter(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            interpreter = interpreter_class(model_path=str(path), num_threads=TFLITE_THREADS)
        interpreter.allocate_tensors()
    except Exception as exc:  # ValueError (bad FlatBuffer), RuntimeError (ops it cannot run)
        raise ModelFileError(path, f"could not be read as a TFLite model, is it damaged? ({_first_line(exc)})") from exc
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1:
        raise ModelFileError(path, f"is not a FaceTracker face detector: expected one image input, "
                                   f"the model has {len(inputs)}")
    signature = [int(d) for d in inputs[0].get("shape_signature", inputs[0]["shape"])]
    shape = [None if d < 0 else d for d in signature]
    problem = _io_problem(shape, [list(o.get("shape_signature", o["shape"])) for o in outputs])
    if problem is None and inputs[0]["dtype"] != np.float32:
        problem = (f"expected a float32 image input, the model takes {np.dtype(inputs[0]['dtype']).name} "
                   "(a fully quantised model; export without int8 input)")
    if problem:
        raise ModelFileError(path, f"is not a FaceTracker face detector: {problem}")
    order = _output_order([list(o.get("shape_signature", o["shape"])) for o in outputs]) or []
    output_indices, input_index = [outputs[i]["index"] for i in order], inputs[0]["index"]
    dynamic_batch = signature[0] < 0
    lock = threading.Lock()
    batch = [int(inputs[0]["shape"][0])]

    def run(x: np.ndarray) -> list[np.ndarray]:  # with the lock held
        if x.shape[0] != batch[0]:
            interpreter.resize_tensor_input(input_index, list(x.shape), strict=True)
            interpreter.allocate_tensors()
            batch[0] = x.shape[0]
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        return [interpreter.get_tensor(index) for index in output_indices]

    def forward(x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        with lock:
            if dynamic_batch or x.shape[0] == batch[0]:
                return run(x)
            parts = [run(x[i : i + 1]) for i in range(x.shape[0])]  # a fixed batch of one: frame by frame
        return [np.concatenate([p[j] for p in parts]) for j in range(len(output_indices))]

    name = "LiteRT" if runtime == "litert" else "TensorFlow Lite"
    return _LoadedRuntime(runtime, int(shape[1]), f"CPU ({name})", forward, multi_face=len(output_indices) == 4)


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ValueError("expected a non-empty image array (H, W[, C]), got " + _describe(frame))


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__

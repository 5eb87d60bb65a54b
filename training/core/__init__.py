"""The ground every stage stands on: boxes, one detection's shape, preprocessing shared by training and
inference, devices, safe file reading and writing, run events, drawing."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names (what the desktop may import) and the module each lives in.
_EXPORTS = {
    "Box": "training.core.boxes",
    "clamp_box": "training.core.boxes",
    "iou_matrix": "training.core.boxes",
    "ordered": "training.core.boxes",
    "Detection": "training.core.detection",
    "FaceDetector": "training.core.detection",
    "MODEL_LABEL": "training.core.detection",
    "MissingRuntimeError": "training.core.detection",
    "ModelFileError": "training.core.detection",
    "SIDECAR_SUFFIX": "training.core.detection",
    "configure_device": "training.core.device",
    "device_name": "training.core.device",
    "filtered_native_stderr": "training.core.device",
    "import_tensorflow": "training.core.device",
    "quiet_tensorflow_logs": "training.core.device",
    "BOX_COLOUR_BGR": "training.core.drawing",
    "CLASSIC_BOX_COLOUR_BGR": "training.core.drawing",
    "PRETRAINED_BOX_COLOUR_BGR": "training.core.drawing",
    "draw_detections": "training.core.drawing",
    "TrainingError": "training.core.errors",
    "BATCH": "training.core.events",
    "END": "training.core.events",
    "EPOCH": "training.core.events",
    "ERROR": "training.core.events",
    "START": "training.core.events",
    "WARNING": "training.core.events",
    "atomic_write_bytes": "training.core.files",
    "atomic_write_text": "training.core.files",
    "staging_folder": "training.core.files",
    "InputError": "training.core.inputs",
    "is_regular_file": "training.core.inputs",
    "kind_of": "training.core.inputs",
    "read_bytes": "training.core.inputs",
    "read_json_object": "training.core.inputs",
    "read_text": "training.core.inputs",
    "as_bgr": "training.core.preprocess",
    "as_uint8": "training.core.preprocess",
    "box_to_pixels": "training.core.preprocess",
    "format_duration": "training.core.text",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

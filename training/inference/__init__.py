"""Running a model on frames: the Detector, exported runtimes, the classic and pretrained finders,
suggested labels."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names (what the desktop may import) and the module each lives in.
_EXPORTS = {
    "AutolabelReport": "training.inference.autolabel",
    "BLAZEFACE_NAME": "training.inference.autolabel",
    "BlazeFaceFinder": "training.inference.autolabel",
    "DEFAULT_MIN_SCORE": "training.inference.autolabel",
    "PretrainedFaceFinder": "training.inference.autolabel",
    "SuggestionMark": "training.inference.autolabel",
    "autolabel_dataset": "training.inference.autolabel",
    "find_faces": "training.inference.autolabel",
    "mtcnn_available": "training.inference.autolabel",
    "read_suggestion_mark": "training.inference.autolabel",
    "ClassicFaceFinder": "training.inference.classic",
    "Detector": "training.inference.detector",
    "check_keras_file": "training.inference.detector",
    "export_model": "training.inference.export",
    "PRETRAINED_TAG": "training.inference.pretrained",
    "PRETRAINED_THRESHOLD": "training.inference.pretrained",
    "pretrained_detector": "training.inference.pretrained",
    "save_pretrained_model": "training.inference.pretrained",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

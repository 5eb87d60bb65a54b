"""FaceTracker's training engine: data, the two-head model, its losses, training and inference.

The public API is imported lazily so that ``import training`` stays cheap (the desktop app
shows its window before TensorFlow is loaded): names resolve on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    # data
    "load_dataset": "training.data",
    "Dataset": "training.data",
    "Sample": "training.data",
    "Problem": "training.data",
    "DataError": "training.data",
    # preprocessing shared by training and inference
    "preprocess_frame": "training.preprocess",
    "preprocess_frames": "training.preprocess",
    # model, losses, optimizer, metrics
    "build_model": "training.model",
    "BACKBONES": "training.model",
    "WeightsUnavailableError": "training.model",
    "localization_loss": "training.losses",
    "classification_loss": "training.losses",
    "total_loss": "training.losses",
    "tutorial_lr_schedule": "training.optimizer",
    "make_optimizer": "training.optimizer",
    "box_iou": "training.metrics",
    # training, evaluation, inference, demo data
    "TrainConfig": "training.settings",  # no Keras import: the app builds configs too
    "train": "training.trainer",
    "evaluate_model": "training.evaluate",
    "Detector": "training.inference",
    "Detection": "training.detection",
    "ModelFileError": "training.detection",
    "draw_detection": "training.drawing",
    "load_detector_model": "training.inference",
    "make_demo_data": "training.demo",
    "MissingRuntimeError": "training.detection",
    "export_model": "training.export",
    "ExportError": "training.export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from training.data import DataError, Dataset, Problem, Sample, load_dataset  # noqa: F401
    from training.demo import make_demo_data  # noqa: F401
    from training.detection import Detection, ModelFileError  # noqa: F401
    from training.drawing import draw_detection  # noqa: F401
    from training.evaluate import evaluate_model  # noqa: F401
    from training.inference import Detector, load_detector_model  # noqa: F401
    from training.losses import classification_loss, localization_loss, total_loss  # noqa: F401
    from training.metrics import box_iou  # noqa: F401
    from training.model import BACKBONES, WeightsUnavailableError, build_model  # noqa: F401
    from training.optimizer import make_optimizer, tutorial_lr_schedule  # noqa: F401
    from training.preprocess import preprocess_frame, preprocess_frames  # noqa: F401
    from training.settings import TrainConfig  # noqa: F401
    from training.trainer import train  # noqa: F401

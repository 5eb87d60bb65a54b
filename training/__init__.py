"""FaceTracker's training engine: data, the two-head model, its losses, training and inference.

The public API is imported lazily so that ``import training`` stays cheap (the desktop app
shows its window before TensorFlow is loaded): names resolve on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.core.lazy import lazy_exports

_EXPORTS = {
    # data
    "load_dataset": "training.data.dataset",
    "Dataset": "training.data.dataset",
    "Sample": "training.data.dataset",
    "Problem": "training.data.dataset",
    "DataError": "training.data.dataset",
    # preprocessing shared by training and inference
    "preprocess_frame": "training.core.preprocess",
    "preprocess_frames": "training.core.preprocess",
    # model, losses, optimizer, metrics
    "build_model": "training.model.build",
    "BACKBONES": "training.model.backbones",
    "BackboneSpec": "training.model.backbones",
    "WeightsUnavailableError": "training.model.backbones",
    "localization_loss": "training.model.losses",
    "classification_loss": "training.model.losses",
    "total_loss": "training.model.losses",
    "tutorial_lr_schedule": "training.model.optimizer",
    "make_optimizer": "training.model.optimizer",
    "box_iou": "training.evaluation.metrics",
    # training, evaluation, inference, demo data
    "TrainConfig": "training.engine.settings",  # no Keras import: the app builds configs too
    "train": "training.engine.trainer",
    "evaluate_model": "training.evaluation.evaluate",
    "Detector": "training.inference.detector",
    "Detection": "training.core.detection",
    "ModelFileError": "training.core.detection",
    "draw_detection": "training.core.drawing",
    "load_detector_model": "training.inference.detector",
    "make_demo_data": "training.data.demo",
    "MissingRuntimeError": "training.core.detection",
    "export_model": "training.inference.export",
    "ExportError": "training.inference.export",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from training.core.detection import Detection, ModelFileError  # noqa: F401
    from training.core.drawing import draw_detection  # noqa: F401
    from training.core.preprocess import preprocess_frame, preprocess_frames  # noqa: F401
    from training.data.dataset import DataError, Dataset, Problem, Sample, load_dataset  # noqa: F401
    from training.data.demo import make_demo_data  # noqa: F401
    from training.engine.settings import TrainConfig  # noqa: F401
    from training.engine.trainer import train  # noqa: F401
    from training.evaluation.evaluate import evaluate_model  # noqa: F401
    from training.evaluation.metrics import box_iou  # noqa: F401
    from training.inference.detector import Detector, load_detector_model  # noqa: F401
    from training.model.backbones import BACKBONES, BackboneSpec, WeightsUnavailableError  # noqa: F401
    from training.model.build import build_model  # noqa: F401
    from training.model.losses import classification_loss, localization_loss, total_loss  # noqa: F401
    from training.model.optimizer import make_optimizer, tutorial_lr_schedule  # noqa: F401

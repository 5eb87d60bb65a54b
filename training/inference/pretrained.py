"""The face detector FaceTracker starts from, ready before any training: MediaPipe's BlazeFace.

It finds real faces (from far away to selfie size) out of the box, so the app has a real detector
before the user has a model of their own (the Detect tab, the Label tab's suggestions, ``autolabel``),
and every new ``blazeface`` run fine-tunes it rather than learning faces from a few hundred pictures.
See :mod:`training.model.blazeface` for the network and ``assets/blazeface/`` for its weights and licence.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from training.core.detection import write_model_metadata

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from training.inference.detector import Detector

PRETRAINED_BACKBONE = "blazeface"
#: Its score threshold before any training (MediaPipe's full-range graph uses 0.6).
PRETRAINED_THRESHOLD = 0.6
#: How the app and the CLI name it: a real detector, but not yet the user's.
PRETRAINED_LABEL = "pretrained face detector (BlazeFace), not yet yours"
#: The tag on its boxes in the app's live view ("face (pretrained) 0.91").
PRETRAINED_TAG = "face (pretrained)"


def build_pretrained_model() -> keras.Model:
    """The blazeface network with MediaPipe's trained weights (raises WeightsUnavailableError when missing)."""
    from training.model.build import build_model

    return build_model(PRETRAINED_BACKBONE, weights="face")


def pretrained_detector(threshold: float | None = None) -> Detector:
    """A :class:`~training.inference.detector.Detector` running the pretrained model (its threshold unless given)."""
    from training.inference.detector import Detector

    detector = Detector(build_pretrained_model(), threshold=PRETRAINED_THRESHOLD if threshold is None else threshold)
    detector.metadata = {"pretrained": True, "score_threshold": detector.threshold, "label": PRETRAINED_LABEL}
    return detector


def save_pretrained_model(path: str | Path) -> Path:
    """Write the pretrained model as an ordinary ``.keras`` file (with its threshold), so everything that
    takes a model file (the Detect tab, ``evaluate``, ``export``) takes it too."""
    from training.core.files import atomic_path

    path = Path(path)
    model = build_pretrained_model()
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        write_model_metadata(tmp, {"score_threshold": PRETRAINED_THRESHOLD, "pretrained": True,
                                   "label": PRETRAINED_LABEL})
    return path

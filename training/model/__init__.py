"""The two-head network: one spec per backbone (:mod:`training.model.backbones`, Keras-free), one builder
file per family (blazeface, grid, tiny, applications), the seed's losses and the decaying Adam."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names (what the desktop may import) and the module each lives in.
_EXPORTS = {
    "BACKBONES": "training.model.backbones",
    "BackboneSpec": "training.model.backbones",
    "DEFAULT_BACKBONE": "training.model.backbones",
    "FINETUNE_EPOCHS": "training.model.backbones",
    "FINETUNE_RATE_FACTOR": "training.model.backbones",
    "GRID_BACKBONES": "training.model.backbones",
    "MULTI_FACE_BACKBONES": "training.model.backbones",
    "WeightsUnavailableError": "training.model.backbones",
    "finetune_learning_rate": "training.model.backbones",
    "start_text": "training.model.backbones",
    "build_model": "training.model.build",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

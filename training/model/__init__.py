"""The two-head network: one builder per backbone family, the seed's losses and the decaying Adam."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names (what the desktop may import) and the module each lives in.
_EXPORTS = {
    "GRID_BACKBONES": "training.model.backbones",
    "default_epochs": "training.model.backbones",
    "start_text": "training.model.backbones",
    "build_model": "training.model.build",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Pictures and their labels: the dataset on disk, its formats, augmentation and demo data."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names (what the desktop may import) and the module each lives in.
_EXPORTS = {
    "DataError": "training.data.dataset",
    "IMAGE_EXTENSIONS": "training.data.dataset",
    "MAX_LABEL_BYTES": "training.data.dataset",
    "face_boxes_px": "training.data.dataset",
    "label_path_for": "training.data.dataset",
    "load_dataset": "training.data.dataset",
    "load_image": "training.data.dataset",
    "write_labelme": "training.data.dataset",
    "make_demo_data": "training.data.demo",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

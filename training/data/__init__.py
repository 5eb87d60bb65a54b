"""Pictures and their labels: the dataset on disk (``dataset``), pictures (``pictures``), the label formats
(``formats``: labelme, COCO, YOLO, VOC, WIDER FACE), augmentation and demo data."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names (what the desktop may import) and the module each lives in.
_EXPORTS = {
    "label_path_for": "training.data.dataset",
    "load_dataset": "training.data.dataset",
    "make_demo_data": "training.data.demo",
    "DataError": "training.data.errors",
    "MAX_LABEL_BYTES": "training.data.formats.labelme",
    "face_boxes_px": "training.data.formats.labelme",
    "write_labelme": "training.data.formats.labelme",
    "KeptFrame": "training.data.kept_frames",
    "REASONS": "training.data.kept_frames",
    "SUGGEST_MIN_SCORE": "training.data.kept_frames",
    "free_bytes": "training.data.kept_frames",
    "is_kept": "training.data.kept_frames",
    "kept_usage": "training.data.kept_frames",
    "suggest_from": "training.data.kept_frames",
    "write_kept_frame": "training.data.kept_frames",
    "IMAGE_EXTENSIONS": "training.data.pictures",
    "load_image": "training.data.pictures",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""How good a model is: matching faces, AP50/F1/IoU, the report and the real-photograph benchmark."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names and the module each lives in: the one validator (every model gives its faces per picture,
#: matched once) and what is built on it.
_EXPORTS = {
    "Predictions": "training.evaluation.validator",
    "Result": "training.evaluation.validator",
    "measure": "training.evaluation.validator",
    "predict_model": "training.evaluation.validator",
    "predict_finder": "training.evaluation.validator",
    "evaluate_model": "training.evaluation.evaluate",
    "evaluate_finder": "training.evaluation.evaluate",
    "format_table": "training.evaluation.evaluate",
    "verdict": "training.evaluation.evaluate",
    "write_result_pictures": "training.evaluation.report",
    "measure_detector": "training.evaluation.realphotos",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

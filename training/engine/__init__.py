"""Training runs: settings, the trainer, checkpoints, the run folder, several devices."""

from __future__ import annotations

from training.core.lazy import lazy_exports

#: Public names (what the desktop may import) and the module each lives in.
_EXPORTS = {
    "StartModel": "training.engine.finetune",
    "inspect_start_model": "training.engine.finetune",
    "BEST_MODEL": "training.engine.run_folder",
    "CONFIG_JSON": "training.engine.run_folder",
    "HISTORY_CSV": "training.engine.run_folder",
    "PR_CURVE_PNG": "training.engine.run_folder",
    "TEST_PREDICTIONS_JPG": "training.engine.run_folder",
    "can_resume": "training.engine.run_folder",
    "run_folder_for": "training.engine.run_folder",
    "Setting": "training.engine.settings",
    "TRAIN_SETTINGS": "training.engine.settings",
    "TrainConfig": "training.engine.settings",
    "config_to_args": "training.engine.settings",
    "setting": "training.engine.settings",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

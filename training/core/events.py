"""The training progress events: their names, once, for the trainer, the CLI and the desktop app.

A training run reports through ``on_event(dict)``; ``facetracker-train --progress json`` prints each
event as one JSON line, which the app's Train tab reads from its child process. Every event has an
``"event"`` key naming its kind:

* ``start``: the run began (``run_dir``, ``device``, ``epochs``, ``batches_per_epoch``, ``weights``,
  ``train_images``, ``val_images``, ``resumed_from_epoch``);
* ``batch``: a training step ended (``epoch``, ``epochs``, ``batch``, ``batches``, the losses, ``lr``);
* ``epoch``: an epoch ended and its checkpoint is on disk (the history row, ``epochs``);
* ``warning``: something the user should know (``message``);
* ``end``: the run is over and its files are written (``run_dir``, ``best_model``, ``last_model``,
  ``metrics``, ``stopped``); also the export command's result;
* ``error``: the command failed (``message``; ``interrupted`` and ``run_dir`` when the user stopped it).

Plain Python, free of Qt and Keras.
"""

from __future__ import annotations

from typing import Any

START = "start"
BATCH = "batch"
EPOCH = "epoch"
WARNING = "warning"
END = "end"
ERROR = "error"
EVENT_NAMES = (START, BATCH, EPOCH, WARNING, END, ERROR)


def warning_event(message: str) -> dict[str, Any]:
    """A ``warning`` event carrying ``message``."""
    return {"event": WARNING, "message": message}


def error_event(message: str, **extra: Any) -> dict[str, Any]:
    """An ``error`` event carrying ``message`` (and e.g. ``interrupted=True, run_dir=...``)."""
    return {"event": ERROR, "message": message, **extra}

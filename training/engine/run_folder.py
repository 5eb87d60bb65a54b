"""The run folder: its files' names, how a new one is named, and whether a run can be resumed.

One place for what the trainer writes and the CLI and the desktop app read::

    best.keras  last.keras  history.csv  losses.png  metrics.json  config.json  tensorboard/
    test_predictions.jpg  pr_curve.png  run.lock
    train_state/state.json                   the newest checkpoint's state, published
    train_state/epoch-000007/                the newest complete checkpoint (last.keras, best.keras,
                                             optimizer.npz, state.json, history.csv)
    train_state/epoch-000007.partial/        one being written (the rename to epoch-000007/ commits it)
    train_state/epoch-000006.damaged/        one set aside because a file in it was damaged

Plain Python, free of Qt and Keras, so the app can decide "can this run resume" exactly as the
trainer will (:func:`can_resume`) without loading TensorFlow.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from training.core.inputs import read_json_object as _read_json_object

LAST_MODEL = "last.keras"
BEST_MODEL = "best.keras"
HISTORY_CSV = "history.csv"
CONFIG_JSON = "config.json"
METRICS_JSON = "metrics.json"
LOSSES_PNG = "losses.png"
TENSORBOARD_DIR = "tensorboard"
TEST_PREDICTIONS_JPG = "test_predictions.jpg"  # training.evaluation.report writes <split>_predictions.jpg
PR_CURVE_PNG = "pr_curve.png"
LOCK_FILE = "run.lock"
STATE_DIR = "train_state"
STATE_JSON = "state.json"
OPTIMIZER_NPZ = "optimizer.npz"
CHECKPOINT_NAME = re.compile(r"^epoch-(\d+)$")
PARTIAL_SUFFIX = ".partial"
DAMAGED_SUFFIX = ".damaged"


def checkpoint_name(epoch: int) -> str:
    """The folder name of epoch ``epoch``'s checkpoint in ``train_state/``: ``epoch-000007``."""
    return f"epoch-{epoch:06d}"


# ---------------------------------------------------------------------------------------------- naming


def next_run_dir(base: str | os.PathLike = "runs", name: str = "train", separator: str = "",
                 create: bool = True) -> Path:
    """The first free run folder ``base/name``, then ``base/name{separator}2``, ``...3``...

    ``create``: made here, atomically, so two trainings starting at once never get the same one
    (the CLI's ``runs/train``, ``runs/train2``...); else only named, for a child process to make.
    """
    base = Path(base)
    if create:
        base.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        candidate = base / (name if index == 1 else f"{name}{separator}{index}")
        if not create:
            if not candidate.exists():
                return candidate
        else:
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                pass
        index += 1


def run_folder_for(dataset: Path, now: datetime | None = None) -> Path:
    """A new run folder beside the dataset (the app's): ``DATASET/../runs/<dataset name>-YYYYmmdd-HHMMSS``,
    then ``...-2``, ``...-3`` when taken; named, not made."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    dataset = Path(dataset).resolve()
    return next_run_dir(dataset.parent / "runs", f"{dataset.name}-{stamp}", separator="-", create=False)


# ---------------------------------------------------------------------------------------------- resuming


def read_json_object(path: Path) -> dict:
    """A JSON file's object, or {} when it is missing, unreadable, not a regular file (a named pipe is
    never waited on) or not an object; never raises (see :func:`training.core.inputs.read_json_object`)."""
    return _read_json_object(path, max_bytes=64 * 2**20)


def run_folder_evidence(run_dir: str | os.PathLike) -> str | None:
    """What shows that ``run_dir`` holds a FaceTracker training run, or None for any other folder: its
    ``config.json`` (a run's settings), its ``run.lock`` (an owner record), or checkpoints in
    ``train_state/``. Nothing is deleted or locked in a folder without such evidence."""
    run_dir = Path(run_dir)
    if isinstance(read_json_object(run_dir / CONFIG_JSON).get("config"), dict):
        return f"its {CONFIG_JSON}"
    owner = read_json_object(run_dir / LOCK_FILE)
    if isinstance(owner.get("pid"), int) and isinstance(owner.get("host"), str):
        return f"its {LOCK_FILE}"
    state_dir = run_dir / STATE_DIR
    if checkpoint_folders(state_dir) or (state_dir / STATE_JSON).is_file():
        return f"the checkpoints in {STATE_DIR}/"
    return None


def checkpoint_folders(state_dir: Path) -> list[tuple[int, Path]]:
    """The complete epoch checkpoints in ``state_dir``, newest first."""
    found = []
    if state_dir.is_dir():
        for path in state_dir.iterdir():
            match = CHECKPOINT_NAME.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def resume_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int | None, Path, Path]]:
    """What a resume may go on from, newest first: (epoch, checkpoint folder, its ``last.keras``).

    A run saved before checkpoints had folders gives one entry, epoch None, its state in
    ``train_state/`` itself. The trainer reads and checks them in this order and falls back past
    damaged ones; [] means there is nothing to resume.
    """
    run_dir = Path(run_dir)
    state_dir = run_dir / STATE_DIR
    found: list[tuple[int | None, Path, Path]] = [
        (epoch, folder, folder / LAST_MODEL) for epoch, folder in checkpoint_folders(state_dir)
    ]
    if not found and (state_dir / OPTIMIZER_NPZ).is_file():
        found = [(None, state_dir, run_dir / LAST_MODEL)]
    return found


def can_resume(run_dir: str | os.PathLike | None) -> bool:
    """Whether ``run_dir`` holds a checkpoint to resume from: the rule the trainer and the app share."""
    return run_dir is not None and bool(resume_checkpoints(run_dir))


def committed_epoch(run_dir: str | os.PathLike) -> int | None:
    """The newest epoch whose checkpoint is complete in ``run_dir`` (what a resume goes on from); None: none."""
    found = resume_checkpoints(run_dir)
    if not found:
        return None
    epoch, folder, _ = found[0]
    if epoch is not None:
        return epoch
    saved = read_json_object(folder / STATE_JSON).get("epoch")  # a run saved before checkpoints had folders
    return saved if isinstance(saved, int) and not isinstance(saved, bool) and saved > 0 else None


def holds_run(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` already holds a training run (a new one must not start there)."""
    return (Path(run_dir) / LAST_MODEL).exists() or committed_epoch(run_dir) is not None


#: history.csv's columns, one row an epoch (the app plots them; resume checks them).
METRIC_NAMES = ("total_loss", "class_loss", "regress_loss", "iou")
#: val_f1: F1 at IoU 0.5 on the validation pictures at the score threshold that maximises it (threshold).
HISTORY_COLUMNS = ("epoch", *METRIC_NAMES, *(f"val_{name}" for name in METRIC_NAMES), "val_f1", "threshold", "lr")
#: val_ap50: AP at IoU 0.5 over every face of the validation pictures (multi-face runs only: a
#: single-face run's history.csv has HISTORY_COLUMNS alone).
MULTI_FACE_COLUMNS = ("val_ap50",)
#: history.csv's header: the columns every run has, and the multi-face ones after val_f1.
HISTORY_CSV_COLUMNS = (*HISTORY_COLUMNS[: HISTORY_COLUMNS.index("val_f1") + 1], *MULTI_FACE_COLUMNS,
                       *HISTORY_COLUMNS[HISTORY_COLUMNS.index("val_f1") + 1 :])

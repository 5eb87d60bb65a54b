"""A run folder's lock and checkpoints: one training per folder, and every epoch's files one complete unit.

Split from :mod:`training.engine.trainer`, which calls these between epochs; the folder's file names and the
resume rule live in :mod:`training.engine.run_folder` (free of Keras, for the app).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import filecmp
import io
import json
import os
import re
import shutil
import socket
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from training.core.detection import write_model_metadata
from training.core.errors import TrainingError
from training.core.events import warning_event
from training.core.files import atomic_path, is_temporary_name, pid_alive, remove_stale_temporaries
from training.core.inputs import is_regular_file, kind_of, read_json
from training.engine.run_folder import (
    BEST_MODEL,
    CHECKPOINT_NAME,
    CONFIG_JSON,
    DAMAGED_SUFFIX,
    HISTORY_COLUMNS,
    HISTORY_CSV,
    HISTORY_CSV_COLUMNS,
    LAST_MODEL,
    LOCK_FILE,
    MULTI_FACE_COLUMNS,
    OPTIMIZER_NPZ,
    PARTIAL_SUFFIX,
    STATE_DIR,
    STATE_JSON,
    checkpoint_folders,
    checkpoint_name,
    read_json_object,
    resume_checkpoints,
    run_folder_evidence,
)
from training.model.backbones import BACKBONES

EventCallback = Callable[[dict], None]


# ----------------------------------------------------------------------------------------------
# the run folder: one owner at a time, and every epoch's checkpoint one complete unit
# (its file names and the resume rule: training.engine.run_folder)
#
#   run.lock                  who trains here now (pid, host, start); held with an OS lock while training
#   train_state/epoch-000007/ the newest complete checkpoint: last.keras, best.keras, optimizer.npz,
#                             state.json, history.csv; written as epoch-000007.partial/, then renamed
#   train_state/epoch-000006/ the one before, kept to fall back to when the newest is damaged
#   last.keras, best.keras, history.csv, train_state/state.json
#                             the newest checkpoint's files, published (hard links where the disk allows)

KEPT_CHECKPOINTS = 2  # the newest complete epoch and the one before it
PUBLISHED_FILES = ((LAST_MODEL, ""), (BEST_MODEL, ""), (HISTORY_CSV, ""), (STATE_JSON, STATE_DIR))
_WINDOWS_LOCK_OFFSET = 1 << 30  # msvcrt locks bytes; lock one far past the owner record so it stays readable


_pid_alive = pid_alive  # used only to word a note


def _lock_descriptor(fd: int) -> bool | None:
    """An exclusive OS lock on an open file without waiting: True taken, False held by another, None unsupported."""
    try:
        if os.name == "nt":
            import msvcrt

            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if isinstance(exc, (BlockingIOError, PermissionError)) or exc.errno in (
            errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK
        ):
            return False
        return None  # a file system without locks (some network shares): the owner record decides


def _describe_owner(owner: dict) -> str:
    text = f"pid {owner.get('pid')}"
    if owner.get("host"):
        text += f" on {owner['host']}"
    if owner.get("started"):
        text += f", started {owner['started']}"
    return text


class RunFolderLock:
    """Makes one process at a time the owner of a run folder, through ``run.lock`` in it.

    Two trainings writing one folder would mix their models, history and settings. The file holds
    an operating-system lock for as long as its owner trains and names the owner (pid, host, start
    time), so a second training can say who is in the way. The OS drops the lock when its process
    ends, however it ends (Ctrl-C, SIGKILL, a crash), so a lock file left behind by a dead process
    is never in the way: the next owner takes it over and says from whom (:attr:`taken_over`).
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.taken_over: dict | None = None  # the record of a previous owner that ended without releasing it
        self._fd: int | None = None
        self._remove_folder = False

    def __enter__(self) -> RunFolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, run_dir: Path, remove_folder: bool = False) -> str | None:
        """Take ``run_dir``'s lock or raise :class:`TrainingError` naming its owner; returns a note on a stale lock.

        ``remove_folder``: the folder was made for this run, so release removes it again if it stays empty.
        """
        run_dir = Path(run_dir)
        path = run_dir / LOCK_FILE
        if os.path.islink(path) or (os.path.lexists(path) and not is_regular_file(path)):  # never written through
            kind = "a link" if os.path.islink(path) else _kind(path)
            raise TrainingError(f"{path}: is {kind}, not the run's lock file: remove it, or train into another folder")
        for _ in range(50):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            kept = False
            try:
                locked = _lock_descriptor(fd)
                owner = read_json_object(path)
                if locked is None and owner.get("host") == socket.gethostname() and owner.get("pid") != os.getpid():
                    locked = not _pid_alive(int(owner.get("pid") or 0))
                if not locked:
                    who = (f"({_describe_owner(owner)}) " if owner.get("pid") else "")
                    raise TrainingError(
                        f"{run_dir}: another training {who}is using this run folder (see {path}); wait for it to end "
                        "or stop it, or train into another folder"
                    )
                if os.name != "nt":  # the owner before us may have removed the file as we opened it: open it again
                    try:
                        current = os.path.samestat(os.fstat(fd), os.stat(path))
                    except FileNotFoundError:
                        current = False
                    if not current:
                        continue
                record = {"pid": os.getpid(), "host": socket.gethostname(),
                          "started": datetime.now().astimezone().isoformat(timespec="seconds"),
                          "command": " ".join(sys.argv)[:500]}
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(record).encode("utf-8"))
                os.fsync(fd)
                kept = True
            finally:
                if not kept:
                    os.close(fd)
            self.path, self._fd, self._remove_folder = path, fd, remove_folder
            if not owner.get("pid") or owner.get("pid") == os.getpid():
                return None
            self.taken_over = owner
            running = owner.get("host") == socket.gethostname() and _pid_alive(int(owner.get("pid") or 0))
            return (f"{run_dir}: took over the run folder from {_describe_owner(owner)}, which "
                    + ("no longer holds it" if running else "is no longer running")
                    + " (it ended without releasing the folder)")
        raise TrainingError(f"{path}: could not take the run folder's lock (it keeps being replaced)")

    def release(self) -> None:
        """Give the folder up (removing ``run.lock``); does nothing when not held."""
        if self._fd is None or self.path is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            if os.name != "nt" and os.path.samestat(os.fstat(fd), os.stat(self.path)):
                self.path.unlink()  # while still locked: whoever opens it next makes a fresh one
        os.close(fd)
        if os.name == "nt":
            with contextlib.suppress(OSError):
                self.path.unlink()
        if self._remove_folder:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only if nothing was written there


def _kind(path: Path) -> str:
    try:
        return kind_of(os.stat(path).st_mode)
    except OSError:
        return "a broken link"


def require_run_folder(run_dir: Path) -> None:
    """TrainingError unless ``run_dir`` holds a training run (:func:`run_folder_evidence`): ``--resume``
    at any other folder is refused before anything in it is locked, swept or read."""
    if not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: cannot resume: no such run folder")
    if run_folder_evidence(run_dir) is None:
        raise TrainingError(f"{run_dir}: cannot resume: not a training run folder (no {CONFIG_JSON}, {LOCK_FILE} or "
                            f"checkpoints in {STATE_DIR}/); nothing in it was touched")


def require_new_run_folder(run_dir: Path) -> None:
    """TrainingError when ``run_dir`` (``--out``) is a file, or a folder that holds files and no training run:
    a new run goes into a new or empty folder, or a run folder (which the lock and resume rules then
    guard), never among someone's own files."""
    if os.path.lexists(run_dir) and not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: is {_kind(run_dir)}, not a folder: give --out a new folder")
    if run_dir.is_dir() and any(run_dir.iterdir()) and run_folder_evidence(run_dir) is None:
        raise TrainingError(f"{run_dir}: holds files and is not a training run folder: train into a new or empty "
                            "folder (nothing in it was touched)")


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries (POSIX), to the disk."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder
    finally:
        os.close(fd)


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes the same file as ``source`` (a hard link), or a copy where the disk has no links."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def write_checkpoint(run_dir: Path, epoch: int, network: keras.Model, metadata: dict, optimizer_state: bytes,
                      state_json: str, history_csv: bytes, improved: bool) -> Path:
    """One epoch's files into ``epoch-N.partial/``, flushed, then renamed ``epoch-N/``: the rename is the commit.

    ``best.keras`` is this epoch's model when ``improved``, else the previous checkpoint's (linked).
    """
    state_dir = run_dir / STATE_DIR
    state_dir.mkdir(exist_ok=True)
    final = state_dir / checkpoint_name(epoch)
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    last = partial / LAST_MODEL
    network.save(last)
    write_model_metadata(last, metadata)
    if improved:
        best_source = last
    else:
        earlier = [folder / BEST_MODEL for n, folder in checkpoint_folders(state_dir) if n < epoch]
        best_source = next((p for p in earlier if p.is_file()), run_dir / BEST_MODEL)
    if best_source.is_file():
        _link_or_copy(best_source, partial / BEST_MODEL)
    (partial / OPTIMIZER_NPZ).write_bytes(optimizer_state)
    (partial / STATE_JSON).write_text(state_json, encoding="utf-8")
    (partial / HISTORY_CSV).write_bytes(history_csv)
    for path in partial.iterdir():
        _fsync(path)
    _fsync(partial)
    if final.exists():  # a checkpoint of this epoch from before a resume that fell back past it
        shutil.rmtree(final)
    os.rename(partial, final)
    _fsync(state_dir)
    return final


def publish(run_dir: Path, folder: Path) -> list[str]:
    """Make the run folder's ``last.keras``, ``best.keras``, ``history.csv`` and ``train_state/state.json``
    the checkpoint ``folder``'s; returns the published files that held something else before."""
    replaced = []
    for name, where in PUBLISHED_FILES:
        source, target = folder / name, run_dir / where / name
        if not source.is_file():
            continue
        if target.is_file():
            with contextlib.suppress(OSError):
                if os.path.samefile(source, target):
                    continue
            with contextlib.suppress(OSError):
                if not filecmp.cmp(source, target, shallow=False):
                    replaced.append(str(target))
        with atomic_path(target, suffix=target.suffix) as tmp:
            tmp.unlink()
            _link_or_copy(source, tmp)
    return replaced


def prune_checkpoints(state_dir: Path) -> None:
    """Keep the newest KEPT_CHECKPOINTS complete checkpoints; drop older ones, interrupted ones, and damaged
    ones that a newer complete checkpoint has replaced."""
    complete = checkpoint_folders(state_dir)
    for _, folder in complete[KEPT_CHECKPOINTS:]:
        shutil.rmtree(folder, ignore_errors=True)
    newest = complete[0][0] if complete else 0
    for path in list(state_dir.iterdir()):
        if path.name.endswith(PARTIAL_SUFFIX) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.endswith(DAMAGED_SUFFIX) and path.is_dir():
            match = CHECKPOINT_NAME.match(path.name[: -len(DAMAGED_SUFFIX)])
            if match and int(match.group(1)) <= newest:
                shutil.rmtree(path, ignore_errors=True)
    if complete:
        with contextlib.suppress(OSError):
            (state_dir / OPTIMIZER_NPZ).unlink()  # the single-file state of runs saved before epoch folders


#: The temporary names earlier versions wrote in a run folder (``.last.tmp.keras``, ``.best.meta.keras``):
#: removed by name, exactly these, never a pattern that could match a user's file.
_LEGACY_TEMPORARY = re.compile(
    r"^\.(last|best|history|state|optimizer|config|metrics|losses|test_predictions|pr_curve)"
    r"\.(tmp(\.(keras|csv|json|npz|png|jpg))?|meta\.keras)$")


def history_csv(rows: list[dict]) -> bytes:
    """``history.csv``'s bytes: one row an epoch. The multi-face columns (val_ap50) only for a run that has
    them: a single-face run's file is as it was."""
    text = io.StringIO()
    columns = HISTORY_CSV_COLUMNS if any(name in row for row in rows for name in MULTI_FACE_COLUMNS) else HISTORY_COLUMNS
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    return text.getvalue().encode("utf-8")


def inner_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The Adam inside a mixed-precision LossScaleOptimizer, so state moves between CPU and GPU runs."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def optimizer_state_bytes(optimizer: keras.optimizers.Optimizer) -> bytes:
    """``optimizer.npz``'s bytes: Adam's moments and step count, so a resume goes on where it stopped."""
    buffer = io.BytesIO()
    variables = inner_optimizer(optimizer).variables
    np.savez(buffer, **{f"v{i}": ops.convert_to_numpy(v) for i, v in enumerate(variables)})
    return buffer.getvalue()


def restore_optimizer(optimizer: keras.optimizers.Optimizer, model: keras.Model, checkpoint: Checkpoint) -> None:
    """Put back Adam's moments and step count, so the learning rate goes on where it stopped."""
    optimizer.build(model.trainable_variables)
    values = checkpoint.optimizer_values
    variables = inner_optimizer(optimizer).variables
    if len(values) != len(variables) or any(
        tuple(v.shape) != a.shape for v, a in zip(variables, values, strict=False)
    ):
        raise TrainingError(
            f"{checkpoint.folder / OPTIMIZER_NPZ}: the saved optimizer state does not fit this model "
            f"({len(values)} arrays for {len(variables)} variables)"
        )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def commit_epoch(run_dir: Path, network: keras.Model, optimizer: keras.optimizers.Optimizer, rows: list[dict], *,
                 best: tuple[float, float], best_epoch: int, improved: bool, alive: bool, extra: dict,
                 every_face: bool) -> None:
    """Write a finished epoch's files as one unit (see :func:`write_checkpoint`), then publish them.

    ``rows``: the history up to this epoch; ``best``: the best epoch's (AP50 for every face, else F1;
    mean IoU). Stopped anywhere in between (Ctrl-C, SIGTERM, SIGKILL, a full disk), the folder still holds
    the previous epoch's complete checkpoint, and resuming goes on from it; published files that lag
    behind are put right when the run ends or resumes (:func:`settle_checkpoints`).
    """
    row = rows[-1]
    best_row = next((r for r in rows if r["epoch"] == best_epoch), row)
    state = {**extra, "epoch": row["epoch"], "best_val_f1": best_row["val_f1"] if every_face else best[0],
             "best_val_iou": best[1], "best_epoch": best_epoch, "alive": alive, "history": rows,
             "optimizer_iterations": int(ops.convert_to_numpy(optimizer.iterations))}
    metadata = {"score_threshold": row["threshold"], "epoch": row["epoch"], "val_f1": row["val_f1"],
                "val_iou": row["val_iou"], "iou_threshold": 0.5}
    if every_face:
        state["best_val_ap50"] = best[0]
        metadata["val_ap50"] = row["val_ap50"]
    folder = write_checkpoint(run_dir, row["epoch"], network, metadata, optimizer_state_bytes(optimizer),
                              json.dumps(state, indent=2), history_csv(rows), improved)
    publish(run_dir, folder)
    prune_checkpoints(run_dir / STATE_DIR)


def saved_best(state: dict, every_face: bool) -> tuple[float, float]:
    """The best epoch's (AP50 for a multi-face run, else F1; mean IoU) from a checkpoint's state."""
    first = state.get("best_val_ap50" if every_face else "best_val_f1", -1.0)
    return float(first if first is not None else -1.0), float(state.get("best_val_iou", -1.0))


def remove_debris(run_dir: Path) -> list[int]:
    """Remove what interrupted writes left (temporary files, ``epoch-N.partial/``); returns those epochs' numbers.

    Only in a folder that holds a training run (:func:`run_folder_evidence`; elsewhere nothing is touched),
    and only files whose names carry our marker (:func:`training.core.files.is_temporary_name`) or are
    earlier versions' exact temporary names, and whose writer has ended.
    """
    if run_folder_evidence(run_dir) is None:
        return []
    state_dir = run_dir / STATE_DIR
    for folder in (run_dir, state_dir):
        if not folder.is_dir():
            continue
        remove_stale_temporaries(folder)
        for path in folder.iterdir():
            if _LEGACY_TEMPORARY.match(path.name) and not is_temporary_name(path.name) and path.is_file():
                with contextlib.suppress(OSError):
                    path.unlink()
    interrupted = []
    if state_dir.is_dir():
        for path in list(state_dir.iterdir()):
            if path.name.endswith(PARTIAL_SUFFIX) and path.is_dir():
                match = CHECKPOINT_NAME.match(path.name[: -len(PARTIAL_SUFFIX)])
                if match:
                    interrupted.append(int(match.group(1)))
                shutil.rmtree(path, ignore_errors=True)
    return sorted(interrupted)


def settle_checkpoints(run_dir: Path) -> dict | None:
    """After training (however it ended): drop an unfinished checkpoint and publish the newest complete one.

    Returns that checkpoint's state, the truth about how far the run got (None: no complete epoch).
    """
    remove_debris(run_dir)
    folders = checkpoint_folders(run_dir / STATE_DIR)
    if not folders:
        return None
    publish(run_dir, folders[0][1])
    return read_json_object(folders[0][1] / STATE_JSON) or None


class _DamagedFile(Exception):
    """A checkpoint file that cannot be used; the message names it and says what is wrong."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path


@dataclass
class Checkpoint:
    """A complete, readable checkpoint to resume from."""

    epoch: int
    folder: Path  # train_state/epoch-N (train_state itself for a run saved before epoch folders)
    last_model: Path
    state: dict
    optimizer_values: list[np.ndarray]


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


JSON_TYPE_NAMES = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
                    type(None): "null"}


def _state_problem(state: Any, epoch: int | None) -> str | None:
    """What makes a parsed ``state.json`` unusable, or None."""
    if not isinstance(state, dict):
        return f"not a training state (it holds {JSON_TYPE_NAMES.get(type(state), 'something else')}, not an object)"
    saved_epoch = state.get("epoch")
    if not is_whole(saved_epoch) or saved_epoch < 1:
        return "not a training state (no epoch number in it)"
    if epoch is not None and saved_epoch != epoch:
        return f"belongs to epoch {saved_epoch}, not {epoch}"
    history = state.get("history")
    if not isinstance(history, list) or len(history) != saved_epoch or not all(
        isinstance(row, dict) and row.get("epoch") == i + 1 and all(_is_number(row.get(k)) for k in HISTORY_COLUMNS)
        for i, row in enumerate(history)
    ):
        return f"its history does not hold the figures of epochs 1 to {saved_epoch}"
    for key in ("best_val_f1", "best_val_iou"):
        if key in state and not _is_number(state[key]):
            return f"not a training state ({key} is {state[key]!r})"
    for key in ("best_epoch", "batches_per_epoch", "optimizer_iterations"):
        if key in state and not (is_whole(state[key]) and state[key] >= 0):
            return f"not a training state ({key} is {state[key]!r})"
    return None


def _read_optimizer_state(path: Path) -> list[np.ndarray]:
    """Adam's saved arrays (``v0``, ``v1``, ...), every byte read, or :class:`_DamagedFile`."""
    if not path.is_file():
        raise _DamagedFile(path, "missing")
    if not zipfile.is_zipfile(path):
        raise _DamagedFile(path, "not an optimizer state (not a NumPy .npz archive: damaged, truncated or overwritten)")
    try:
        with np.load(path, allow_pickle=False) as saved:
            names = set(saved.files)
            if names != {f"v{i}" for i in range(len(names))}:
                raise _DamagedFile(path, "not an optimizer state (its arrays are not v0, v1, ...)")
            return [np.array(saved[f"v{i}"]) for i in range(len(names))]
    except _DamagedFile:
        raise
    except Exception as exc:  # zipfile, zlib and numpy raise many kinds for a damaged member
        raise _DamagedFile(path, f"damaged or truncated optimizer state ({type(exc).__name__}: {exc})") from exc


def _check_model_file(path: Path) -> None:
    """A ``.keras`` file is a zip archive with a config and weights whose every member passes its checksum."""
    if not path.is_file():
        raise _DamagedFile(path, "missing")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            broken = archive.testzip()
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, OSError...
        raise _DamagedFile(path, f"damaged or truncated model file, not a complete .keras archive ({exc})") from exc
    if broken is not None:
        raise _DamagedFile(path, f"damaged model file ({broken} inside it fails its checksum)")
    if not {"config.json", "model.weights.h5"} <= names:
        raise _DamagedFile(path, "not a Keras model file (no config.json and model.weights.h5 inside)")


def _read_checkpoint(folder: Path, epoch: int | None, last_model: Path) -> Checkpoint:
    """Every file of one checkpoint read and checked (the model only as an archive: it loads later)."""
    state_path = folder / STATE_JSON
    if not os.path.lexists(state_path):
        raise _DamagedFile(state_path, "missing")
    state = read_json(state_path, max_bytes=64 * 2**20, error=_DamagedFile, what="training state")
    problem = _state_problem(state, epoch)
    if problem:
        raise _DamagedFile(state_path, problem)
    values = _read_optimizer_state(folder / OPTIMIZER_NPZ)
    _check_model_file(last_model)
    return Checkpoint(epoch=state["epoch"], folder=folder, last_model=last_model, state=state,
                       optimizer_values=values)


def find_checkpoint(run_dir: Path, emit: EventCallback) -> Checkpoint:
    """The newest complete, undamaged checkpoint of ``run_dir``, published; says what it passed over and why.

    A damaged newer checkpoint is renamed ``epoch-N.damaged`` (removed once that epoch is trained
    again); an interrupted one (``epoch-N.partial``) is removed.
    """
    state_dir = run_dir / STATE_DIR
    interrupted = remove_debris(run_dir)
    candidates = resume_checkpoints(run_dir)  # the rule the app's Resume button follows too
    if not candidates:
        raise TrainingError(
            f"{run_dir}: cannot resume: no saved training state (no finished epoch's checkpoint in {state_dir}); "
            "a run can be resumed once it has finished at least one epoch"
        )
    damaged: list[tuple[Path, _DamagedFile]] = []
    checkpoint = None
    for epoch, folder, last_model in candidates:
        try:
            checkpoint = _read_checkpoint(folder, epoch, last_model)
            break
        except _DamagedFile as exc:
            damaged.append((folder, exc))
    if checkpoint is None:
        older = ("" if len(damaged) == 1 else
                 f" (the {len(damaged) - 1} older checkpoint{'s are' if len(damaged) > 2 else ' is'} damaged too)")
        raise TrainingError(f"{damaged[0][1]}; cannot resume {run_dir}: no older complete checkpoint to fall back "
                            f"to{older}")
    for folder, exc in damaged:
        aside = folder.with_name(folder.name + DAMAGED_SUFFIX)
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(folder, aside)
        emit(warning_event(f"{exc}; resuming from epoch {checkpoint.epoch}, the newest "
                           f"complete checkpoint, instead (the damaged one is kept as {aside})"))
    for epoch in interrupted:
        if epoch > checkpoint.epoch:
            emit(warning_event(f"the checkpoint of epoch {epoch} was interrupted before it was "
                               f"complete and is removed; resuming from epoch {checkpoint.epoch}"))
    if checkpoint.folder != state_dir:
        for path in publish(run_dir, checkpoint.folder):
            emit(warning_event(f"{path} did not match the checkpoint of epoch {checkpoint.epoch}: "
                               f"put back from {checkpoint.folder}"))
    return checkpoint


def load_network(checkpoint: Checkpoint) -> keras.Model:
    """The checkpoint's network, ready to train on: a per-cell backbone's is built anew with the saved weights
    (:func:`training.model.build.rebuilt`), so the training outputs added to it cannot clash with saved names."""
    from training.model.build import backbone_of, rebuilt

    try:
        network = keras.models.load_model(checkpoint.last_model)
        return rebuilt(network) if BACKBONES[backbone_of(network)].grid else network
    except Exception as exc:  # an archive that passed its checksums but still will not load: say which and why
        raise TrainingError(f"{checkpoint.last_model}: cannot load the checkpoint's model "
                            f"({type(exc).__name__}: {exc})") from exc

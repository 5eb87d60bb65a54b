"""Atomic file writes: a label, a picture or a run file is either the old one or the new one, never half.

A write goes to a hidden temporary file in the same folder (so the rename stays on one file
system), is flushed and fsynced, then replaces the target with ``os.replace``. A failed write
(disk full, permission, a signal) removes the temporary file and leaves the old target untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".facetracker-"
TEMP_SUFFIX = ".part"


def _fsync_folder(folder: Path) -> None:
    """Makes the rename itself durable where the OS allows it (POSIX; a no-op on Windows)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path beside ``target``; on success it replaces ``target``, on error it is removed.

    For writers that insist on a file name (``cv2.imwrite`` picks the format from the suffix,
    Keras wants ``.keras``): pass ``suffix`` and write to the yielded path.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are private (0600); O_EXCL with mode 0666 gets what open() would (umask).
    while True:
        tmp = target.parent / f"{TEMP_PREFIX}{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``target`` atomically (see the module's docstring)."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()


def atomic_write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Writes ``text`` to ``target`` atomically (see the module's docstring)."""
    atomic_write_bytes(target, text.encode(encoding))


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes temporary files that an interrupted atomic write left in ``folder``; returns them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.glob(f"{TEMP_PREFIX}*"):
        if path.is_file() and TEMP_SUFFIX in path.name:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed

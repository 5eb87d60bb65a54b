"""Atomic file writes: a label, a picture or a run file is either the old one or the new one, never half.

A write goes to a hidden temporary file in the same folder (so the rename stays on one file
system), is flushed and fsynced, then replaces the target with ``os.replace``. A failed write
(disk full, permission, a signal) removes the temporary file and leaves the old target untouched.
A folder of many files (a converted dataset, demo data) is built the same way: in a hidden staging
folder beside its place, renamed into place when complete (:func:`staging_folder`).

Every temporary name carries our marker (``.facetracker-NAME.PID-RANDOM.part``): what a killed
process left is recognised by it and removed by the next run (:func:`remove_stale_temporaries`,
:func:`remove_stale_staging`), only when its owner is no longer running, and nothing without the
marker is ever removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".facetracker-"
TEMP_SUFFIX = ".part"
#: The file inside a staging folder that says it is ours and whose (pid, host).
STAGING_MARKER = ".facetracker-staging.json"
MAX_NAME_BYTES = 255  # a file name's limit on Linux, macOS and Windows file systems
_OWNER = re.compile(r"\.(\d+)-[0-9a-f]+" + re.escape(TEMP_SUFFIX))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        try:
            return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's process
        return True
    return True


def temporary_name(target_name: str, suffix: str = "") -> str:
    """A hidden name beside ``target_name`` with our marker and this process's id, at most
    MAX_NAME_BYTES long (a long target name is cut: a 250-character picture name still saves)."""
    token = f".{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}{suffix}"
    room = MAX_NAME_BYTES - len(os.fsencode(TEMP_PREFIX + token))
    name = target_name
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f"{TEMP_PREFIX}{name}{token}"


def is_temporary_name(name: str) -> bool:
    """Whether a file name carries our temporary marker (``.facetracker-...part``)."""
    return name.startswith(TEMP_PREFIX) and TEMP_SUFFIX in name[len(TEMP_PREFIX):] and name != STAGING_MARKER


def _owner_gone(name: str) -> bool:
    """Whether the process that made this temporary name has ended (names from before the pid was
    in them count as ended: they are only ever found after their writer stopped)."""
    match = _OWNER.search(name)
    if match is None:
        return True
    pid = int(match.group(1))
    return pid != os.getpid() and not pid_alive(pid)


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
        tmp = target.parent / temporary_name(target.name, suffix)
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


def remove_stale_temporaries(folder: str | os.PathLike, target_name: str | None = None) -> list[Path]:
    """Deletes the temporary files that interrupted atomic writes left in ``folder`` (those of ``target_name``
    alone when given); returns them. Only files with our marker whose writer has ended are touched."""
    removed: list[Path] = []
    folder = Path(folder)
    prefix = TEMP_PREFIX + (f"{target_name}." if target_name is not None else "")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and is_temporary_name(entry.name)):
            continue
        try:
            regular = entry.is_file(follow_symlinks=False)
        except OSError:
            continue
        if regular and _owner_gone(entry.name):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def remove_stale_staging(parent: str | os.PathLike, target_name: str) -> list[Path]:
    """Deletes the staging folders that a killed :func:`staging_folder` for ``parent / target_name`` left:
    only folders with our marker in their name and our marker file inside, made on this machine by a
    process that has ended. Returns them."""
    removed: list[Path] = []
    prefix = f"{TEMP_PREFIX}{target_name}."
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(prefix) and is_temporary_name(e.name)]
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        from training.core.inputs import read_json_object

        owner = read_json_object(Path(entry.path) / STAGING_MARKER)
        if owner.get("host") != socket.gethostname() or owner.get("target") != target_name:
            continue  # not provably ours, or another machine's: left alone
        pid = owner.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool) and pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def staging_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A hidden staging folder beside ``out`` that becomes ``out`` (absent, or an empty folder) when the
    block ends without error, and disappears when it fails or is interrupted. So a dataset folder
    appears complete or not at all; one left by a killed process is removed on the next call for
    the same ``out`` (:func:`remove_stale_staging`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out.parent, out.name)
    staging = out.parent / temporary_name(out.name)
    staging.mkdir()  # not tempfile.mkdtemp: its 0o700 would become the dataset folder's permissions
    marker = staging / STAGING_MARKER
    try:
        marker.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "target": out.name}),
                          encoding="utf-8")
        yield staging
        marker.unlink()
        if out.is_dir() and not out.is_symlink():
            out.rmdir()  # empty (the caller checked before the work began); a folder with files stays: error
        os.replace(staging, out)
        _fsync_folder(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

"""One guarded way in for every file FaceTracker reads that came from someone else.

Label files, annotation files of other tools, class lists, model sidecars, a run's settings: any of them
can be a named pipe (which blocks a plain ``open`` forever), a device, a file of gigabytes, JSON nested a
hundred thousand levels deep or holding a 5,000-digit number, text in another encoding, or a picture
name that leads out of the dataset (``../../home/x.jpg``, an absolute path, a link). Every reader goes
through here, so each of those ends as one error naming the file and the problem, raised as the
caller's own error type (``error=DataError``, ``ModelFileError``...): the CLI prints it as one line,
the app shows it.

Plain Python (no NumPy, Qt or TensorFlow): the app's settings and the run-folder code use it too.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: JSON nesting deeper than this is refused (labelme, COCO and our own files nest 3 to 6 levels).
MAX_JSON_DEPTH = 64
#: An integer written with more digits than this is refused (Python's own limit, 4300, gives a message
#: without the file's name; no coordinate or id needs more than 20).
MAX_NUMBER_DIGITS = 1000
#: Default size limits, checked before a byte is read.
MAX_SMALL_FILE_BYTES = 16 * 2**20  # settings, sidecars, class lists, a run's JSON files
MAX_ANNOTATION_BYTES = 2 * 2**30  # a COCO file of a large dataset (COCO 2017's train annotations: 448 MB)


class InputError(ValueError):
    """A file that cannot be read as what it should be; ``str()`` names the file and the problem."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{shown(self.path)}: {message}")


ErrorType = Callable[[Path, str], Exception]
Warn = Callable[[str], None]


def shown(path: str | os.PathLike) -> str:
    """A path as a message can print it: bytes that are not UTF-8 in a file name (kept by Python as
    surrogates) are written ``\\udcff``, so printing the message never fails on them."""
    return os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")


def has_undecodable_name(path: str | os.PathLike) -> bool:
    """Whether a file name holds bytes that are not UTF-8 (such a name cannot be written into a label)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file"))


def kind_of(mode: int) -> str:
    """What a file is, in words, from its ``st_mode``."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def is_regular_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (a link to one counts); never opens it, never raises."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_regular_file(path: str | os.PathLike, *, error: ErrorType = InputError,
                       what: str = "file") -> os.stat_result:
    """The file's ``os.stat``; ``error`` when it is missing, unreadable, or not a regular file (a named
    pipe, a device, a socket, a folder): those are refused before anything opens them."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(path, f"no such {what}") from None
    except (OSError, ValueError) as exc:
        raise error(path, f"cannot read the {what}: {_reason(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(path, f"is {kind_of(info.st_mode)}, not a regular {what}: FaceTracker reads regular files only")
    return info


def read_bytes(path: str | os.PathLike, *, max_bytes: int = MAX_SMALL_FILE_BYTES, error: ErrorType = InputError,
               what: str = "file") -> bytes:
    """A regular file's bytes, at most ``max_bytes`` of them (a larger file is refused before it is read).

    Opened with ``O_NONBLOCK``, so a file swapped for a named pipe after the check is refused too,
    never waited on.
    """
    path = Path(path)
    info = check_regular_file(path, error=error, what=what)
    if info.st_size > max_bytes:
        raise error(path, f"too large for a {what}: {_size(info.st_size)}, at most {_size(max_bytes)}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:
        raise error(path, f"cannot read the {what}: {_reason(exc)}") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise error(path, f"is {kind_of(opened.st_mode)}, not a regular {what}: FaceTracker reads regular "
                              "files only")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise error(path, f"cannot read the {what}: {_reason(exc)}") from None
    finally:
        os.close(fd)
    if total > max_bytes:  # it grew while being read
        raise error(path, f"too large for a {what}: over {_size(max_bytes)}")
    return b"".join(chunks)


def decode_text(path: str | os.PathLike, data: bytes, *, error: ErrorType = InputError, what: str = "file",
                prefix: str = "") -> str:
    """``data`` as UTF-8 text (a byte-order mark is dropped); ``error`` naming the file and the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(Path(path), f"{prefix}the file is not UTF-8 text (byte 0x{bad} on line {line}): save the "
                                f"{what} as UTF-8") from None


def read_text(path: str | os.PathLike, *, max_bytes: int = MAX_SMALL_FILE_BYTES, error: ErrorType = InputError,
              what: str = "file") -> str:
    """A regular file's text (UTF-8), guarded as :func:`read_bytes`; a file in another encoding is an
    ``error`` naming it."""
    return decode_text(path, read_bytes(path, max_bytes=max_bytes, error=error, what=what), error=error, what=what)


class _NumberTooLong(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def parse_json(text: str, *, max_depth: int = MAX_JSON_DEPTH, max_digits: int = MAX_NUMBER_DIGITS) -> Any:
    """``json.loads`` with nesting and number length bounded; ValueError with a short reason otherwise."""

    def whole(digits: str) -> int:
        if len(digits.lstrip("-")) > max_digits:
            raise _NumberTooLong(len(digits.lstrip("-")))
        return int(digits)

    def real(digits: str) -> float:
        if len(digits) > max_digits + 20:
            raise _NumberTooLong(len(digits))
        return float(digits)

    try:
        value = json.loads(text, parse_int=whole, parse_float=real)
    except _NumberTooLong as exc:
        raise ValueError(f"a number written with {exc.digits} digits (at most {max_digits})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError(f"its JSON is nested too deeply (more than {max_depth} levels)") from None
    except ValueError as exc:  # anything else the parser refuses
        raise ValueError(f"not valid JSON: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if _deeper_than(value, max_depth):
        raise ValueError(f"its JSON is nested too deeply (more than {max_depth} levels)")
    return value


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether lists and objects nest more than ``max_depth`` levels (level by level, no recursion)."""
    level, depth = [value], 0
    while level:
        level = [v for v in level if isinstance(v, (dict, list))]
        if not level:
            return False
        depth += 1
        if depth > max_depth:
            return True
        following = []
        for container in level:
            following.extend(container.values() if isinstance(container, dict) else container)
        level = following
    return False


def read_json(path: str | os.PathLike, *, max_bytes: int = MAX_SMALL_FILE_BYTES, max_depth: int = MAX_JSON_DEPTH,
              max_digits: int = MAX_NUMBER_DIGITS, error: ErrorType = InputError, what: str = "file") -> Any:
    """A JSON file's value, read through :func:`read_text`; any problem (not a regular file, too large,
    not UTF-8, not JSON, nested deeper than ``max_depth``, a number longer than ``max_digits``) is an
    ``error`` naming the file."""
    data = read_bytes(path, max_bytes=max_bytes, error=error, what=what)
    text = decode_text(path, data, error=error, what=what, prefix="not valid JSON: ")
    try:
        return parse_json(text, max_depth=max_depth, max_digits=max_digits)
    except ValueError as exc:
        raise error(Path(path), str(exc)) from None


def read_json_object(path: str | os.PathLike, *, max_bytes: int = MAX_SMALL_FILE_BYTES) -> dict:
    """A JSON file's object, or ``{}`` when it is missing, unreadable, not a regular file or not an
    object (never raises, never blocks): for files whose absence is an answer (a lock's owner record)."""
    try:
        value = read_json(path, max_bytes=max_bytes)
    except InputError:
        return {}
    return value if isinstance(value, dict) else {}


def is_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path``, links followed, lies in the folder ``root`` (links followed too)."""
    try:
        resolved, inside = Path(path).resolve(), Path(root).resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    return resolved == inside or inside in resolved.parents


def resolve_inside(root: str | os.PathLike, name: str, *, where: str | os.PathLike, allow_outside: bool = False,
                   error: ErrorType = InputError, warn: Warn | None = None, base: str | os.PathLike | None = None
                   ) -> Path:
    """The file a label or an annotation file (``where``) names, ``name`` taken relative to ``base``
    (default ``root``), refused when it lies outside the source folder ``root``.

    Outside means an absolute path, ``..`` steps that climb out, or a link that points out; the
    error names the annotation file and the picture. ``allow_outside`` (``convert --allow-outside``)
    lets it through, and ``warn`` is told each time. A name with a NUL byte is refused too.
    """
    root, where = Path(root), Path(where)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise error(where, f"picture name {_short(name)} is not a file name")
    candidate = Path(base if base is not None else root) / name
    try:
        resolved, inside = candidate.resolve(), root.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a loop of links, a name too long
        raise error(where, f"picture {_short(name)}: cannot follow the path ({_reason(exc)})") from None
    if resolved == inside or inside in resolved.parents:
        return candidate
    how = ("an absolute path" if Path(name).is_absolute() else
           "it climbs out with .." if ".." in Path(name).parts else "a link pointing out of it")
    message = (f"picture {_short(name)} lies outside the source folder {shown(root)} ({how}: {shown(resolved)})")
    if not allow_outside:
        raise error(where, f"{message}; nothing is read from outside the source unless you ask: move the "
                           "pictures into the source folder, or pass --allow-outside")
    if warn is not None:
        warn(f"{shown(where)}: {message}; read anyway (--allow-outside)")
    return candidate


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value if len(value) <= 80 else value[:77] + "...")
    return shown(text)


def _size(count: int) -> str:
    if count >= 2**30:
        return f"{count / 2**30:.1f} GB"
    if count >= 2**20:
        return f"{count / 2**20:.1f} MB"
    if count >= 2**10:
        return f"{math.ceil(count / 2**10)} KB"
    return f"{count} bytes"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

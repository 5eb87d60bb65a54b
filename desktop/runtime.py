"""What runs a ``.keras`` model in the window's process: a light runtime's copy of it, made once in a child.

TensorFlow costs the window about 1 GB of memory and seconds of start-up; LiteRT runs the same network
in a few megabytes, as fast or faster on a CPU. So when the Detect tab is given a ``.keras`` model (or
starts the pretrained face detector), it runs a LiteRT copy (ONNX Runtime where LiteRT has no wheel:
macOS on Intel): made once, in a child process, by the existing export (:func:`training.inference.export.export_model`:
the copy is written only when it gives the ``.keras`` model's score and boxes within 1e-4 on real
pictures), and kept for the next time:

* a user's model beside it, ``DIR/.facetracker-cache/NAME-KEY-FORMAT/NAME.tflite`` (+ its ``.json``), or
  in the user's cache folder when that folder cannot be written;
* the pretrained detector in the user's cache folder (:func:`user_cache_dir`).

``KEY`` is the start of the model file's SHA-256 (the pretrained detector's: of its weights and code), so
a changed model finds no copy and gets a new one, and the older copies of that model are removed. Each
copy is built in a staging folder that is renamed into place whole (:func:`training.core.files.staging_folder`):
a killed export leaves no half copy, and its debris goes the next time.

TensorFlow still runs a model in the window when it is asked for (``facetracker --runtime tensorflow``),
when an export child saw a usable GPU here (``auto``: GPU inference stays as it was), and as the fallback
when no copy can be made (no light runtime installed, an export that fails): the model still detects, and
the status line says which runtime runs it and why. That fallback is TensorFlow in this process, imported
behind :func:`training.core.device.import_tensorflow`'s lock, rather than a TensorFlow child fed frame by frame:
it is the path the app had (tested, the same answers), and a failed export is rare enough that a second
inference protocol between processes is not worth its latency and faults.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.core import SIDECAR_SUFFIX, ModelFileError

#: What may run a ``.keras`` model in the window: ``auto`` (LiteRT, else ONNX Runtime; TensorFlow when an
#: export child saw a usable GPU), one light runtime, or TensorFlow itself.
RUNTIMES = ("auto", "litert", "onnx", "tensorflow")
#: The app's flag that runs the export child (a PyInstaller bundle has no ``python -m``).
CHILD_FLAG = "--runtime-child"
#: What the child is given instead of a model file to export the pretrained detector.
PRETRAINED_ARG = ":pretrained"
#: The folder beside a model that holds its light copies.
CACHE_FOLDER = ".facetracker-cache"
#: An environment variable that moves the user's cache folder (tests, portable use).
CACHE_ENV = "FACETRACKER_CACHE"
KEY_DIGITS = 16
SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx"}
RUNTIME_NAMES = {"tflite": "LiteRT", "onnx": "ONNX Runtime"}
#: An export child that runs longer than this is stopped and the model runs in TensorFlow instead.
EXPORT_TIMEOUT_S = 600.0
STDERR_TAIL_LINES = 20


class PrepareError(RuntimeError):
    """No light copy could be made or opened; ``str()`` says why in one line. ``lasting``: the export itself
    failed (it would fail again for the same model), not the process around it (killed, could not start)."""

    def __init__(self, message: str, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting


class LoadCancelled(Exception):
    """The load was abandoned (another model was chosen, the window closed); its export child was stopped."""


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (TensorFlow stays out)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def light_format(requested: str = "auto") -> str | None:
    """The format of the light copy to make: ``"tflite"`` (LiteRT installed), ``"onnx"`` (ONNX Runtime
    and the ONNX exporter installed), or None (neither, or ``requested`` names one that is missing)."""
    litert = _installed("ai_edge_litert")
    onnx = _installed("onnxruntime") and _installed("tf2onnx") and _installed("onnx")
    if requested == "litert":
        return "tflite" if litert else None
    if requested == "onnx":
        return "onnx" if onnx else None
    return "tflite" if litert else "onnx" if onnx else None


def missing_runtime_text(requested: str = "auto") -> str:
    """Why there is no light copy when :func:`light_format` says None, with what to install."""
    if requested == "onnx":
        return 'ONNX Runtime is not installed (pip install "facetracker[onnx]")'
    if requested == "litert":
        return "LiteRT is not installed (pip install ai-edge-litert)"
    return "no light runtime is installed (pip install ai-edge-litert, or onnxruntime where LiteRT has no wheel)"


def user_cache_dir() -> Path:
    """The user's cache folder for FaceTracker (``$FACETRACKER_CACHE`` when set): ``~/.cache/facetracker``
    (``$XDG_CACHE_HOME``), ``~/Library/Caches/FaceTracker``, ``%LOCALAPPDATA%\\FaceTracker\\Cache``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else Path.home() / "AppData" / "Local") / "FaceTracker" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "FaceTracker"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "facetracker"


def _sha256(paths: list[Path], extra: bytes = b"") -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
    digest.update(extra)
    return digest.hexdigest()


def pretrained_weights_path() -> Path:
    """Where the pretrained detector's weights are (as :func:`training.model.blazeface.weights_path` says, which
    the window cannot import: it loads Keras): beside the code in a checkout, in the bundle's folder."""
    name = Path("assets") / "blazeface" / "face_detection_full_range.npz"
    candidates = [Path(__file__).resolve().parents[1] / name]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / name)
    return next((c for c in candidates if c.is_file()), candidates[-1])


def _app_version() -> str:
    try:
        return importlib.metadata.version("facetracker")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _code_files(*modules: str) -> tuple[list[Path], str]:
    """The source files of ``modules`` that can be read (a checkout), and what stands for the rest (the
    app's version: a bundle has no source beside it)."""
    found, missing = [], []
    for module in modules:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is not None and origin.suffix == ".py" and origin.is_file():
            found.append(origin)
        else:
            missing.append(module)
    return found, (f"{','.join(missing)}@{_app_version()}" if missing else "")


@dataclass(frozen=True)
class ModelSource:
    """What a light copy is made from: a user's ``.keras`` file, or the pretrained detector (``path`` None).

    ``key`` names its contents: the file's SHA-256 (the pretrained detector: its weights, the code that
    builds it and the Keras version), cut to :data:`KEY_DIGITS` hex digits.
    """

    path: Path | None
    name: str
    key: str

    @property
    def label(self) -> str:
        return self.path.name if self.path is not None else "the pretrained face detector"


def keras_source(path: str | Path) -> ModelSource:
    """A ``.keras`` file as a copy's source, after the checks that need no TensorFlow.

    Raises:
        ModelFileError: not a ``.keras`` model file (missing, a folder, an ``.h5``, not a Keras archive).
    """
    from training.inference import check_keras_file

    path = check_keras_file(Path(path))
    try:
        key = _sha256([path])
    except OSError as exc:
        raise ModelFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    return ModelSource(path, path.stem, key[:KEY_DIGITS])


def pretrained_source() -> ModelSource:
    """The pretrained face detector as a copy's source.

    Raises:
        FileNotFoundError: its weights are not there (a broken install); the message names the file.
    """
    weights = pretrained_weights_path()
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: BlazeFace weights not found (they ship in the repository's assets/)")
    code, stand_in = _code_files("training.model.blazeface", "training.model.build", "training.inference.pretrained")
    try:
        keras_version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        keras_version = "?"
    key = _sha256([weights, *code], f"{stand_in}|keras {keras_version}".encode())
    return ModelSource(None, "blazeface", key[:KEY_DIGITS])


@dataclass(frozen=True)
class LightCopy:
    """Where a source's copy in one format lives: ``folder`` (the whole entry) and ``model`` inside it."""

    folder: Path
    model: Path
    format: str

    def complete(self) -> bool:
        """Both files there (the entry appears whole or not at all; this guards against hands)."""
        sidecar = self.model.with_name(self.model.name + SIDECAR_SUFFIX)
        return self.model.is_file() and sidecar.is_file()


def cache_roots(source: ModelSource) -> list[Path]:
    """The folders that may hold a source's copies, in the order they are tried: beside a user's model,
    then the user's cache folder."""
    roots = [source.path.parent / CACHE_FOLDER] if source.path is not None else []
    return [*roots, user_cache_dir() / ("models" if source.path is not None else "pretrained")]


def copy_in(root: Path, source: ModelSource, fmt: str) -> LightCopy:
    folder = root / f"{source.name}-{source.key}-{fmt}"
    return LightCopy(folder, folder / f"{source.name}{SUFFIXES[fmt]}", fmt)


def find_copy(source: ModelSource, fmt: str) -> LightCopy | None:
    """The source's complete copy in ``fmt``, wherever it was kept; None when there is none yet."""
    for root in cache_roots(source):
        copy = copy_in(root, source, fmt)
        if copy.complete():
            return copy
    return None


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".facetracker-probe-"):
            pass
        return True
    except OSError:
        return False


def writable_root(source: ModelSource) -> Path:
    """The first of :func:`cache_roots` this process can write in.

    Raises:
        PrepareError: none can be written (a read-only home as well as a read-only model folder).
    """
    roots = cache_roots(source)
    for root in roots:
        if _writable(root):
            return root
    raise PrepareError(f"no folder to keep its copy in can be written ({', '.join(str(r) for r in roots)})")


def remove_other_copies(root: Path, source: ModelSource, keep: LightCopy) -> list[Path]:
    """Remove the copies of earlier versions of the same model file in ``root`` (its name, another key):
    the model changed, so they will never be used again. Only entries named as ours are touched."""
    removed = []
    prefix = f"{source.name}-"
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            rest = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
            key, _, fmt = rest.partition("-")
            if (entry != keep.folder and len(key) == KEY_DIGITS and fmt in SUFFIXES and entry.is_dir()
                    and not entry.is_symlink()):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def _failure_record(copy: LightCopy) -> Path:
    return copy.folder.with_name(copy.folder.name + ".failed.json")


def known_failure(source: ModelSource, fmt: str) -> str | None:
    """Why an earlier export of this very source (same key, same app version) failed, or None: it is not
    tried again on every start (the model runs in TensorFlow meanwhile, which says so)."""
    for root in cache_roots(source):
        record = _failure_record(copy_in(root, source, fmt))
        try:
            value = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(value, dict) and value.get("version") == _app_version() and isinstance(value.get("message"), str):
            return value["message"]
    return None


def _remember_failure(copy: LightCopy, message: str) -> None:
    from training.core import atomic_write_text

    with contextlib.suppress(OSError):
        atomic_write_text(_failure_record(copy), json.dumps({"message": message, "version": _app_version()}) + "\n")


# ----------------------------------------------------------------------------- what this machine has


def _machine_record() -> Path:
    return user_cache_dir() / "machine.json"


def _visible_devices() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def recorded_tensorflow_device() -> str | None:
    """Where TensorFlow computed in the last export child ("GPU: <name>" or "CPU (<model>)"), when that
    child ran with the GPUs this process sees; None when no child has said."""
    try:
        value = json.loads(_machine_record().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict) or value.get("cuda_visible_devices") != _visible_devices():
        return None
    device = value.get("tensorflow_device")
    return device if isinstance(device, str) else None


def remember_tensorflow_device(device: str) -> None:
    from training.core import atomic_write_text

    with contextlib.suppress(OSError):
        user_cache_dir().mkdir(parents=True, exist_ok=True)
        atomic_write_text(_machine_record(), json.dumps(
            {"tensorflow_device": device, "cuda_visible_devices": _visible_devices()}) + "\n")


def choose_runtime(requested: str, fmt: str | None, tensorflow_device: str | None) -> tuple[str, str | None]:
    """``("light", None)`` or ``("tensorflow", why)``: what runs a ``.keras`` model in the window.

    ``requested`` is one of :data:`RUNTIMES`; ``fmt`` what :func:`light_format` found; ``tensorflow_device``
    what an export child saw (:func:`recorded_tensorflow_device`). ``why`` is None when TensorFlow is what
    was meant (asked for, or ``auto`` on a machine with a usable GPU), else the reason it stands in.
    """
    if requested not in RUNTIMES:
        raise ValueError(f"unknown runtime {requested!r}; choose one of {', '.join(RUNTIMES)}")
    if requested == "tensorflow":
        return "tensorflow", None
    if requested == "auto" and tensorflow_device and tensorflow_device.startswith("GPU"):
        return "tensorflow", None
    if fmt is None:
        return "tensorflow", missing_runtime_text(requested)
    return "light", None


# ----------------------------------------------------------------------------- the export child


def child_command(source: ModelSource, folder: Path, fmt: str) -> list[str]:
    """The command that makes ``source``'s copy in ``folder`` (see :mod:`desktop.runtime_child`)."""
    args = [str(source.path) if source.path is not None else PRETRAINED_ARG, str(folder), fmt]
    if getattr(sys, "frozen", False):
        return [sys.executable, CHILD_FLAG, *args]
    return [sys.executable, "-m", "desktop.runtime_child", *args]


def _stop(process: subprocess.Popen) -> None:
    """Stop a child: politely, then for good (what it left behind is swept by the next export)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(2.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5.0)


def run_export_child(command: list[str], *, should_stop: Callable[[], bool] = lambda: False,
                     timeout_s: float = EXPORT_TIMEOUT_S) -> dict:
    """Run the export child to its end and return its ``end`` event.

    Polls ``should_stop`` ten times a second; when it says yes, the child is stopped and
    :class:`LoadCancelled` raised.

    Raises:
        ModelFileError: the child found the model file unusable (not a FaceTracker detector, say).
        PrepareError: the export failed, the child crashed, was killed, or ran past ``timeout_s``.
        LoadCancelled: see above.
    """
    from desktop.child_process import parse_event_line
    from training.core import END, ERROR

    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                       env=env, creationflags=flags)
        except OSError as exc:
            raise PrepareError(f"the export process could not start ({exc})") from exc
        lines: queue.Queue[bytes | None] = queue.Queue()

        def read() -> None:
            for raw in process.stdout:  # type: ignore[union-attr]
                lines.put(raw)
            lines.put(None)

        threading.Thread(target=read, name="facetracker-export-reader", daemon=True).start()
        events: dict[str, dict] = {}
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if should_stop():
                    _stop(process)
                    raise LoadCancelled()
                if time.monotonic() > deadline:
                    _stop(process)
                    raise PrepareError(f"the export took longer than {timeout_s / 60:.0f} minutes and was stopped")
                try:
                    raw = lines.get(timeout=0.1)
                except queue.Empty:
                    continue
                if raw is None:
                    break
                event = parse_event_line(raw.decode("utf-8", "replace"))
                if event is not None:
                    events[event["event"]] = event
            code = process.wait()
        finally:
            if process.poll() is None:
                _stop(process)
            if process.stdout is not None:
                process.stdout.close()
        if END in events and code == 0:
            return events[END]
        if ERROR in events:
            error = events[ERROR]
            if isinstance(error.get("model_file_error"), str) and isinstance(error.get("model"), str):
                raise ModelFileError(error["model"], error["model_file_error"])
            raise PrepareError(str(error.get("message") or "the export failed"), lasting=True)
        stderr.seek(0)
        tail = [line for line in stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        how = f"was killed (signal {-code})" if code < 0 else f"exited with code {code}"
        last = f": {tail[-1].strip()}" if tail else ""
        raise PrepareError(f"the export process {how} before it finished{last}")


# ----------------------------------------------------------------------------- loading


Progress = Callable[[str], None]


def prepare_copy(source: ModelSource, fmt: str, *, on_progress: Progress = lambda _text: None,
                 should_stop: Callable[[], bool] = lambda: False) -> LightCopy:
    """``source``'s copy in ``fmt``: the one kept from before, else a new one made by the export child.

    Raises what :func:`run_export_child` raises, and PrepareError when no folder can be written.
    """
    found = find_copy(source, fmt)
    if found is not None:
        return found
    failed = known_failure(source, fmt)
    if failed is not None:
        raise PrepareError(f"{failed} (an earlier try; it is tried again when the model or the app changes)")
    root = writable_root(source)
    copy = copy_in(root, source, fmt)
    on_progress(f"preparing {source.label} for {RUNTIME_NAMES[fmt]} (once per model: converted and checked "
                "in a background process, about half a minute)…")
    try:
        end = run_export_child(child_command(source, copy.folder, fmt), should_stop=should_stop)
    except PrepareError as exc:
        if exc.lasting:
            _remember_failure(copy, str(exc))
        raise
    device = end.get("tensorflow_device")
    if isinstance(device, str):
        remember_tensorflow_device(device)
    if not copy.complete():
        raise PrepareError(f"the export process ended without writing {copy.model}")
    if source.path is not None:
        remove_other_copies(root, source, copy)
    return copy


def open_light_detector(source: ModelSource, fmt: str, *, on_progress: Progress = lambda _text: None,
                        should_stop: Callable[[], bool] = lambda: False) -> Any:
    """A :class:`training.inference.Detector` running ``source``'s light copy (made first when there is
    none), standing for the source: its ``path`` is the ``.keras`` file (None for the pretrained detector)
    and ``runtime_file`` the copy. A copy that no longer opens (damaged by hand) is made again, once.

    Raises what :func:`prepare_copy` raises; PrepareError when even a fresh copy does not open.
    """
    from training.core import MissingRuntimeError
    from training.inference import Detector

    for attempt in range(2):
        copy = prepare_copy(source, fmt, on_progress=on_progress, should_stop=should_stop)
        try:
            detector = Detector.from_file(copy.model)
        except MissingRuntimeError as exc:
            raise PrepareError(exc.message) from exc
        except ModelFileError as exc:
            if attempt:
                raise PrepareError(f"its {RUNTIME_NAMES[fmt]} copy does not open: {exc.message}") from exc
            shutil.rmtree(copy.folder, ignore_errors=True)
            continue
        detector.path = source.path
        detector.runtime_file = copy.model
        return detector
    raise AssertionError("unreachable")  # pragma: no cover


def runtime_text(detector: Any) -> str | None:
    """What runs the detector, for the status line: "LiteRT on CPU", "TensorFlow on GPU: <name>", "ONNX
    Runtime on CPU", with the reason when TensorFlow stands in for a light runtime; a stand-in finder's own
    device words; None without a detector."""
    if detector is None:
        return None
    runtime, device = getattr(detector, "runtime", None), getattr(detector, "device", None)
    if runtime == "keras":
        text = f"TensorFlow on {device}" if device else "TensorFlow"
    elif runtime in ("litert", "tensorflow-lite", "onnxruntime"):
        name = {"litert": "LiteRT", "tensorflow-lite": "TensorFlow Lite", "onnxruntime": "ONNX Runtime"}[runtime]
        where = "GPU" if device and device.startswith("GPU") else "CPU"
        text = f"{name} on {where}"
    else:
        return device
    note = getattr(detector, "runtime_note", None)
    return f"{text} ({note})" if note else text


def tensorflow_in_process() -> list[str]:
    """What of TensorFlow this process holds: its Python modules (``tensorflow``, ``keras``) and, on Linux,
    its native libraries mapped into memory (``/proc/self/maps``); empty when none. For the app's
    ``--quit-after`` report, the tests and the benchmark: the window is meant to run without it."""
    found = [name for name in ("tensorflow", "keras", "tf_keras") if name in sys.modules]
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            libraries = {Path(line.split()[-1]).name for line in maps
                         if "/tensorflow/" in line or "libtensorflow" in line}
    except OSError:
        libraries = set()
    return found + sorted(libraries)


def resident_megabytes() -> float | None:
    """This process's resident memory in MB (Linux: VmRSS), None where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None

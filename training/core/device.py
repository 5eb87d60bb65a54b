"""Pick the compute device for training and say which it is, in words a user understands.

The one place with TensorFlow-specific device code: GPU memory growth (so a second process, like
the live preview, still gets GPU memory) and the ``mixed_float16`` policy (about twice the speed
on recent GPUs; the model's output layers stay float32, so losses are unaffected).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import platform
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

#: A line of TensorFlow's native (absl/glog) logging: ``I0000 00:00:1795649216.840084  2472 port.cc:153] ...``.
_NATIVE_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\] ")
#: What absl prints once before its first early line.
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LEVELS = "IWEF"  # TF_CPP_MIN_LOG_LEVEL: 0 shows all, 1 hides I, 2 hides I and W, 3 hides I, W and E


_TENSORFLOW_IMPORT = threading.RLock()


def import_tensorflow() -> None:
    """Import Keras (and so TensorFlow) once for the whole process, one thread at a time.

    Two threads importing TensorFlow for the first time at once break it for the process ("Registering
    two gradient with name 'ReduceDataset'"): in the app, the Detect tab's loader (the pretrained detector
    at start) and the Label tab's suggestion engine (MTCNN, BlazeFace) both do. Every thread that may be
    the first to import it calls this first; the others wait, then find it loaded.
    """
    with _TENSORFLOW_IMPORT:
        import keras  # noqa: F401  (the import is the point)


def quiet_tensorflow_logs() -> None:
    """Hide TensorFlow's C++ start-up chatter (the CLI and the app call this before TensorFlow loads).

    ``TF_CPP_MIN_LOG_LEVEL=3`` hides what TensorFlow logs once its logging is set up, but the lines
    written while its libraries load (Intel CPUs: "oneDNN custom operations are on ... round-off
    errors"; every machine without CUDA: "Could not find cuda drivers") come earlier and ignore it.
    So the first ``import tensorflow`` also runs inside :func:`filtered_native_stderr`. Lines like
    these mean nothing to users and bury the progress output; real problems still arrive as Python
    exceptions. ``TF_CPP_MIN_LOG_LEVEL=0`` in the environment brings them all back for debugging.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def hidden_log_levels() -> str:
    """The native log levels (of ``IWEF``) that ``TF_CPP_MIN_LOG_LEVEL`` hides."""
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    return _LEVELS[: max(0, min(level, 3))]


def is_hidden_native_log_line(line: str, hidden: str | None = None) -> bool:
    """Whether ``line`` is TensorFlow native logging that the log level hides (absl's preamble included)."""
    hidden = hidden_log_levels() if hidden is None else hidden
    if not hidden:
        return False
    if line.startswith(_ABSL_PREAMBLE):
        return True
    match = _NATIVE_LOG_LINE.match(line)
    return bool(match) and match.group(1) in hidden


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Send the process's stderr (file descriptor 2) to a temporary file meanwhile, then replay it
    without the native log lines that ``TF_CPP_MIN_LOG_LEVEL`` hides.

    Works at the descriptor level because the lines come from C++ (static initialisers of the
    libraries being loaded), below ``sys.stderr``. Anything else written meanwhile, from any thread,
    is kept and appears once the block ends. Does nothing when no line would be hidden, or where
    descriptor 2 cannot be duplicated (a windowed app without a console).
    """
    hidden = hidden_log_levels()
    try:
        if not hidden:
            raise OSError("nothing to hide")
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        _flush_python_stderr()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_python_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not is_hidden_native_log_line(line, hidden)]
            if kept:
                os.write(2, "".join(kept).encode("utf-8"))


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` (however it is reached: ``import keras`` too) inside
    :func:`filtered_native_stderr`, then steps out of the import system."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with filtered_native_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self._loader, name)


def _cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), or what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor().strip()


def device_name() -> str:
    """Where Keras will compute, in words: ``"GPU: <name>"`` for the first GPU, else ``"CPU (<model>)"``.

    Changes no setting (unlike :func:`configure_device`), so inference code can ask too.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name') or gpus[0].name}"
    cpu = _cpu_name()
    return f"CPU ({cpu})" if cpu else "CPU"


def configure_device(mixed_precision: bool = True) -> str:
    """Prepare the first GPU if there is one and return ``"GPU: <name>"``, else ``"CPU"`` (with its model).

    Safe to call more than once: memory growth can only be set before the GPU is first used, so a
    later call leaves it as it is, and the precision policy is simply set again.
    """
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        keras.mixed_precision.set_global_policy("float32")
        return device_name()

    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # the GPU is already initialised (a second call): its setting stays
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    return device_name()

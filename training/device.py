"""Pick the compute device for training and say which it is, in words a user understands.

The one place with TensorFlow-specific device code: GPU memory growth (so a second process, like
the live preview, still gets GPU memory) and the ``mixed_float16`` policy (about twice the speed
on recent GPUs; the model's output layers stay float32, so losses are unaffected).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def quiet_tensorflow_logs() -> None:
    """Hide TensorFlow's C++ start-up chatter before TensorFlow is imported (the CLI and the app call it).

    Lines like "failed call to cuInit" on a machine without a GPU mean nothing to users and bury
    the progress output; real problems still arrive as Python exceptions. ``TF_CPP_MIN_LOG_LEVEL=0``
    in the environment brings the lines back for debugging.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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

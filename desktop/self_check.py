"""Headless self-check of an installed or bundled FaceTracker (``FaceTracker --self-check``).

It exercises the whole engine once, without a window or a camera: load TensorFlow, build and
save a model, load it back as a Detector, detect on a generated frame, detect with its light-runtime copy
(made by the export child, as the Detect tab does), train one epoch on a few generated pictures. Exit status 0 only when every step worked, so a packager can trust it.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

#: PySide6 releases known to abort the app on some Pythons: (version, Pythons below which it aborts).
#: 6.12.0's reference-count bug kills the Train tab's live plots under Python 3.10/3.11 (None is
#: immortal from 3.12 on, which hides it); pyproject.toml keeps pip installs and the bundle off it.
BROKEN_QT_BINDINGS = {"6.12.0": (3, 12)}


def check_qt_bindings() -> str:
    """The Qt bindings' versions; RuntimeError for a combination known to crash the Train tab."""
    import pyqtgraph
    import PySide6

    python = sys.version_info[:2]
    broken_below = BROKEN_QT_BINDINGS.get(PySide6.__version__)
    if broken_below is not None and python < broken_below:
        raise RuntimeError(
            f"PySide6 {PySide6.__version__} aborts the app's live plots under Python {python[0]}.{python[1]}: "
            "install a supported release (pip install 'PySide6-Essentials>=6.8,<6.12')"
        )
    return f"PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}, Python {platform.python_version()}"


def run_self_check(out=sys.stdout) -> int:
    """Run every step, print what it did and the device; return 0 when all passed."""
    failures = 0
    context: dict = {}

    def step(name: str, action: Callable[[], str]) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            detail = action()
        except Exception as exc:  # a self-check reports every failure and goes on
            failures += 1
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}", file=out, flush=True)
            traceback.print_exc(file=sys.stderr)
            return
        print(f"ok    {name} ({time.perf_counter() - started:.1f} s){': ' + detail if detail else ''}", file=out, flush=True)

    with tempfile.TemporaryDirectory(prefix="facetracker-self-check-") as tmp:
        work = Path(tmp)

        def load_tensorflow() -> str:
            import keras

            from training.core import configure_device

            context["device"] = configure_device(mixed_precision=False)
            return f"Keras {keras.__version__} on {keras.backend.backend()}, device {context['device']}"

        def build_and_save() -> str:
            from training.model import build_model

            model = build_model(weights=None, input_size=64)
            path = work / "self-check.keras"
            model.save(path)
            context["model_path"] = path
            return f"{model.count_params():,} parameters, saved {path.name}"

        def detect() -> str:
            import numpy as np

            from training.inference import Detector

            detector = Detector.from_file(context["model_path"])
            frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
            detection = detector.detect(frame)
            if not 0.0 <= detection.score <= 1.0:
                raise RuntimeError(f"score out of range: {detection.score}")
            return f"score {detection.score:.3f}, box {tuple(round(v) for v in detection.box)}"

        def light_copy() -> str:
            # What the Detect tab runs a .keras model with: its LiteRT copy, made by an export child (in a
            # bundle: this very executable with --runtime-child), then run without TensorFlow's help.
            import numpy as np

            from desktop.runtime import light_format
            from desktop.workers import load_detector

            if light_format() is None:
                raise RuntimeError("no light runtime is installed (ai-edge-litert, or onnxruntime where it has no wheel)")
            detector = load_detector(context["model_path"])
            if detector.runtime not in ("litert", "onnxruntime"):
                raise RuntimeError(f"ran in {detector.runtime}: {getattr(detector, 'runtime_note', '')}")
            frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
            detection = detector.detect(frame)
            return (f"{detector.runtime_file.name} made by an export child, run in {detector.device}, "
                    f"score {detection.score:.3f}")

        def train_one_epoch() -> str:
            # Through the same child-process command the Train tab uses (in a bundle: this very
            # executable with --train-child), so a passing check means train-from-GUI works.
            from desktop.child_process import parse_event_line, training_command
            from training.core import END
            from training.data import make_demo_data
            from training.engine import TrainConfig, config_to_args

            data = make_demo_data(work / "data", count=24, width=160, height=120, seed=1)
            config = TrainConfig(data=str(data), out=str(work / "run"), epochs=1, batch_size=4, input_size=64,
                                 weights="none")
            command = training_command([*config_to_args(config), "--progress", "json"])
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            child = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
            events = [e for e in map(parse_event_line, child.stdout.splitlines()) if e is not None]
            end = next((e for e in events if e.get("event") == END), None)
            if child.returncode != 0 or end is None:
                tail = "\n".join((child.stderr or child.stdout).strip().splitlines()[-5:])
                raise RuntimeError(f"the training child ({command[0]}) exited {child.returncode}: {tail}")
            if not Path(end["best_model"]).is_file():
                raise RuntimeError("training wrote no model")
            if not list((work / "run" / "tensorboard").rglob("events.out.tfevents.*")):
                raise RuntimeError("training wrote no TensorBoard logs")
            iou = (end.get("metrics") or {}).get("final_val_iou")
            return f"1 epoch in a child process ({Path(command[0]).name}), val IoU {iou:.3f}, TensorBoard logs written"

        step("Qt bindings", check_qt_bindings)
        step("load TensorFlow/Keras", load_tensorflow)
        step("build and save a model", build_and_save)
        if "model_path" in context:
            step("detect on a generated 640x480 frame", detect)
            step("detect with a light runtime's copy", light_copy)
        step("train 1 epoch on generated pictures", train_one_epoch)

    verdict = "PASSED" if failures == 0 else f"FAILED ({failures} step(s))"
    print(f"FaceTracker self-check {verdict}; device: {context.get('device', 'unknown')}", file=out, flush=True)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(run_self_check())

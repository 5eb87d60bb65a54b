"""TensorFlow's start-up chatter stays out of the terminal of the CLI, the app and the training child.

TensorFlow 2.21 writes lines like ``I0000 ... port.cc:153] oneDNN custom operations are on ...
round-off errors`` (Intel CPUs) and ``cudart_stub.cc:31] Could not find cuda drivers`` (any machine
without CUDA) while its libraries load, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect. The tests
force the oneDNN line on (``TF_ENABLE_ONEDNN_OPTS=1``) so they see the same chatter on any CPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from training.core.device import is_hidden_native_log_line

REPO = Path(__file__).resolve().parents[3]
NATIVE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\] ")


def _user_env(**extra: str) -> dict[str, str]:
    """The environment a user's shell has: no log level of ours set, TensorFlow's oneDNN ops on."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")}
    env.update(TF_ENABLE_ONEDNN_OPTS="1", CUDA_VISIBLE_DEVICES="", QT_QPA_PLATFORM="offscreen", **extra)
    return env


def _chatter(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if NATIVE_LINE.match(line) or "absl::InitializeLog" in line or "oneDNN" in line or "cuda drivers" in line]


@pytest.mark.parametrize(
    ("line", "hidden", "expected"),
    [
        ("I0000 00:00:1795649216.840084    2472 port.cc:153] oneDNN custom operations are on.", "IWE", True),
        ("I0000 00:00:1795649216.840537    2472 cudart_stub.cc:31] Could not find cuda drivers", "I", True),
        ("W0000 00:00:1795649216.840537    2472 x.cc:31] a warning", "I", False),
        ("E1125 23:25:01.123456  99 cuda_driver.cc:152] failed call to cuInit", "IWE", True),
        ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", "I", True),
        ("I0000 00:00:1795649216.840084    2472 port.cc:153] shown at level 0", "", False),
        ("Traceback (most recent call last):", "IWE", False),
        ("facetracker-train train: error: data: no such folder", "IWE", False),
    ],
)
def test_only_tensorflow_native_lines_below_the_level_are_hidden(line, hidden, expected):
    assert is_hidden_native_log_line(line, hidden) is expected


def test_filtered_native_stderr_drops_native_lines_and_keeps_everything_else():
    """Lines written to file descriptor 2 from C level (as TensorFlow's libraries do) are filtered."""
    code = textwrap.dedent("""
        import os, sys
        from training.core.device import filtered_native_stderr
        with filtered_native_stderr():
            os.write(2, b"I0000 00:00:1795649216.840084    2472 port.cc:153] oneDNN custom operations are on\\n")
            os.write(2, b"keep me: a real problem\\n")
            print("python-level warning", file=sys.stderr)
            os.write(2, b"E0000 00:00:1795649216.9    2472 cuda_driver.cc:152] failed call to cuInit\\n")
        print("after the block", file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["keep me: a real problem", "python-level warning", "after the block"]


@pytest.mark.slow
def test_cli_stderr_has_no_tensorflow_start_up_lines(tmp_path):
    from training.model.build import build_model

    model = tmp_path / "model.keras"
    build_model(weights=None, input_size=32).save(model)
    picture = tmp_path / "picture.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(picture), np.full((48, 64, 3), 128, np.uint8))
    done = subprocess.run([sys.executable, "-m", "training", "predict", str(model), str(picture),
                           "--out", str(tmp_path / "out")],
                          cwd=tmp_path, env=_user_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Results saved to" in done.stdout  # TensorFlow really loaded and ran
    assert _chatter(done.stderr) == [], done.stderr
    # The way back for debugging: TF_CPP_MIN_LOG_LEVEL=0 lets TensorFlow speak again.
    loud = subprocess.run([sys.executable, "-m", "training", "predict", str(model), str(picture),
                           "--out", str(tmp_path / "out2")],
                          cwd=tmp_path, env=_user_env(TF_CPP_MIN_LOG_LEVEL="0"), capture_output=True, text=True,
                          timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert _chatter(loud.stderr), "with TF_CPP_MIN_LOG_LEVEL=0 TensorFlow's own lines should show"


def test_app_stderr_has_no_tensorflow_start_up_lines(tmp_path, face_video):
    from training.model.build import build_model

    model = tmp_path / "model.keras"
    build_model(weights=None, input_size=32).save(model)
    done = subprocess.run(
        [sys.executable, "-m", "desktop", "--source", str(face_video), "--model", str(model),
         "--settings", str(tmp_path / "app.ini"), "--quit-after", "20",  # TensorFlow loads slower beside the bundle build
         "--runtime", "tensorflow"],  # TensorFlow in the window's process, where its lines would show
        cwd=tmp_path, env=_user_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "model ready" in done.stdout, done.stdout  # the model (so TensorFlow) loaded in the app
    assert _chatter(done.stderr) == [], done.stderr

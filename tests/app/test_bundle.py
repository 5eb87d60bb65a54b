"""The double-click app: build the PyInstaller bundle from a clean copy of the repository, then run it.

Slow (a few minutes: it freezes TensorFlow), so marked ``slow``; the default test run, and CI,
include it. ``pytest -m "not slow"`` skips it while you work.

The bundle is built from the repository's tracked and new (not ignored) files only: no virtual
environment, build folder or cache comes along. After the build the copied source tree is deleted,
so the executables can only work from what the bundle itself holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXE_NAME = "FaceTracker.exe" if os.name == "nt" else "FaceTracker"
BUILD_TIMEOUT_S = 1500


def _repository_files() -> list[Path]:
    """The files a clean checkout has: tracked ones plus new ones git does not ignore."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return [Path(name) for name in listing.split("\0") if name and (ROOT / name).is_file()]


def _clean_env(home: Path) -> dict[str, str]:
    """An environment with no trace of this virtual environment or source tree."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(Path(sys.prefix)))]
    env.update(PATH=os.pathsep.join(path), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"), QT_QPA_PLATFORM="offscreen",
               CUDA_VISIBLE_DEVICES="", TF_ENABLE_ONEDNN_OPTS="1")  # oneDNN's start-up line on any CPU
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to copy cleanly")
    work = tmp_path_factory.mktemp("bundle")
    source = work / "src"
    for relative in _repository_files():
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    started = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(work / "dist"), "--workpath", str(work / "build"), "build.spec"],
        cwd=source, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )
    seconds = time.perf_counter() - started
    assert build.returncode == 0, build.stderr[-4000:]
    shutil.rmtree(source)  # the bundle must not lean on the source tree
    shutil.rmtree(work / "build")
    app_dir = work / "dist" / "FaceTracker"
    size = sum(f.stat().st_size for f in app_dir.rglob("*") if f.is_file())
    print(f"\nbundle built in {seconds:.0f} s: {app_dir} is {size / 2**20:.0f} MiB")
    return app_dir


def test_bundle_holds_the_app_its_launcher_and_nothing_from_the_source_tree(bundle):
    executable = bundle / EXE_NAME
    assert executable.is_file() and os.access(executable, os.X_OK)
    internal = bundle / "_internal"
    assert (internal / "assets" / "facetracker.png").is_file()
    assert list(internal.rglob("lbpcascade_frontalface_opencv.xml")), "the classic face finder's cascade"
    assert list(internal.rglob("libqoffscreen*")) and list(internal.rglob("libqxcb*")), "Qt platform plugins"
    for unwanted in ("tests", "torch", "jax", "tensorboard/webfiles.zip", "tensorboard_data_server",
                     "PySide6/Qt/lib/libQt6WebEngineCore.so.6", "tensorflow/include"):
        assert not (internal / unwanted).exists(), unwanted
    if sys.platform.startswith("linux"):
        launcher = bundle / "FaceTracker.desktop"
        assert "Exec=" in launcher.read_text() and os.access(launcher, os.X_OK)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .desktop launcher is Linux's")
def test_install_launcher_points_the_menu_at_this_bundle(bundle, tmp_path):
    home = tmp_path / "home"
    (home / "Desktop").mkdir(parents=True)
    env = _clean_env(home)
    done = subprocess.run(["sh", str(bundle / "install-launcher.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    entry = (home / ".local" / "share" / "applications" / "facetracker.desktop").read_text()
    assert f'Exec="{bundle / EXE_NAME}"' in entry and f"Icon={bundle / 'facetracker.png'}" in entry
    assert (bundle / "facetracker.png").is_file() and (home / "Desktop" / "FaceTracker.desktop").is_file()


def test_self_check_passes_inside_the_bundle(bundle, tmp_path):
    """TensorFlow, a model, detection and a 1-epoch training through the bundled --train-child."""
    started = time.perf_counter()
    done = subprocess.run([str(bundle / EXE_NAME), "--self-check"], cwd=tmp_path, env=_clean_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    print(f"\nself-check ({time.perf_counter() - started:.1f} s):\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert "FaceTracker self-check PASSED" in done.stdout
    assert f"in a child process ({EXE_NAME})" in done.stdout  # the bundle itself, not a Python
    assert "TensorBoard logs written" in done.stdout


def test_gui_starts_shows_frames_and_closes_without_errors(bundle, tmp_path):
    """The windowed app under QT_QPA_PLATFORM=offscreen: a video source, a trained-format model, no errors."""
    video = tmp_path / "clip.avi"
    # 20 s at 20 fps: still playing when the app closes after 12 s, so the status shows live timings.
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (320, 240))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for index in range(400):
        frame = np.full((240, 320, 3), 60 + index % 120, np.uint8)
        cv2.circle(frame, (160, 120), 50, tuple(int(v) for v in rng.integers(100, 255, 3)), -1)
        writer.write(frame)
    writer.release()
    from training.model.build import build_model

    model_path = tmp_path / "model.keras"
    build_model(weights=None, input_size=64).save(model_path)

    started = time.perf_counter()
    done = subprocess.run(
        [str(bundle / EXE_NAME), "--source", str(video), "--model", str(model_path),
         "--settings", str(tmp_path / "settings.ini"), "--quit-after", "12",
         "--runtime", "tensorflow"],  # the bundled TensorFlow loads the model in the window (no export wait)
        cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    print(f"\nGUI run ({time.perf_counter() - started:.1f} s):\n{done.stdout}{done.stderr}")
    assert done.returncode == 0, done.stderr[-4000:]
    errors = [line for line in done.stderr.splitlines()
              if any(word in line for word in ("Error", "error", "Traceback", "Exception", "qt.qpa", "Could not load"))]
    assert not errors, "\n".join(errors)
    assert "window shown" in done.stdout
    status = next(line for line in done.stdout.splitlines() if line.startswith("status: "))
    assert "model: model.keras" in status and "inference" in status and "inference —" not in status, status
    shown = int(next(line for line in done.stdout.splitlines() if line.startswith("frames shown: ")).split(": ")[1])
    assert shown > 0
    assert "geometry" in (tmp_path / "settings.ini").read_text()  # closed as the close button does

"""The README's pictures, taken from the real app so they stay current: the Train tab after a run, and
the Detect tab running that run's model on a video of two real faces.

    python docs/screenshots.py                  # writes docs/images/train-tab.png and detect-tab.png

What it does, as a user would: writes a real-face dataset (``facetracker-train make-demo-data --real``)
and a video of two real photos (scikit-image's astronaut and matplotlib's Grace Hopper, both shipped
with those packages, nothing downloaded) drifting over a background; starts the app on an X server of
its own (Xvfb), in the window a 1366x768 laptop leaves it (the Detect picture shows what such a laptop
shows); trains from the Train tab with its Start button and grabs the tab when the run ends (as tall as
the tab then needs, result pictures included, where the laptop would scroll); presses "Use this model"
and grabs the Detect tab once the model boxes both faces. About 5 minutes on 2 CPU cores (``--epochs``
and ``--count`` trade time for a better model).

Needs Linux and Xvfb (``apt-get install -y xvfb``; the Qt xcb libraries too, which the app names if
any is missing). ``--display`` uses an X server you already have instead. It lives in docs/, beside the
pictures it makes and the pages that show them, rather than in benchmarks/ (scripts that print figures).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "docs" / "images"
SCREEN = (1366, 1024)  # the Xvfb screen: a laptop's width, room for the Train tab's full height
WINDOW = (1366, 768 - 32 - 37)  # what that laptop leaves a window: less a panel and a title bar (tests/test_app.py)
VIDEO_SIZE, VIDEO_FPS, VIDEO_SECONDS = (640, 480), 15, 12


def _rgb_to_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def portraits() -> list[np.ndarray]:
    """Head-and-shoulders crops of the two real photos (BGR): the astronaut and Grace Hopper."""
    import skimage.data
    from matplotlib import cbook
    from PIL import Image

    astronaut = _rgb_to_bgr(skimage.data.astronaut())[20:330, 100:350]  # 250x310, her face at the top middle
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as photo:
        hopper = _rgb_to_bgr(np.asarray(photo.convert("RGB")))[70:500, 90:440]  # 350x430
    return [cv2.resize(astronaut, (200, 248), interpolation=cv2.INTER_AREA),
            cv2.resize(hopper, (190, 233), interpolation=cv2.INTER_AREA)]


def make_video(path: Path) -> Path:
    """Two real faces drifting slowly over a room-like background, as a webcam sees two people."""
    import skimage.data

    width, height = VIDEO_SIZE
    background = cv2.resize(_rgb_to_bgr(skimage.data.coffee()), (width, height), interpolation=cv2.INTER_AREA)
    background = cv2.GaussianBlur(background, (0, 0), 6)  # out of focus, behind the people
    people = portraits()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (width, height))
    for i in range(VIDEO_FPS * VIDEO_SECONDS):
        t = i / VIDEO_FPS
        frame = background.copy()
        for person, (x, y), phase in zip(people, ((70, 190), (370, 215)), (0.0, 1.7), strict=True):
            dx, dy = round(25 * np.sin(0.5 * t + phase)), round(10 * np.sin(0.8 * t + phase))
            h, w = person.shape[:2]
            top, left = min(y + dy, height - h), x + dx
            frame[top:top + h, left:left + w] = person
        writer.write(frame)
    writer.release()
    return path


@contextmanager
def x_server(display: str | None) -> Iterator[str]:
    """An X display to run the app on: the one given, or a private Xvfb for the duration."""
    if display:
        yield display
        return
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is needed (apt-get install -y xvfb), or --display for an X server you have")
    server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                               "-nolisten", "tcp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        number = server.stdout.readline().strip() if server.stdout else ""
        if not number:
            raise SystemExit("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def wait_until(app: object, done: Callable[[], bool], seconds: float, what: str) -> None:
    """Run the app's event loop until ``done()`` (the script drives the real window, no test harness)."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {seconds:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app: object, seconds: float) -> None:
    end = time.monotonic() + seconds
    wait_until(app, lambda: time.monotonic() > end, seconds + 5, "a pause")


def grab(window: object, path: Path) -> Path:
    """The window's pixels as the X server shows them (QWidget.grab where the platform cannot read them)."""
    screen = window.screen()
    picture = screen.grabWindow(window.winId()) if screen is not None else None
    if picture is None or picture.isNull():
        picture = window.grab()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not picture.save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"wrote {path} ({picture.width()}x{picture.height()})", flush=True)
    return path


def take(work: Path, out: Path, epochs: int, count: int) -> list[Path]:
    """Make the data, run the app, train from its Train tab, detect with the result, grab both tabs."""
    from PySide6.QtWidgets import QApplication

    from desktop.app import MainWindow, quiet_opencv_logs
    from desktop.platform_check import check_platform
    from desktop.settings import make_settings
    from training.core.device import quiet_tensorflow_logs

    video = make_video(work / "two-people.avi")
    dataset = work / "data"
    if not dataset.is_dir():
        subprocess.run([sys.executable, "-m", "training", "make-demo-data", str(dataset), "--real",
                        "--count", str(count), "--max-faces", "2"], check=True)

    quiet_tensorflow_logs()
    quiet_opencv_logs()
    code = check_platform()
    if code is not None:
        raise SystemExit(code)
    app = QApplication.instance() or QApplication(["FaceTracker"])
    window = MainWindow(make_settings(work / "settings.ini"), source=str(video))
    window.move(0, 0)
    window.resize(*WINDOW)
    window.show()
    window.start()
    detect, train = window.detect_tab, window.train_tab
    detect.loop_box.setChecked(True)

    window.tabs.setCurrentWidget(train)
    train.set_dataset(str(dataset))
    train.epochs_spin.setValue(epochs)
    wait_until(app, train.dataset_trainable, 120, "the Train tab's dataset summary")
    train.start_button.click()
    print(f"training {epochs} epochs from the Train tab (run folder beside {dataset}) …", flush=True)
    wait_until(app, train.is_training, 30, "training to start")
    wait_until(app, lambda: not train.is_training(), 3600, "the training run to end")
    wait_until(app, lambda: train.use_button.isEnabled() and train.result_pictures.isVisible(), 60,
               "the run's best model and result pictures")
    settle(app, 0.5)
    viewport = window.tabs.scroll_area(window.tabs.currentIndex()).viewport().height()
    taller = max(0, train.minimumSizeHint().height() - viewport)
    window.resize(WINDOW[0], WINDOW[1] + taller)  # the whole tab, where the laptop would scroll
    settle(app, 1.5)
    shots = [grab(window, out / "train-tab.png")]

    window.resize(*WINDOW)
    train.use_button.click()  # "Use this model": the Detect tab comes to the front with it
    wait_until(app, lambda: detect.model_state == "model", 120, "the Detect tab to load the model")
    start = detect.boxes_drawn
    wait_until(app, lambda: detect.boxes_drawn > start + 30, 120, "boxed frames")
    wait_until(app, lambda: "2 faces" in detect.status_text(), 60, "both faces on one frame")
    settle(app, 0.3)
    shots.append(grab(window, out / "detect-tab.png"))
    window.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help=f"folder for the PNG files (default {IMAGES})")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the Train tab's run (default 10)")
    parser.add_argument("--count", type=int, default=240, help="pictures in the demo dataset (default 240)")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the dataset, video, run and settings here (default: a temporary folder)")
    parser.add_argument("--display", default=None, help="an X display to use instead of a private Xvfb")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))  # run from a checkout: the app's packages, and the training child's
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="facetracker-screenshots-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        with x_server(args.display) as display:
            os.environ.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
            os.environ.pop("WAYLAND_DISPLAY", None)
            take(work.resolve(), args.out.resolve(), args.epochs, args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

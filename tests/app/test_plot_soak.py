"""The Train tab survives a long, fast stream of training events (the live loss plots repainting).

PySide6 6.12.0 has a reference-count bug that Python 3.10/3.11 turn into an abort ("Fatal Python
error: none_dealloc") while pyqtgraph repaints: the app died about 20 s into a training started from
the Train tab. pyproject.toml keeps PySide6 below 6.12 for that reason. This soak feeds the real Train
tab, in a child process (an abort would take pytest down with it), the events a training child sends,
far faster than a real one: on 6.12.0 under Python 3.11 it aborted within seconds, every time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOAK_SECONDS = 20  # at least this long...
MIN_EVENTS = 1500  # ...and at least this many batch events (a loaded machine repaints slower), at most:
MAX_SECONDS = 180

SOAK = textwrap.dedent("""
    import math, sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from desktop.settings import make_settings
    from desktop.train_tab import TrainTab

    app = QApplication([])
    tab = TrainTab(make_settings(sys.argv[2]))
    tab.resize(1200, 800)
    tab.show()
    seconds, least, most, batches, sent = float(sys.argv[1]), int(sys.argv[4]), float(sys.argv[5]), 40, [0]
    tab.process.event.emit({"event": "start", "run_dir": sys.argv[3], "epochs": 1000, "batches_per_epoch": batches,
                            "device": "CPU", "weights": "none", "train_images": 320, "val_images": 80})
    started = time.monotonic()

    def send():
        for _ in range(4):  # a burst per tick, as the child's stdout arrives in chunks
            i = sent[0] = sent[0] + 1
            epoch, batch = 1 + (i - 1) // batches, (i - 1) % batches + 1
            losses = {"total_loss": 2 / (1 + i / 300) + 0.05 * math.sin(i), "class_loss": 0.7 * math.exp(-i / 900),
                      "regress_loss": 1 / (1 + i / 200), "iou": min(0.9, i / 4000)}
            tab.process.event.emit({"event": "batch", "epoch": epoch, "epochs": 1000, "batch": batch,
                                    "batches": batches, "lr": 1e-3 / (1 + i / 120), **losses})
            if batch == batches:
                tab.process.event.emit({"event": "epoch", "epoch": epoch, "epochs": 1000, "seconds": 0.5, "lr": 1e-3,
                                        **losses, **{"val_" + k: v * 1.1 for k, v in losses.items()}})
        elapsed = time.monotonic() - started
        if (elapsed > seconds and sent[0] >= least) or elapsed > most:
            counts = tab.plots.point_counts()["total_loss"]
            print(f"survived {sent[0]} batch events; plotted {counts['batch']} batch and {counts['val']} epoch points",
                  flush=True)
            app.quit()

    timer = QTimer()
    timer.timeout.connect(send)
    timer.start(5)
    sys.exit(app.exec())
""")


@pytest.mark.slow
def test_train_tab_survives_a_long_fast_stream_of_training_events(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SOAK, str(SOAK_SECONDS), str(tmp_path / "settings.ini"), str(tmp_path / "run"),
         str(MIN_EVENTS), str(MAX_SECONDS)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=MAX_SECONDS + 120,
    )
    assert done.returncode == 0, f"the Train tab died (exit {done.returncode}):\n{done.stderr[-3000:]}"
    line = next((x for x in done.stdout.splitlines() if x.startswith("survived")), "")
    assert line, done.stdout + done.stderr[-2000:]
    events = int(line.split()[1])
    plotted = int(line.split()[5])
    assert events >= MIN_EVENTS and plotted == events, line  # the plots really took every event

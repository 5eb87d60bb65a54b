"""Soak the Detect pipeline: the Detect tab itself, offscreen, on a looping video for a long time.

    python benchmarks/bench_soak.py [--minutes 30] [--model FILE.keras] [--video FILE] [--json]

What runs is the app's own path: a :class:`desktop.detect_tab.DetectTab` (its capture thread reading
the video at the video's frame rate, as a camera would deliver frames, its inference thread running
the model through ``training.inference.detector.Detector``, box smoothing, drawing, the QImage, the UI
thread painting it) under ``QT_QPA_PLATFORM=offscreen``. Without ``--model`` the default model
(grid, 128 px; untrained weights cost the same time as trained ones) is saved to a temporary file
and loaded the way the app loads one.

Every minute it prints the resident memory (RSS) of the process and the frame latency, from the
moment the capture thread read a frame to the moment the UI thread showed it (median and 95th
percentile), with the detector's own time and the frames shown and dropped. At the end: the drift,
measured from the end of the first minute (start-up, graph building and caches settle in it) to the
end, against the goals: under 5 % memory growth, and no latency growth (the last minute's median
within 10 % of the first's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from training.core.device import quiet_tensorflow_logs  # noqa: E402

quiet_tensorflow_logs()  # as the app does: TensorFlow's start-up lines would bury the figures

MEMORY_GOAL = 0.05  # at most 5 % growth after the first minute
LATENCY_TOLERANCE = 0.10  # "no growth": the last minute's median latency within 10 % of the first's
WARM_UP_S = 10.0  # after the model is in use, before the first minute starts


def resident_memory_mb() -> float:
    """The process's resident set size now, in MB (Linux: /proc; Windows: the working set; else the peak)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    if os.name == "nt":
        import ctypes
        from ctypes import wintypes

        class Counters(ctypes.Structure):
            _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD)] + [
                (name, ctypes.c_size_t) for name in ("PeakWorkingSetSize", "WorkingSetSize", "QuotaPeakPagedPoolUsage",
                                                     "QuotaPagedPoolUsage", "QuotaPeakNonPagedPoolUsage",
                                                     "QuotaNonPagedPoolUsage", "PagefileUsage", "PeakPagefileUsage")]

        counters = Counters()
        counters.cb = ctypes.sizeof(counters)
        process = ctypes.windll.kernel32.GetCurrentProcess()
        ctypes.windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb)
        return counters.WorkingSetSize / 2**20
    import resource  # macOS: only the peak is available without extra packages

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class LatencyProbe:
    """Times each frame from its capture (the capture thread's sink) to its showing (the UI thread)."""

    def __init__(self) -> None:
        self._captured: OrderedDict[int, float] = OrderedDict()  # id(frame) -> when it was read; bounded
        self.latencies_ms: list[float] = []
        self.inference_ms: list[float] = []
        self.shown = 0
        self._last_index = 0

    def captured(self, frame: np.ndarray) -> None:
        self._captured[id(frame)] = time.perf_counter()
        while len(self._captured) > 256:  # frames dropped before inference are never shown
            self._captured.popitem(last=False)

    def shown_result(self, result) -> None:
        if result is None or result.index == self._last_index:
            return
        self._last_index = result.index
        started = self._captured.pop(id(result.frame), None)
        if started is not None:
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.inference_ms.append(result.inference_ms)
            self.shown += 1

    def take_minute(self) -> tuple[list[float], list[float], int]:
        latencies, inference, shown = self.latencies_ms, self.inference_ms, self.shown
        self.latencies_ms, self.inference_ms, self.shown = [], [], 0
        return latencies, inference, shown


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def soak(video: Path, model: Path, minutes: float, emit) -> dict:
    """Run the Detect tab on ``video`` with ``model`` for ``minutes``; ``emit(minute_dict)`` after each minute."""
    from PySide6.QtCore import QSettings, QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from desktop.detect_tab import DetectTab

    app = QApplication.instance() or QApplication([])

    def quiet_offscreen(kind, context, message: str) -> None:  # the offscreen platform warns on every resize
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(quiet_offscreen)
    settings_dir = tempfile.TemporaryDirectory()
    settings = QSettings(str(Path(settings_dir.name) / "soak.ini"), QSettings.Format.IniFormat)
    tab = DetectTab(settings, realtime=True)
    tab.resize(800, 620)
    tab.show()
    tab.loop_box.setChecked(True)
    probe = LatencyProbe()
    submit = tab.inference.submit

    def submit_and_time(frame: np.ndarray) -> None:  # the tab adds inference.submit as the capture sink
        probe.captured(frame)
        submit(frame)

    tab.inference.submit = submit_and_time
    # Connected after the tab's own slot, so it runs once the tab has taken and shown the result.
    tab.inference.result_available.connect(lambda: probe.shown_result(tab.last_result()))
    tab.start(source=str(video), model=str(model))

    rows: list[dict] = []
    state = {"phase": "loading", "started": time.perf_counter(), "dropped": 0, "minute_started": 0.0}
    clock = QTimer()
    clock.setInterval(250)

    def tick() -> None:
        now = time.perf_counter()
        if state["phase"] == "loading":
            if tab.model_state == "model" and tab.frames_shown > 0:
                state.update(phase="warm-up", started=now)
            elif tab.model_state not in ("loading", "model") or now - state["started"] > 300:
                state["phase"] = "failed"
                app.quit()
            return
        if state["phase"] == "warm-up":
            if now - state["started"] >= WARM_UP_S:
                probe.take_minute()
                state.update(phase="soak", minute_started=now, dropped=tab.inference.dropped)
            return
        if now - state["minute_started"] < 60.0:
            return
        latencies, inference, shown = probe.take_minute()
        seconds = now - state["minute_started"]
        dropped = tab.inference.dropped
        row = {"minute": len(rows) + 1, "rss_mb": resident_memory_mb(),
               "latency_ms_median": statistics.median(latencies) if latencies else float("nan"),
               "latency_ms_p95": percentile(latencies, 95),
               "inference_ms_median": statistics.median(inference) if inference else float("nan"),
               "shown_fps": shown / seconds, "dropped": dropped - state["dropped"]}
        state.update(minute_started=now, dropped=dropped)
        rows.append(row)
        emit(row)
        if len(rows) >= minutes:
            app.quit()

    clock.timeout.connect(tick)
    clock.start()
    app.exec()
    clock.stop()
    status = tab.status_text()
    error = tab.inference.error or (None if state["phase"] != "failed" else f"the model did not load: {status}")
    tab.shutdown()
    tab.close()
    settings_dir.cleanup()
    return {"rows": rows, "status": status, "error": error}


def drift(rows: list[dict]) -> dict:
    """Memory and latency change from the end of the first minute to the end of the run."""
    first, last = rows[0], rows[-1]
    minutes = [r["minute"] for r in rows]
    rss = [r["rss_mb"] for r in rows]
    slope = float(np.polyfit(minutes, rss, 1)[0]) if len(rows) >= 2 else 0.0
    memory_growth = (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"]
    latency_growth = (last["latency_ms_median"] - first["latency_ms_median"]) / first["latency_ms_median"]
    p95_growth = (last["latency_ms_p95"] - first["latency_ms_p95"]) / first["latency_ms_p95"]
    return {"memory_growth": memory_growth, "memory_mb_per_minute": slope, "latency_median_growth": latency_growth,
            "latency_p95_growth": p95_growth, "memory_ok": memory_growth < MEMORY_GOAL,
            "latency_ok": latency_growth <= LATENCY_TOLERANCE}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="how long to soak, in minutes (default 30)")
    parser.add_argument("--model", help="a .keras model (default: the default backbone's model, untrained)")
    parser.add_argument("--video", help="a video file to loop (default: a 640x480, 30 fps face video written here)")
    parser.add_argument("--json", action="store_true", help="also print every figure as JSON at the end")
    args = parser.parse_args(argv)
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")

    from bench_detect import write_video

    def print_row(row: dict) -> None:
        print(f"minute {row['minute']:3d}: RSS {row['rss_mb']:7.1f} MB  latency median {row['latency_ms_median']:6.1f} ms"
              f"  p95 {row['latency_ms_p95']:6.1f} ms  detector {row['inference_ms_median']:5.1f} ms  "
              f"shown {row['shown_fps']:4.1f} fps  dropped {row['dropped']}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(args.video) if args.video else write_video(Path(tmp) / "soak.avi", frames=300)
        model = Path(args.model) if args.model else Path(tmp) / "default.keras"
        if not args.model:
            from training.model.build import build_model

            build_model().save(model)
        print(f"Soaking the Detect tab for {args.minutes:g} minutes on {video.name} (looped), model {model.name}, "
              f"{os.cpu_count()} CPU cores; RSS at start {resident_memory_mb():.1f} MB", flush=True)
        result = soak(video, model, args.minutes, print_row)
    rows = result["rows"]
    if not rows:
        print(f"no minute was measured: {result['error'] or result['status']}", file=sys.stderr)
        return 1
    figures = drift(rows)
    print(f"Status line at the end: {result['status']}")
    if result["error"]:
        print(f"Detector error seen: {result['error']}")
    print(f"Drift from minute 1 to minute {rows[-1]['minute']}: memory {100 * figures['memory_growth']:+.1f} % "
          f"({figures['memory_mb_per_minute']:+.2f} MB/min; goal under +{100 * MEMORY_GOAL:.0f} %: "
          f"{'met' if figures['memory_ok'] else 'NOT met'}), latency median "
          f"{100 * figures['latency_median_growth']:+.1f} %, p95 {100 * figures['latency_p95_growth']:+.1f} % "
          f"(goal no growth, within {100 * LATENCY_TOLERANCE:.0f} %: {'met' if figures['latency_ok'] else 'NOT met'})")
    if args.json:
        print(json.dumps({"minutes": rows, "drift": figures, "status": result["status"], "error": result["error"],
                          "cpu_count": os.cpu_count()}, indent=2))
    return 0 if figures["memory_ok"] and figures["latency_ok"] else 2


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the Detect pipeline against the tutorial's real-time loop, headless, on a generated video.

    python benchmarks/bench_detect.py [--model FILE.keras] [--frames 300] [--tutorial-frames 40] [--json]

Ours, measured two ways on a 640x480 video written here:
  * one thread, frame after frame: read -> Detector.detect (preprocessing + compiled forward pass)
    -> box smoothing -> drawing -> conversion to a QImage (InferenceWorker.process, the app's code);
  * the app's two worker threads (capture + inference), the file read as fast as it decodes:
    frames shown per second, and how many were dropped because the model was busy.
The tutorial's loop: read, crop, BGR->RGB, tf.image.resize to 120, /255, ``model.predict`` on a
batch of one with the VGG16 model (weights=None: same cost as ImageNet's), draw, convert to a QImage.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

WARM_UP_FRAMES = 5


def write_video(path: Path, frames: int) -> Path:
    """A 640x480, 30 fps MJPG video: a face photo drifting over a textured background."""
    import skimage.data

    photo = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (360, 360))
    rng = np.random.default_rng(0)
    background = rng.integers(40, 200, size=(480, 640, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(frames):
        frame = background.copy()
        x, y = 20 + (i * 3) % 240, 40 + (i * 2) % 80
        frame[y : y + 360, x : x + 360] = photo
        writer.write(frame)
    writer.release()
    return path


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_ours_sequential(video: Path, model_path: Path, frames: int) -> dict:
    from desktop.imaging import bgr_to_qimage  # noqa: F401  (imported by process; loaded before timing)
    from desktop.sources import VideoFileSource
    from desktop.workers import InferenceWorker, load_detector

    detector = load_detector(model_path)  # Detector.from_file + one warm-up frame, as the app does
    worker = InferenceWorker(threshold=0.5, smoothing=True)
    worker.set_detector(detector)
    per_frame, inference = [], []
    with VideoFileSource(video, loop=True) as source:
        for i in range(frames + WARM_UP_FRAMES):
            started = time.perf_counter()
            frame = source.read()
            result = worker.process(frame)
            elapsed = time.perf_counter() - started
            if i >= WARM_UP_FRAMES:
                per_frame.append(elapsed)
                inference.append(result.inference_ms)
    return {
        "device": detector.device,
        "input_size": detector.input_size,
        "frames": frames,
        "fps": len(per_frame) / sum(per_frame),
        "inference_ms_median": statistics.median(inference),
        "inference_ms_p99": percentile(inference, 99),
        "frame_ms_median": statistics.median(per_frame) * 1000,
    }


def bench_ours_threaded(video: Path, model_path: Path, seconds: float) -> dict:
    """The app's capture and inference threads, as fast as they go, for ``seconds``."""
    from PySide6.QtCore import QCoreApplication

    from desktop.sources import VideoFileSource
    from desktop.workers import CaptureWorker, InferenceWorker, load_detector

    app = QCoreApplication.instance() or QCoreApplication([])  # noqa: F841 - QThreads want an application
    inference = InferenceWorker(threshold=0.5, smoothing=True)
    inference.set_detector(load_detector(model_path))
    capture = CaptureWorker(VideoFileSource(video, loop=True), realtime=False)
    capture.add_sink(inference.submit)
    inference.start()
    capture.start()
    time.sleep(0.5)  # settle
    processed0, captured0, dropped0 = inference.processed, capture.frames_captured, inference.dropped
    started = time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - started
    processed, captured, dropped = inference.processed, capture.frames_captured, inference.dropped
    capture.stop()
    inference.stop()
    return {
        "seconds": elapsed,
        "shown_fps": (processed - processed0) / elapsed,
        "captured_fps": (captured - captured0) / elapsed,
        "dropped": dropped - dropped0,
    }


def bench_tutorial(video: Path, frames: int) -> dict:
    """The notebook's loop, step by step, with its VGG16 model at 120x120 and model.predict."""
    import tensorflow as tf

    from desktop.imaging import bgr_to_qimage
    from training.model.build import build_model

    model = build_model("vgg16", weights=None)
    capture = cv2.VideoCapture(str(video))
    per_frame, inference = [], []
    for i in range(frames + WARM_UP_FRAMES):
        started = time.perf_counter()
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
        frame = frame[50:500, 50:500, :]
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        resized = tf.image.resize(rgb, (120, 120))
        predicted = time.perf_counter()
        yhat = model.predict(np.expand_dims(resized / 255, 0), verbose=0)
        predict_ms = (time.perf_counter() - predicted) * 1000
        sample_coords = yhat[1][0]
        if yhat[0] > 0.5:
            top_left = tuple(np.multiply(sample_coords[:2], [450, 450]).astype(int))
            bottom_right = tuple(np.multiply(sample_coords[2:], [450, 450]).astype(int))
            cv2.rectangle(frame, top_left, bottom_right, (255, 0, 0), 2)
            cv2.putText(frame, "face", top_left, cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2, cv2.LINE_AA)
        bgr_to_qimage(frame)  # in place of cv2.imshow
        elapsed = time.perf_counter() - started
        if i >= WARM_UP_FRAMES:
            per_frame.append(elapsed)
            inference.append(predict_ms)
    capture.release()
    return {
        "frames": frames,
        "fps": len(per_frame) / sum(per_frame),
        "inference_ms_median": statistics.median(inference),
        "inference_ms_p99": percentile(inference, 99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a .keras model (default: the default backbone's model, untrained)")
    parser.add_argument("--frames", type=int, default=300, help="frames for our sequential loop (default 300)")
    parser.add_argument("--threaded-seconds", type=float, default=4.0, help="seconds of the threaded pipeline")
    parser.add_argument("--tutorial-frames", type=int, default=40, help="frames for the tutorial's loop (default 40)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "bench.avi", frames=120)
        model_path = Path(args.model) if args.model else Path(tmp) / "default.keras"
        if not args.model:
            from training.model.build import build_model

            build_model().save(model_path)
        ours = bench_ours_sequential(video, model_path, args.frames)
        threaded = bench_ours_threaded(video, model_path, args.threaded_seconds)
        tutorial = bench_tutorial(video, args.tutorial_frames)

    ratio = ours["fps"] / tutorial["fps"]
    figures = {"ours": ours, "ours_threaded": threaded, "tutorial": tutorial, "speedup": ratio,
               "cpu_count": os.cpu_count()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"Detect pipeline on a 640x480 video, {ours['device']}, {os.cpu_count()} CPU cores")
    print(f"  ours (default model, {ours['input_size']} px), one thread, every frame:")
    print(f"    end to end {ours['fps']:.1f} fps (read, preprocess, inference, smoothing, drawing, QImage)")
    print(f"    inference  median {ours['inference_ms_median']:.2f} ms, p99 {ours['inference_ms_p99']:.2f} ms")
    print("  ours, the app's capture + inference threads, file read as fast as it decodes:")
    print(f"    shown {threaded['shown_fps']:.1f} fps, captured {threaded['captured_fps']:.1f} fps, "
          f"dropped {threaded['dropped']} frames in {threaded['seconds']:.1f} s")
    print("  tutorial loop (VGG16 at 120, model.predict per frame):")
    print(f"    end to end {tutorial['fps']:.1f} fps")
    print(f"    inference  median {tutorial['inference_ms_median']:.1f} ms, p99 {tutorial['inference_ms_p99']:.1f} ms")
    print(f"  speed-up end to end: {ratio:.1f}x   (goals: >= 60 fps, >= 8x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

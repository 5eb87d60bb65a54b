"""Two workers on this machine train one run together (MultiWorkerMirroredStrategy from TF_CONFIG).

Run on demand (not part of the tests)::

    python benchmarks/bench_distributed.py                      # 2 workers, tiny demo run
    python benchmarks/bench_distributed.py --epochs 3 --count 60

It writes a small demo dataset into a temporary folder, picks two free ports on 127.0.0.1, and
starts two processes of this script (``--worker``), each with its own ``TF_CONFIG`` (same cluster,
task index 0 and 1), that call :func:`training.engine.trainer.train` with the same settings and the same
``--out`` folder. It waits for both and prints each worker's training images/s (as the trainer
measures it: pictures of the global batch per second), that the chief (worker 0) wrote the run
folder, and that the other worker wrote only a temporary folder, removed when it ended.

Both workers share this machine's cores, so this shows that the path works, not a speed-up; on
several machines, start the same command on each with its own ``TF_CONFIG`` (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULT = "RESULT "


def _free_ports(count: int) -> list[int]:
    """Ports the system hands out now (bound together, so they differ), released for the workers."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _worker(args: argparse.Namespace) -> int:
    """One worker: train, then say where it wrote and how fast it went (one JSON line)."""
    from training.engine.settings import TrainConfig
    from training.engine.trainer import train

    config = TrainConfig(data=args.data, out=args.out, epochs=args.epochs, backbone="grid", weights="none",
                         input_size=args.input_size, batch_size=args.batch_size, seed=0, patience=0)
    started = time.perf_counter()
    result = train(config)
    print(RESULT + json.dumps({
        "task": json.loads(os.environ["TF_CONFIG"])["task"]["index"], "run_dir": str(result.run_dir),
        "run_dir_left": result.run_dir.exists(), "images_per_second": result.metrics.get("images_per_second"),
        "epochs": result.metrics.get("epochs_completed"), "device": result.metrics.get("device"),
        "seconds": time.perf_counter() - started}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--count", type=int, default=40, help="demo pictures (default 40)")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the workers")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    from training.data.demo import make_demo_data

    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as folder:
        data = make_demo_data(Path(folder) / "demo", count=args.count, width=96, height=72, seed=1)
        out = Path(folder) / "run"
        cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
        print(f"cluster: {cluster['worker']}; {args.count} demo pictures, grid at {args.input_size} px, "
              f"global batch {args.batch_size}, {args.epochs} epochs")
        workers = []
        for index in range(2):
            env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                                          "index": index}})}
            command = [sys.executable, __file__, "--worker", "--data", str(data), "--out", str(out),
                       "--epochs", str(args.epochs), "--input-size", str(args.input_size),
                       "--batch-size", str(args.batch_size)]
            workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True, cwd=ROOT))
        started = time.perf_counter()
        results, failed = [], False
        for index, process in enumerate(workers):
            try:
                stdout, stderr = process.communicate(timeout=max(1.0, args.timeout - (time.perf_counter() - started)))
            except subprocess.TimeoutExpired:
                for other in workers:
                    other.kill()
                print(f"worker {index}: no answer within {args.timeout:.0f} s; both stopped")
                return 1
            lines = [line for line in stdout.splitlines() if line.startswith(RESULT)]
            if process.returncode != 0 or not lines:
                print(f"worker {index} failed (exit {process.returncode}):\n{stderr[-3000:]}")
                failed = True
                continue
            results.append(json.loads(lines[-1][len(RESULT):]))
        if failed:
            return 1
        wall = time.perf_counter() - started
        for result in results:
            speed = result["images_per_second"]
            print(f"worker {result['task']}: {speed:.1f} images/s, {result['epochs']} epochs, "
                  f"{result['seconds']:.1f} s; wrote {result['run_dir']} "
                  f"({'still there' if result['run_dir_left'] else 'removed when it ended'})")
        print(f"device: {results[0]['device']}")
        chief, other = sorted(results, key=lambda r: r["task"])
        chief_wrote = Path(chief["run_dir"]) == out and (out / "best.keras").is_file() and (
            out / "metrics.json").is_file()
        other_wrote = Path(other["run_dir"]) == out or other["run_dir_left"]
        print(f"chief wrote the run folder {out.name}/ ({', '.join(sorted(p.name for p in out.iterdir()))}): "
              f"{'yes' if chief_wrote else 'NO'}")
        print(f"the other worker wrote into it or left a folder behind: {'YES' if other_wrote else 'no'}")
        print(f"both workers: {wall:.1f} s wall (2 shared cores: this shows the path, not a speed-up)")
        return 0 if chief_wrote and not other_wrote else 1


if __name__ == "__main__":
    sys.exit(main())

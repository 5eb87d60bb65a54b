"""Training benchmark: our default detector against the tutorial's, and what the default reaches.

Run on demand (not part of the tests)::

    python benchmarks/bench_train.py                 # both parts, demo data in a temporary folder
    python benchmarks/bench_train.py --skip-accuracy # throughput only
    python benchmarks/bench_train.py --skip-throughput --skip-accuracy --streaming  # memory against streaming

Part 1, throughput (same machine, same process): training images/s of the default configuration
(the default backbone, its default input size, batch 8, augmentation on the fly) and of the tutorial's
(VGG16 from scratch at 120x120, batch 8, pictures already made, as the notebook's offline
augmentation left them on disk; here even kept in memory, which only flatters the tutorial), and
their ratio. The goal is a ratio of at least 5.

Part 2, accuracy: :func:`training.engine.trainer.train` with the default settings on synthetic demo
pictures (640x480), stopped after ``--minutes`` at the latest; prints the test split's mean IoU
(goal: at least 0.7), detection figures and the time taken.

Part 3 (``--streaming``), streaming from disk: training images/s of the default model (its
input size, batch 8, augmentation on the fly) on the same pictures kept in memory
(``cache="memory"``, decoded once) and read from disk every epoch (``cache="stream"``, a tf.data
pipeline; with its disk cache of decoded arrays, filled by the untimed first epoch, and without it,
decoding every picture every epoch as on a read-only dataset), side by side with their ratio (goal:
streaming within 20 %), also as CPU-ms per picture (process CPU time / pictures: what sets images/s
when training keeps every core busy, and less disturbed by other work on the machine than the
wall clock), and where a streamed picture's time goes, one core at a time. Default data: real faces
(:func:`training.data.realfaces.make_real_demo_data`, 640x480 JPEGs). With ``--data``, the disk cache is
written beside the pictures (``.facetracker_cache``), as training would.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TUTORIAL = {"backbone": "vgg16", "input_size": 120, "batch_size": 8}


def _images_per_second(model, batches, batch_sizes: list[int], *, warmup_steps: int, timed_steps: int) -> float:
    """Steady-state training throughput: graph building and first batches are left out."""
    steps = len(batches)
    model.fit(batches, epochs=1, steps_per_epoch=min(warmup_steps, steps), verbose=0)
    images = 0
    started = time.perf_counter()
    done = 0
    while done < timed_steps:
        n = min(timed_steps - done, steps)
        model.fit(batches, epochs=1, steps_per_epoch=n, verbose=0)
        images += sum(batch_sizes[:n])
        done += n
    return images / (time.perf_counter() - started)


def _premade(batches):
    """The tutorial's offline pipeline: every batch already made (decoded, augmented, resized)."""
    import keras

    made = [batches[i] for i in range(len(batches))]

    class Premade(keras.utils.PyDataset):
        def __len__(self):
            return len(made)

        def __getitem__(self, index):
            return made[index]

    return Premade()


def throughput(data: Path, timed_steps: int) -> dict:
    import keras

    from training.data.augment import make_batches
    from training.data.dataset import load_dataset
    from training.engine.trainer import FaceTrackerModel, TrainConfig
    from training.model.backbones import BACKBONES, DEFAULT_BACKBONE
    from training.model.build import build_model
    from training.model.optimizer import make_optimizer

    samples = load_dataset(data).require_split("train")
    defaults = TrainConfig(data=str(data))
    results = {}
    for label, backbone, size, batch_size, augment in (
        ("default", DEFAULT_BACKBONE, BACKBONES[DEFAULT_BACKBONE].default_input_size, defaults.batch_size, True),
        ("tutorial", TUTORIAL["backbone"], TUTORIAL["input_size"], TUTORIAL["batch_size"], False),
    ):
        keras.utils.set_random_seed(0)
        batches = make_batches(samples, input_size=size, batch_size=batch_size, augment=augment, shuffle=True)
        if not augment:
            batches = _premade(batches)
        network = build_model(backbone, size, weights=None)
        model = FaceTrackerModel(network)
        model.compile(optimizer=make_optimizer(len(batches), BACKBONES[backbone].learning_rate))
        steps = timed_steps if label == "default" else max(4, timed_steps // 8)
        sizes = [min(batch_size, len(samples) - i * batch_size) for i in range(len(batches))]
        rate = _images_per_second(model, batches, sizes, warmup_steps=3, timed_steps=steps)
        results[label] = rate
        print(f"{label:>8}: {backbone} {size}x{size} batch {batch_size}, "
              f"{network.count_params() / 1e6:.2f} M parameters, augment={'on the fly' if augment else 'pre-made'}: "
              f"{rate:.1f} training images/s", flush=True)
    results["ratio"] = results["default"] / results["tutorial"]
    print(f"   ratio: {results['ratio']:.1f}x (goal >= 5x)", flush=True)
    return results


def _picture_costs(batches, count: int) -> dict[str, float]:
    """CPU milliseconds per picture on one thread: reading and decoding (with the checks and the shrink),
    writing the decoded array to a disk cache and reading it back (a temporary folder), then augmenting
    the decoded picture (in-memory batches: the first pass fills the cache, later ones only use it)."""
    from training.data.augment import read_cached_picture, write_cached_picture

    def per_picture(work) -> float:
        started = time.process_time()
        for i in range(count):
            work(i)
        return 1000 * (time.process_time() - started) / count

    with tempfile.TemporaryDirectory(prefix="bench_cache_") as folder:
        costs = {"decode": per_picture(batches._picture)}
        costs["write"] = per_picture(lambda i: write_cached_picture(Path(folder) / f"{i}.npy", batches._picture(i)))
        costs["read"] = per_picture(lambda i: read_cached_picture(Path(folder) / f"{i}.npy"))
    costs["augment"] = per_picture(lambda i: batches.targets(i, 0))
    return costs


PATHS = {  # label: make_batches options
    "memory": {"cache": "memory"},
    "stream": {"cache": "stream"},
    "stream, no disk cache": {"cache": "stream", "disk_cache": False},
}


def streaming(data: Path, epochs: int, rounds: int = 6) -> dict:
    """Training images/s and CPU-ms per picture of the default model with the pictures in memory and
    streamed from disk (with and without the disk cache)."""
    import keras

    from training.data.augment import make_batches
    from training.data.dataset import load_dataset
    from training.engine.trainer import FaceTrackerModel, TrainConfig
    from training.model.backbones import BACKBONES, DEFAULT_BACKBONE
    from training.model.build import build_model
    from training.model.optimizer import make_optimizer

    samples = load_dataset(data).require_split("train")
    size, batch_size = BACKBONES[DEFAULT_BACKBONE].default_input_size, TrainConfig(data=str(data)).batch_size
    print(f"load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    runs = {}
    for label, options in PATHS.items():
        keras.utils.set_random_seed(0)
        batches = make_batches(samples, input_size=size, batch_size=batch_size, augment=True, shuffle=True,
                               jitter=True, **options)
        model = FaceTrackerModel(build_model(DEFAULT_BACKBONE, size, weights=None))
        model.compile(optimizer=make_optimizer(len(batches), BACKBONES[DEFAULT_BACKBONE].learning_rate))
        started = time.perf_counter()
        model.fit(batches, epochs=1, verbose=0, shuffle=False)  # builds the graph; fills the memory or disk cache
        print(f"{label:>22}: first epoch (graph built, cache filled) {time.perf_counter() - started:.1f} s", flush=True)
        runs[label] = (model, batches)
    # Taken in turns, best of the rounds: a machine shared with other work slows whichever runs at the time.
    results = dict.fromkeys(runs, 0.0)
    cpu_ms = dict.fromkeys(runs, math.inf)
    for _ in range(rounds):
        for label, (model, batches) in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(batches, epochs=epochs, verbose=0, shuffle=False)  # as the trainer: the order is the seed's
            results[label] = max(results[label], epochs * len(samples) / (time.perf_counter() - wall))
            cpu_ms[label] = min(cpu_ms[label], 1000 * (time.process_time() - cpu) / (epochs * len(samples)))
    for label in runs:
        print(f"{label:>22}: {DEFAULT_BACKBONE} {size}x{size} batch {batch_size}, {len(samples)} pictures x {epochs} "
              f"epochs, best of {rounds}: {results[label]:.1f} training images/s ({cpu_ms[label]:.1f} CPU-ms per "
              "image)", flush=True)
    for label in runs:
        if label != "memory":
            results[f"{label} ratio"] = results[label] / results["memory"]
            results[f"{label} cpu ratio"] = cpu_ms["memory"] / cpu_ms[label]
            print(f"   {label} at {results[f'{label} ratio']:.2f} of in-memory images/s, "
                  f"{results[f'{label} cpu ratio']:.2f} by CPU time per picture (goal >= 0.80)", flush=True)
    results["ratio"] = results["stream ratio"]
    results["cpu_ms"] = cpu_ms
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    costs = _picture_costs(make_batches(samples, input_size=size, augment=True, jitter=True), min(60, len(samples)))
    results.update(costs)
    print(f"   one picture on one thread: read + check + decode + shrink {costs['decode']:.1f} CPU-ms, write its "
          f"array to the disk cache {costs['write']:.1f}, read it back {costs['read']:.1f}, "
          f"augment {costs['augment']:.1f}", flush=True)
    return results


def accuracy(data: Path, minutes: float, epochs: int | None, out: Path, **overrides) -> dict:
    from training.engine.trainer import TrainConfig, train

    deadline = time.perf_counter() + minutes * 60
    started = time.perf_counter()

    def on_event(event: dict) -> None:
        if event["event"] == "epoch":
            print(f"  epoch {event['epoch']:>3}/{event['epochs']}  loss {event['total_loss']:.3f}  "
                  f"val_loss {event['val_total_loss']:.3f}  val_iou {event['val_iou']:.3f}  "
                  f"lr {event['lr']:.2e}  ({time.perf_counter() - started:.0f} s)", flush=True)
        elif event["event"] in ("start", "warning"):
            print("  " + ", ".join(f"{k}={v}" for k, v in event.items() if k != "event"), flush=True)

    config = TrainConfig(data=str(data), out=str(out), epochs=epochs, **overrides)
    result = train(config, on_event=on_event, should_stop=lambda: time.perf_counter() > deadline)
    test = result.metrics.get("test") or {}
    seconds = time.perf_counter() - started
    print(f"accuracy: {result.metrics['epochs_completed']} epochs in {seconds:.0f} s "
          f"({result.metrics['images_per_second']:.0f} training images/s); best epoch {result.metrics['best_epoch']}",
          flush=True)
    if test:
        print(f"  test split ({test['images']} pictures, {test['faces']} faces): mean IoU {test['mean_iou']:.3f} "
              f"(goal >= 0.7), class accuracy {test['class_accuracy']:.3f}, precision {test['precision']:.3f}, "
              f"recall {test['recall']:.3f}", flush=True)
    return {"seconds": seconds, **result.metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a dataset folder (default: demo data made in a temporary folder)")
    parser.add_argument("--count", type=int, default=300, help="demo pictures to make (default 300)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time limit for part 2 (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for part 2 (default: the backbone's)")
    parser.add_argument("--timed-steps", type=int, default=40, help="timed batches of the default model (default 40)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate for part 2 (default: the backbone's)")
    parser.add_argument("--input-size", type=int, default=None, help="input size for part 2 (default: backbone's)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--streaming", action="store_true", help="also part 3: in-memory against streaming")
    parser.add_argument("--stream-count", type=int, default=160, help="real-face pictures for part 3 (default 160)")
    parser.add_argument("--stream-epochs", type=int, default=1, help="timed epochs per turn in part 3 (default 1)")
    parser.add_argument("--stream-rounds", type=int, default=6,
                        help="turns of each path in part 3, the best kept (default 6: short turns, many of them, "
                             "find the quiet moments of a shared machine)")
    args = parser.parse_args(argv)

    from training.core.device import configure_device

    print(f"device: {configure_device()}, {os.cpu_count()} CPU cores visible", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        data = args.data
        if data is None and not (args.skip_throughput and args.skip_accuracy):
            from training.data.demo import make_demo_data

            started = time.perf_counter()
            data = make_demo_data(Path(tmp) / "demo", count=args.count)
            print(f"demo data: {args.count} pictures 640x480 in {time.perf_counter() - started:.1f} s", flush=True)
        if not args.skip_throughput:
            throughput(data, args.timed_steps)
        if not args.skip_accuracy:
            overrides = {k: v for k, v in (("learning_rate", args.lr), ("input_size", args.input_size)) if v}
            accuracy(data, args.minutes, args.epochs, Path(tmp) / "run", **overrides)
        if args.streaming:
            stream_data = args.data
            if stream_data is None:
                from training.data.realfaces import make_real_demo_data

                started = time.perf_counter()
                stream_data = make_real_demo_data(Path(tmp) / "real", count=args.stream_count)
                print(f"real-face data: {args.stream_count} pictures 640x480 in {time.perf_counter() - started:.1f} s",
                      flush=True)
            streaming(stream_data, args.stream_epochs, args.stream_rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

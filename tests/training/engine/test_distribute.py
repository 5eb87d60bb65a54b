"""Several devices: ``--devices``, the replicas' loss shares, and a real training on a CPU split in two.

TensorFlow can split the CPU into logical devices only before it sets its devices up, so the
training checks run in fresh processes (the pytest process has usually set them up already).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from training.cli import build_parser
from training.core.errors import TrainingError
from training.data.demo import make_demo_data
from training.engine.distribute import devices_argument, make_strategy, parse_devices, read_cluster
from training.engine.settings import TrainConfig, config_from_args, config_to_args

pytestmark = pytest.mark.slow  # trainings: minutes on 2 cores

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
ENV.pop("TF_CONFIG", None)


def run_python(code: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT)


# One SGD step per batch, so the weights move by exactly the learning rate times the gradient (Adam
# would hide a wrong gradient scale). The real FaceTrackerModel with the grid network.
SAME_STEP = """
    import json
    import tensorflow as tf

    from training.engine.distribute import make_strategy, whole_replica_batches
    strategy, note = make_strategy("2")  # before anything else touches TensorFlow's devices
    import contextlib

    import keras
    import numpy as np

    from training.model.build import build_model
    from training.engine.trainer import FaceTrackerModel

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def batch(n):
        x = rng.uniform(0, 255, (n, 32, 32, 3)).astype("float32")
        face = (np.arange(n) % 3 != 2).astype("float32")[:, None]
        corners = np.sort(rng.uniform(0.1, 0.9, (n, 2, 2)), axis=1).astype("float32")  # (n, x|y, lo|hi)
        return x, (face, corners.transpose(0, 2, 1).reshape(n, 4))

    class Batches(keras.utils.PyDataset):
        def __init__(self, items):
            super().__init__()
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, index):
            return self.items[index]

    six, three, one = batch(6), batch(3), batch(1)
    start = build_model("grid", 32, weights=None).get_weights()

    def train(strategy, batches):
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            network = build_model("grid", 32, weights=None)
            network.set_weights(start)
            model = FaceTrackerModel(network)
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
        logs = model.fit(batches, epochs=1, verbose=0, shuffle=False).history
        return network.get_weights(), {k: float(v[-1]) for k, v in logs.items()}

    def gap(a, b):
        return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))

    one_device, one_logs = train(None, Batches([six, three]))
    two_devices, two_logs = train(strategy, Batches([six, three]))  # 3 + 3, then 2 + 1 pictures
    # A last batch of one picture: one replica would get none; it is left out for the epoch.
    short = whole_replica_batches(Batches([six, one]), strategy.num_replicas_in_sync)
    kept = whole_replica_batches(Batches([six, three]), strategy.num_replicas_in_sync)
    print(json.dumps({"note": note, "replicas": strategy.num_replicas_in_sync, "moved": gap(one_device, start),
                      "gap": gap(one_device, two_devices), "one_logs": one_logs, "two_logs": two_logs,
                      "short_batches": len(short), "short_first": bool(np.array_equal(short[0][0], six[0])),
                      "kept_batches": len(kept), "one_device": len(whole_replica_batches(Batches([six, one]), 1)),
                      "devices": [d.name for d in tf.config.list_logical_devices("CPU")]}))
"""


@pytest.fixture(scope="module")
def same_step() -> dict:
    done = run_python(SAME_STEP)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_step_on_two_devices_equals_a_step_on_one(same_step):
    """The localization loss is a sum over the batch and the class loss a mean: with the gradients
    summed over replicas, only the right shares give one device's step (Keras' 1/replicas halves one)."""
    assert same_step["replicas"] == 2 and len(same_step["devices"]) == 2
    assert "split into 2" in same_step["note"]
    assert same_step["moved"] > 1e-3  # the steps did move the weights
    assert same_step["gap"] < 1e-5, same_step
    for name in ("total_loss", "class_loss", "regress_loss"):  # the logs are the global batch's too
        assert same_step["two_logs"][name] == pytest.approx(same_step["one_logs"][name], rel=1e-5), name


def test_a_last_batch_smaller_than_the_devices_is_left_out(same_step):
    """(The command-line training below trains with such a batch left out; kept, the step fails.)"""
    assert same_step["short_batches"] == 1 and same_step["short_first"]
    assert same_step["kept_batches"] == 2 and same_step["one_device"] == 2


def test_devices_values():
    assert parse_devices("all") == "all" and parse_devices(" ALL ") == "all"
    assert parse_devices("3") == 3 and parse_devices(2) == 2
    for bad in ("0", "-1", "two", "", "1.5"):
        with pytest.raises(ValueError, match="devices must be 'all' or a whole number"):
            parse_devices(bad)
    assert devices_argument("All") == "all"
    parser = build_parser()
    args = parser.parse_args(["train", "data", "--devices", "2"])
    config = config_from_args(args)
    assert config.devices == "2"
    assert config_to_args(config) == ["train", "data", "--devices", "2"]
    assert TrainConfig(data="d").devices == "1"  # the default: one device, today's path
    assert "--devices" not in config_to_args(TrainConfig(data="d"))


def test_bad_devices_on_the_command_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "data", "--devices", "0"])
    assert exit_info.value.code == 2
    assert "devices must be 'all' or a whole number of at least 1, got '0'" in capsys.readouterr().err


def test_make_strategy_one_device_and_late_split(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)

    assert make_strategy("1") == (None, "one device")
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the CPU split and its error are for machines without a GPU")
    assert make_strategy("all")[0] is None and "found no GPU" in make_strategy("all")[1]
    tf.config.list_logical_devices("CPU")  # TensorFlow sets its devices up: too late to split now
    with pytest.raises(TrainingError, match="cannot split the CPU into 3 logical devices: TensorFlow has already"):
        make_strategy("3")
    with pytest.raises(TrainingError, match="devices must be"):
        make_strategy("none")


def test_tf_config(monkeypatch):
    two = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    cluster = read_cluster({"TF_CONFIG": json.dumps(two)})
    assert cluster is not None and cluster.workers == 2 and not cluster.is_chief
    two["task"]["index"] = 0
    assert read_cluster({"TF_CONFIG": json.dumps(two)}).is_chief
    with_chief = {"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}
    assert not read_cluster({"TF_CONFIG": json.dumps(with_chief)}).is_chief  # the chief task is the chief
    alone = {"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}
    assert read_cluster({"TF_CONFIG": json.dumps(alone)}) is None and read_cluster({}) is None
    for bad, words in (("{", "not valid JSON"), ('{"cluster": {}}', 'needs a "cluster" object'),
                       (json.dumps({**two, "task": {"type": "worker", "index": 5}}), "is not one of the cluster")):
        with pytest.raises(TrainingError, match=words):
            read_cluster({"TF_CONFIG": bad})
    monkeypatch.setenv("TF_CONFIG", json.dumps(two))
    with pytest.raises(TrainingError, match="--devices 2 with TF_CONFIG"):
        make_strategy("2")


def test_command_line_training_on_two_devices(tmp_path):
    """``facetracker-train train --devices 2`` on a CPU: it trains, and the run folder says on what. 12 training
    pictures in batches of 11: the last batch, one picture, is left out (a replica would get none)."""
    data = make_demo_data(tmp_path / "demo", count=16, width=64, height=48, seed=3)
    shutil.rmtree(data / "test")  # no final test measures: this checks the training
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "training", "train", str(data), "--epochs", "1", "--devices", "2",
                           "--weights", "none", "--input-size", "32", "--batch-size", "11", "--out", str(run_dir)],
                          capture_output=True, text=True, timeout=240, env=ENV, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "split into 2 logical devices" in done.stdout + done.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["devices"] == "2" and "MirroredStrategy" in config["device"]
    assert (run_dir / "best.keras").is_file() and (run_dir / "history.csv").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and metrics["final"]["total_loss"] > 0


def test_a_time_limit_is_refused_for_several_workers(monkeypatch, tmp_path):
    from training.engine.trainer import train

    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    with pytest.raises(TrainingError, match="--time-limit with TF_CONFIG"):
        train(TrainConfig(data=str(tmp_path / "none"), out=str(tmp_path / "run"), time_limit=5.0))
    assert not (tmp_path / "run").exists()

"""Real TensorFlow training on tiny generated data: the run folder, events, resume, stopping, NaN, fallback.

One short run (module fixture) is shared by most checks; the other runs are cut short on purpose.
"""

import csv
import json
import shutil

import keras
import numpy as np
import pytest

from training.core.detection import read_model_metadata
from training.data.augment import make_batches
from training.data.dataset import DataError, load_dataset
from training.data.demo import make_demo_data
from training.engine.trainer import (
    HISTORY_COLUMNS,
    METRIC_NAMES,
    FaceTrackerModel,
    TrainConfig,
    TrainingError,
    next_run_dir,
    train,
)
from training.evaluation.metrics import box_iou
from training.inference.detector import Detector
from training.model.build import build_model

SIZE = 48
EPOCHS = 15
LR = 2e-3
EPOCH_KEYS = {"event", "epoch", "epochs", *METRIC_NAMES, *(f"val_{m}" for m in METRIC_NAMES), "val_f1", "threshold",
              "lr", "seconds"}
BATCH_KEYS = {"event", "epoch", "epochs", "batch", "batches", *METRIC_NAMES, "lr"}


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """120 small pictures: 84 train, 18 val, 18 test."""
    return make_demo_data(tmp_path_factory.mktemp("data") / "demo", count=120, width=160, height=120, seed=1)


@pytest.fixture(scope="module")
def trained(demo_data, tmp_path_factory):
    events: list[dict] = []
    # The tutorial's single-box head and inverse-time decay (the grid default has its own tests below).
    config = TrainConfig(data=str(demo_data), out=str(tmp_path_factory.mktemp("runs") / "run"), epochs=EPOCHS,
                         backbone="tiny", input_size=SIZE, learning_rate=LR, augment=False, seed=0, patience=0)
    result = train(config, on_event=events.append)
    return config, result, events


def val_iou(network: keras.Model, demo_data) -> float:
    """Mean IoU of the predicted boxes over the validation pictures that show a face."""
    batches = make_batches(load_dataset(demo_data).require_split("val"), input_size=SIZE, batch_size=64)
    x, (classes, boxes) = batches[0]
    _, predicted = network.predict(x, verbose=0)
    faces = classes[:, 0] > 0.5
    return float(box_iou(predicted[faces], boxes[faces]).mean())


def read_history(run_dir) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def small_config(demo_data, tmp_path, **overrides) -> TrainConfig:
    values = {"data": str(demo_data), "out": str(tmp_path / "run"), "epochs": 3, "input_size": 48,
              "batch_size": 16, "learning_rate": LR, "augment": False, "backbone": "tiny"}
    values.update(overrides)
    return TrainConfig(**values)


# ------------------------------------------------------------------------------- the shared run


@pytest.mark.slow
def test_training_beats_the_untrained_model(trained, demo_data):
    config, result, _ = trained
    keras.utils.set_random_seed(config.seed)
    untrained = val_iou(build_model("tiny", SIZE), demo_data)
    best = val_iou(keras.models.load_model(result.best_model), demo_data)
    # ~165 steps on 84 pictures: the boxes are far from perfect, but they clearly follow the faces.
    assert best > untrained + 0.2, (untrained, best)
    assert best > 0.3, (untrained, best)


def test_run_folder_contents(trained):
    config, result, _ = trained
    run_dir = result.run_dir
    for name in ("best.keras", "last.keras", "history.csv", "losses.png", "metrics.json", "config.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "train_state" / "state.json").is_file()
    assert not list(run_dir.glob(".*tmp*")), "temporary files left behind"
    assert (run_dir / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.best_model == run_dir / "best.keras" and result.last_model == run_dir / "last.keras"
    assert result.stopped is False


def test_tensorboard_logs_hold_the_losses_and_iou_per_epoch(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config, result, _ = trained
    for split in ("train", "validation"):
        events = EventAccumulator(str(result.run_dir / "tensorboard" / split), size_guidance={"tensors": 0})  # keep all
        events.Reload()
        tags = set(events.Tags()["tensors"])
        assert {"epoch_total_loss", "epoch_class_loss", "epoch_regress_loss", "epoch_iou"} <= tags, (split, tags)
        assert len(events.Tensors("epoch_total_loss")) == config.epochs, split


def test_history_csv_has_every_epoch_and_the_tutorial_lr(trained):
    config, result, _ = trained
    rows = read_history(result.run_dir)
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    for row in rows:  # the rate each epoch ends on: lr0 / (1 + k/3)
        assert float(row["lr"]) == pytest.approx(LR / (1 + int(row["epoch"]) / 3), rel=1e-5)
        assert all(np.isfinite(float(row[k])) for k in HISTORY_COLUMNS)


def test_metrics_and_config_json(trained):
    config, result, _ = trained
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    rows = read_history(result.run_dir)
    ranking = [(float(r["val_f1"]), float(r["val_iou"])) for r in rows]
    assert metrics["epochs_completed"] == EPOCHS and metrics["stop_reason"] == f"finished all {EPOCHS} epochs"
    # Detection quality picks the best epoch: validation F1, then mean IoU (the first of equals).
    assert metrics["best_epoch"] == ranking.index(max(ranking)) + 1
    assert (metrics["best_val_f1"], metrics["best_val_iou"]) == pytest.approx(max(ranking))
    assert metrics["score_threshold"] == pytest.approx(float(rows[metrics["best_epoch"] - 1]["threshold"]))
    assert metrics["final_val_iou"] == pytest.approx(float(rows[-1]["val_iou"]))
    assert metrics["images_per_second"] > 0 and metrics["seconds"] > 0
    assert metrics["device"].startswith("CPU")
    assert metrics["test"]["images"] == 18 and 0 <= metrics["test"]["mean_iou"] <= 1
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["weights_used"] == "none"
    assert saved["config"]["learning_rate"] == LR and saved["config"]["input_size"] == SIZE
    assert saved["config"]["epochs"] == EPOCHS and saved["device"] == metrics["device"]
    assert {"keras", "tensorflow", "python"} <= set(saved["versions"])


def test_best_carries_its_epoch_and_threshold_and_loads_without_custom_objects(trained, demo_data):
    _, result, _ = trained
    best = keras.models.load_model(result.best_model)  # safe mode
    keras.models.load_model(result.last_model)
    assert best.get_layer("class").units == 1 and best.get_layer("box").units == 4
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    best_meta, last_meta = read_model_metadata(result.best_model), read_model_metadata(result.last_model)
    assert best_meta["epoch"] == metrics["best_epoch"] and last_meta["epoch"] == EPOCHS
    assert best_meta["score_threshold"] == pytest.approx(metrics["score_threshold"])
    assert Detector.from_file(result.best_model).threshold == pytest.approx(metrics["score_threshold"])


def test_events_follow_the_contract(trained):
    config, result, events = trained
    json.dumps(events, allow_nan=False)  # the CLI prints them as JSON lines
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    start = events[0]
    assert start["run_dir"] == str(result.run_dir) and start["epochs"] == EPOCHS
    assert start["weights"] == "none" and start["train_images"] == 84 and start["val_images"] == 18
    assert start["resumed_from_epoch"] is None and start["device"].startswith("CPU")
    batches = [e for e in events if e["event"] == "batch"]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(batches) == EPOCHS * start["batches_per_epoch"]
    assert all(set(e) == BATCH_KEYS for e in batches)
    assert [(e["epoch"], e["batch"]) for e in batches[: start["batches_per_epoch"]]] == [
        (1, b) for b in range(1, start["batches_per_epoch"] + 1)
    ]
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
    assert all(set(e) == EPOCH_KEYS for e in epochs), "logs must be exactly the four metrics and val_ versions"
    assert epochs[-1]["val_iou"] == pytest.approx(result.metrics["final_val_iou"])
    assert events[-1]["stopped"] is False and events[-1]["best_model"] == str(result.best_model)


# ------------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_resume_continues_the_learning_rate_and_epochs(trained, tmp_path, demo_data):
    config, result, first_events = trained
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    before = read_history(copy)
    batches_per_epoch = first_events[0]["batches_per_epoch"]
    events: list[dict] = []
    resumed = train(TrainConfig(data=str(demo_data), resume=str(copy), epochs=EPOCHS + 1), on_event=events.append)
    start = events[0]
    assert start["event"] == "start" and start["resumed_from_epoch"] == EPOCHS
    assert resumed.run_dir == copy
    rows = read_history(copy)
    assert len(rows) == EPOCHS + 1 and rows[:EPOCHS] == before
    # The first batch after resuming uses step EPOCHS * batches + 1: the rate goes on, it does not restart.
    first_batch = next(e for e in events if e["event"] == "batch")
    assert first_batch["epoch"] == EPOCHS + 1
    steps = EPOCHS * batches_per_epoch + 1
    assert first_batch["lr"] == pytest.approx(LR / (1 + steps / (3 * batches_per_epoch)), rel=1e-5)
    assert float(rows[-1]["lr"]) == pytest.approx(LR / (1 + (EPOCHS + 1) / 3), rel=1e-5)
    state = json.loads((copy / "train_state" / "state.json").read_text())
    assert state["optimizer_iterations"] == (EPOCHS + 1) * batches_per_epoch
    assert resumed.metrics["epochs_completed"] == EPOCHS + 1


def test_resume_needs_more_epochs_than_done(trained, demo_data):
    _, result, _ = trained
    with pytest.raises(TrainingError, match=f"already trained {EPOCHS} epochs"):
        train(TrainConfig(data=str(demo_data), resume=str(result.run_dir), epochs=EPOCHS))


def test_resume_without_state_is_refused(tmp_path, demo_data):
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(TrainingError, match="cannot resume: not a training run folder"):
        train(TrainConfig(data=str(demo_data), resume=str(tmp_path / "empty_run")))
    (tmp_path / "empty_run" / "config.json").write_text('{"config": {}}')  # a run killed before its first epoch
    with pytest.raises(TrainingError, match="no saved training state"):
        train(TrainConfig(data=str(demo_data), resume=str(tmp_path / "empty_run")))
    with pytest.raises(TrainingError, match="no such run folder"):
        train(TrainConfig(data=str(demo_data), resume=str(tmp_path / "missing")))


# ------------------------------------------------------------------------------- stopping


def _stop_in_second_epoch(stop):
    """A should_stop that fires on the first batch of epoch 2, through ``stop()``."""
    seen = {"epochs": 0}

    def on_event(event):
        if event["event"] == "epoch":
            seen["epochs"] += 1

    def should_stop():
        if seen["epochs"] >= 1:
            return stop()
        return False

    return on_event, should_stop


def _send_ctrl_c():
    # What Python turns a Ctrl-C into, raised where the trainer's callbacks run. (A real SIGINT raised here
    # was lost once in a full test run; real signals are sent by test_cli's Ctrl-C test and test_run_faults.)
    raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("how", ["should_stop", "ctrl_c"])
def test_stopping_keeps_the_last_finished_epoch(how, demo_data, tmp_path):
    on_event, should_stop = _stop_in_second_epoch((lambda: True) if how == "should_stop" else _send_ctrl_c)
    events: list[dict] = []
    result = train(small_config(demo_data, tmp_path, epochs=4),
                   on_event=lambda e: (events.append(e), on_event(e)), should_stop=should_stop)
    assert result.stopped is True and events[-1]["event"] == "end" and events[-1]["stopped"] is True
    assert [int(r["epoch"]) for r in read_history(result.run_dir)] == [1]
    assert result.metrics["epochs_completed"] == 1
    state = json.loads((result.run_dir / "train_state" / "state.json").read_text())
    assert state["epoch"] == 1
    last = keras.models.load_model(result.last_model)
    best = keras.models.load_model(result.best_model)
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype(np.float32)
    np.testing.assert_allclose(last.predict(x, verbose=0)[1], best.predict(x, verbose=0)[1], rtol=1e-6)


# ------------------------------------------------------------------------------- divergence


def test_nan_loss_stops_with_a_clear_error_and_saves_nothing(demo_data, tmp_path):
    # A rate near float32's limit drives the weights to infinity within a few small steps (GroupNorm
    # then divides inf by inf): a real NaN, not a faked one. Batches of 2: 42 steps in an epoch.
    config = small_config(demo_data, tmp_path, learning_rate=1e38, batch_size=2, epochs=2)
    with pytest.raises(TrainingError, match="diverged.*epoch 1, batch .*lower learning rate.*no model was saved"):
        train(config)
    run_dir = tmp_path / "run"
    assert not (run_dir / "last.keras").exists() and not (run_dir / "best.keras").exists()


def test_diverging_after_a_good_epoch_keeps_the_good_checkpoint(trained, demo_data, tmp_path):
    """Resume a finished run with an absurd rate: the new epoch blows up, the old files stay."""
    _, result, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    saved = json.loads((copy / "config.json").read_text())
    saved["config"]["learning_rate"] = 1e38  # as above; the saved settings win when resuming
    saved["config"]["batch_size"] = 2
    (copy / "config.json").write_text(json.dumps(saved))
    last_bytes = (copy / "last.keras").read_bytes()
    history = (copy / "history.csv").read_text()
    with pytest.raises(TrainingError, match=f"epoch {EPOCHS + 1}.*checkpoints of epoch {EPOCHS} are kept"):
        train(TrainConfig(data=str(demo_data), resume=str(copy), epochs=EPOCHS + 2))
    assert (copy / "last.keras").read_bytes() == last_bytes
    assert (copy / "history.csv").read_text() == history
    keras.models.load_model(copy / "last.keras")


# ------------------------------------------------------------------------------- the model's loss


def _batch():
    class_true = np.array([[1], [0]], np.float32)
    box_true = np.array([[0.2, 0.2, 0.6, 0.7], [0, 0, 0, 0]], np.float32)
    return class_true, box_true


@pytest.fixture(scope="module")
def wrapped():
    keras.utils.set_random_seed(0)
    network = build_model("tiny", 32)
    return FaceTrackerModel(network), FaceTrackerModel(network, face_only=False)


def test_tutorial_exact_also_trains_boxes_of_no_face_pictures(wrapped):
    ours, tutorial = wrapped
    class_true, box_true = _batch()
    class_pred = np.array([[0.7], [0.4]], np.float32)
    box_pred = np.array([[0.25, 0.2, 0.55, 0.75], [0.3, 0.3, 0.8, 0.9]], np.float32)
    y, y_pred = (class_true, box_true), [class_pred, box_pred]
    loss_ours = float(ours.compute_loss(y=y, y_pred=y_pred))
    loss_tutorial = float(tutorial.compute_loss(y=y, y_pred=y_pred))
    no_face_box = (0.3**2 + 0.3**2) + (0.5**2 + 0.6**2)  # pulled toward [0, 0, 0, 0]
    assert loss_tutorial - loss_ours == pytest.approx(no_face_box, rel=1e-5)
    y, y_pred = (class_true[:1], box_true[:1]), [class_pred[:1], box_pred[:1]]
    assert float(ours.compute_loss(y=y, y_pred=y_pred)) == pytest.approx(
        float(tutorial.compute_loss(y=y, y_pred=y_pred)), rel=1e-6)  # with faces only, the two agree


def test_metrics_are_exactly_the_four_and_iou_counts_faces_only(wrapped):
    ours, _ = wrapped
    assert [m.name for m in ours.metrics] == list(METRIC_NAMES)
    for metric in ours.metrics:
        metric.reset_state()
    class_true, box_true = _batch()
    perfect_face = np.array([[0.2, 0.2, 0.6, 0.7], [0.9, 0.9, 1.0, 1.0]], np.float32)
    ours.compute_loss(y=(class_true, box_true), y_pred=[np.array([[0.9], [0.1]], np.float32), perfect_face])
    assert float(ours.iou_tracker.result()) == pytest.approx(1.0)  # the no-face row's box is ignored


# ------------------------------------------------------------------------------- early, clear errors


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"backbone": "resnet"}, "unknown backbone"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"weights": "coco"}, "weights must be"),
        ({"weights": "imagenet"}, "no ImageNet weights"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"input_size": 20}, "input_size"),
        ({"input_size": 40}, "multiple of 16"),
        ({"tutorial_exact": True}, "tutorial-exact"),
        ({"patience": -1}, "patience"),
        ({"time_limit": 0}, "time_limit"),
    ],
)
def test_bad_settings_fail_before_any_work(overrides, message, tmp_path):
    with pytest.raises(TrainingError, match=message):
        train(TrainConfig(data=str(tmp_path / "never_read"), **overrides))


def test_empty_validation_split_names_the_folder(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    for picture in (data / "val" / "images").iterdir():
        picture.unlink()
    with pytest.raises(DataError, match="val"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "run")))
    assert not (tmp_path / "run" / "last.keras").exists()


def test_out_folder_with_a_run_is_not_overwritten(trained, demo_data):
    _, result, _ = trained
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(TrainConfig(data=str(demo_data), out=str(result.run_dir)))


def test_default_run_folders_count_up(tmp_path):
    assert next_run_dir(tmp_path / "runs") == tmp_path / "runs" / "train"
    assert next_run_dir(tmp_path / "runs") == tmp_path / "runs" / "train2"
    assert next_run_dir(tmp_path / "runs") == tmp_path / "runs" / "train3"


# ------------------------------------------------------------------------------- offline weights


class _SeenStart(Exception):
    """Raised from on_event at the start event: the run is set up, the (slow) fitting is skipped."""


def test_auto_weights_fall_back_to_scratch_when_offline(monkeypatch, demo_data, tmp_path):
    from keras.src.utils import file_utils  # what keras.applications call to download weights

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    events: list[dict] = []

    def on_event(event):
        events.append(event)
        if event["event"] == "start":
            raise _SeenStart

    with pytest.raises(_SeenStart):
        train(small_config(demo_data, tmp_path, backbone="mobilenetv2", input_size=96, weights="auto"),
              on_event=on_event)
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("ImageNet weights" in m and "from scratch" in m for m in warnings), warnings
    assert events[-1]["event"] == "start" and events[-1]["weights"] == "none"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["weights_used"] == "none"
    # Asked for explicitly, missing weights are an error, not a silent change of plan.
    with pytest.raises(TrainingError, match="ImageNet weights"):
        train(small_config(demo_data, tmp_path / "explicit", backbone="mobilenetv2", input_size=96,
                           weights="imagenet"))


# ------------------------------------------------------------------------------- the grid default


@pytest.mark.slow
def test_grid_learns_stops_early_and_says_why(demo_data, tmp_path):
    """The single-face grid backbone trains its per-cell maps; with patience 2 it stops once F1 stalls, and
    says so. (The default, multiface, is measured by AP50: tests/test_multiface_training.py.)"""
    config = TrainConfig(data=str(demo_data), out=str(tmp_path / "run"), epochs=40, input_size=SIZE,
                         batch_size=16, augment=False, patience=2, backbone="grid")
    events: list[dict] = []
    result = train(config, on_event=events.append)
    rows = read_history(result.run_dir)
    best = result.metrics["best_epoch"]
    assert len(rows) == best + 2 < 40, "stops 2 epochs after the best one"
    assert result.metrics["stop_reason"] == f"early stopping: validation F1 did not improve for 2 epochs (best epoch {best})"
    assert result.stopped is False and "verdict" in result.metrics and "classic finder" in result.metrics["verdict"]
    assert result.metrics["test_classic"]["images"] == result.metrics["test"]["images"] == 18
    first_lr, last_lr = float(rows[0]["lr"]), float(rows[-1]["lr"])
    assert last_lr < first_lr  # Adam with a decaying rate
    keras.utils.set_random_seed(0)
    untrained = val_iou(build_model("grid", SIZE), demo_data)
    network = keras.models.load_model(result.best_model)  # plain safe-mode load: the decoding is in the graph
    assert val_iou(network, demo_data) > untrained + 0.1


@pytest.mark.slow
def test_time_limit_ends_after_the_epoch_that_passes_it(demo_data, tmp_path):
    result = train(small_config(demo_data, tmp_path, backbone="grid", epochs=50, time_limit=0.001))
    assert result.metrics["epochs_completed"] == 1
    assert result.metrics["stop_reason"] == "time limit reached after epoch 1" and result.stopped is False

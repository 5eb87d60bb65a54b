"""Run folders under faults: one owner at a time, one complete checkpoint per epoch, damaged resume files,
runs that learn nothing, and a resume that reproduces a straight run.

Real training (30 small pictures, 32-pixel input, 1-3 epochs), real files, real second processes and
real signals. A fault is injected only where timing a real one would make the test flaky: an
interrupt at a chosen point of an epoch's checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

import training.engine.checkpoints as checkpoints
import training.engine.trainer as trainer
from training.cli import main
from training.data.demo import make_demo_data
from training.engine.trainer import (
    LOCK_FILE,
    STATE_DIR,
    RunFolderLock,
    TrainConfig,
    TrainingError,
    committed_epoch,
    train,
)

pytestmark = pytest.mark.slow  # trainings: minutes on 2 cores

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
CLI_ARGS = ["--input-size", "32", "--batch-size", "8", "--patience", "0"]


class _SeenStart(Exception):
    """Raised from on_event at the start event: the resume is set up, the fitting is skipped."""


def _run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _config(data: Path, out: Path, **overrides) -> TrainConfig:
    values = {"data": str(data), "out": str(out), "epochs": 2, "input_size": 32, "batch_size": 8, "patience": 0}
    values.update(overrides)
    return TrainConfig(**values)


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / STATE_DIR / "state.json").read_text())


def _resume_setup(run_dir: Path, data: Path, epochs: int) -> list[dict]:
    """Resume ``run_dir`` up to the start event; the events seen (warnings, then start)."""
    events: list[dict] = []

    def on_event(event: dict) -> None:
        events.append(event)
        if event["event"] == "start":
            raise _SeenStart

    with pytest.raises(_SeenStart):
        train(TrainConfig(data=str(data), resume=str(run_dir), epochs=epochs), on_event=on_event)
    return events


def _warnings(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["event"] == "warning"]


def _start(events: list[dict]) -> dict:
    return next(e for e in events if e["event"] == "start")


def _predict(model_file: Path) -> np.ndarray:
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    outputs = keras.models.load_model(model_file).predict(x, verbose=0)  # every output, flattened per picture
    return np.concatenate([np.asarray(out).reshape(len(x), -1) for out in outputs], axis=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """30 small synthetic pictures: 21 to train on, in 3 batches of 8. No test split: a finished run then
    skips measuring itself on it (seconds, and nothing these tests look at)."""
    data = make_demo_data(tmp_path_factory.mktemp("faults") / "data", count=30, width=96, height=72, seed=1)
    shutil.rmtree(data / "test")
    return data


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory) -> Path:
    """A straight 2-epoch run of the default recipe (grid backbone, augmentation, shuffling)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(_config(data, run))
    return run


@pytest.fixture
def copy_of_straight(straight, tmp_path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(straight, copy)
    return copy


# ------------------------------------------------------------------------------- one owner at a time


def test_a_second_training_into_the_same_folder_is_refused_naming_the_first(data, tmp_path):
    """While this process trains, a real second `facetracker-train` process aims at the same --out."""
    run = tmp_path / "run"
    second: dict = {}

    def on_event(event: dict) -> None:
        if event["event"] == "epoch" and not second:
            second["done"] = subprocess.run(
                [sys.executable, "-m", "training", str(data), "--out", str(run), "--epochs", "5", *CLI_ARGS,
                 "--progress", "none"], capture_output=True, text=True, timeout=120, env=ENV)

    result = train(_config(data, run, epochs=3), on_event=on_event, should_stop=lambda: bool(second))
    done = second["done"]
    assert done.returncode == 1, done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert str(run) in message and f"pid {os.getpid()}" in message and "another training" in message
    # The first run's folder is its own: its settings, its one finished epoch, and no lock left behind.
    assert json.loads((run / "config.json").read_text())["config"]["epochs"] == 3
    assert result.metrics["epochs_completed"] == 1 and _state(run)["epoch"] == 1
    assert not (run / LOCK_FILE).exists()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_a_killed_training_leaves_a_stale_lock_that_the_next_run_takes_over(data, tmp_path):
    """SIGKILL a real training child mid-run: its lock file stays; resuming takes it over, says so, and goes
    on from the last complete checkpoint."""
    run = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-m", "training", str(data), "--out", str(run), "--epochs", "40", *CLI_ARGS,
         "--progress", "json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    watchdog = threading.Timer(180, child.kill)  # a child that hangs ends the test instead of stalling it
    watchdog.start()
    try:
        for line in child.stdout:
            if '"event": "epoch"' in line:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        watchdog.cancel()
        child.kill()
        child.wait(timeout=60)
        child.stdout.close()
    owner = json.loads((run / LOCK_FILE).read_text())
    assert owner["pid"] == child.pid
    kept = committed_epoch(run)
    assert kept is not None and kept >= 1

    events = _resume_setup(run, data, epochs=kept + 1)
    notes = [m for m in _warnings(events) if "took over" in m]
    assert len(notes) == 1 and f"pid {child.pid}" in notes[0] and "no longer running" in notes[0], _warnings(events)
    assert _start(events)["resumed_from_epoch"] == kept
    assert not (run / LOCK_FILE).exists()
    assert not [p for p in (run / STATE_DIR).iterdir() if p.name.endswith(".partial")]


def test_the_lock_is_held_until_released(tmp_path):
    with RunFolderLock() as first:
        first.acquire(tmp_path)
        with pytest.raises(TrainingError, match=f"another training \\(pid {os.getpid()} on "):
            RunFolderLock().acquire(tmp_path)
    with RunFolderLock() as again:
        assert again.acquire(tmp_path) is None  # released cleanly: nothing to take over


# ------------------------------------------------------------------------------- an epoch is one unit


def test_an_interrupted_checkpoint_keeps_the_previous_epoch_whole_and_resume_reproduces_a_straight_run(
    data, straight, tmp_path, monkeypatch
):
    """Stopped while epoch 2's files are written (its model is on disk, the rest is not): every file says
    epoch 1, nothing half-written is left, and resuming trains epoch 2 exactly as the straight run did."""
    real = checkpoints.write_model_metadata

    def stop_after_the_model(path, metadata):
        real(path, metadata)
        if metadata["epoch"] == 2:
            raise KeyboardInterrupt  # what the CLI's SIGINT/SIGTERM handler raises

    monkeypatch.setattr(checkpoints, "write_model_metadata", stop_after_the_model)
    run = tmp_path / "run"
    result = train(_config(data, run))
    monkeypatch.undo()
    assert result.stopped and result.metrics["epochs_completed"] == 1
    assert committed_epoch(run) == 1 and _state(run)["epoch"] == 1
    assert sorted(p.name for p in (run / STATE_DIR).iterdir()) == ["epoch-000001", "state.json"]
    for name in ("last.keras", "best.keras", "history.csv"):
        assert (run / name).read_bytes() == (run / STATE_DIR / "epoch-000001" / name).read_bytes(), name
    assert len((run / "history.csv").read_text().splitlines()) == 2

    events: list[dict] = []
    train(TrainConfig(data=str(data), resume=str(run)), on_event=events.append)
    assert _start(events)["resumed_from_epoch"] == 1
    resumed, expected = _state(run)["history"], _state(straight)["history"]
    assert [row["epoch"] for row in resumed] == [1, 2]
    for key in ("total_loss", "class_loss", "regress_loss", "val_total_loss"):
        assert resumed[1][key] == pytest.approx(expected[1][key], rel=1e-5), key
    np.testing.assert_allclose(_predict(run / "last.keras"), _predict(straight / "last.keras"), rtol=1e-4, atol=1e-5)


def test_a_stop_between_two_published_files_is_put_right_and_the_cli_names_the_kept_epoch(data, tmp_path, monkeypatch):
    """A real SIGINT after epoch 2 is committed but before its files are all published (and before epoch 2 was
    reported): the folder ends at epoch 2 throughout, and the CLI says so."""
    real, published, fired = checkpoints.publish, checkpoints.PUBLISHED_FILES, []

    def one_file_then_a_signal(run_dir, folder):
        if folder.name != "epoch-000002" or fired:
            return real(run_dir, folder)
        fired.append(True)
        monkeypatch.setattr(checkpoints, "PUBLISHED_FILES", published[:1])  # last.keras only
        try:
            real(run_dir, folder)
        finally:
            monkeypatch.setattr(checkpoints, "PUBLISHED_FILES", published)
        signal.raise_signal(signal.SIGINT)
        return []

    monkeypatch.setattr(checkpoints, "publish", one_file_then_a_signal)  # where each epoch is published
    run = tmp_path / "run"
    code, _, err = _run_main([str(data), "--out", str(run), "--epochs", "3", *CLI_ARGS, "--progress", "none"])
    assert fired and code == 130, err
    assert err.strip().splitlines()[-1].startswith(f"Interrupted. Epoch 2, the last finished one, is kept in {run}")
    checkpoint = run / STATE_DIR / "epoch-000002"
    for name in ("last.keras", "best.keras", "history.csv"):
        assert (run / name).read_bytes() == (checkpoint / name).read_bytes(), name
    assert _state(run)["epoch"] == 2 and len((run / "history.csv").read_text().splitlines()) == 3
    assert json.loads((run / "metrics.json").read_text())["epochs_completed"] == 2


def test_resume_removes_the_debris_of_interrupted_writes_and_says_which_epoch(data, copy_of_straight):
    run = copy_of_straight
    debris = [run / ".last.tmp.keras", run / ".facetracker-best.keras.x1y2.part.keras",
              run / STATE_DIR / ".optimizer.tmp.npz", run / STATE_DIR / ".state.tmp.json"]
    for path in debris:
        path.write_bytes(b"half a file")
    partial = run / STATE_DIR / "epoch-000003.partial"
    partial.mkdir()
    (partial / "last.keras").write_bytes(b"PK half a model")
    events = _resume_setup(run, data, epochs=4)
    assert _start(events)["resumed_from_epoch"] == 2
    assert any("epoch 3 was interrupted" in m and "resuming from epoch 2" in m for m in _warnings(events))
    assert not any(path.exists() for path in debris) and not partial.exists()
    assert not (run / LOCK_FILE).exists()


def test_a_run_saved_before_epoch_folders_still_resumes(data, copy_of_straight):
    run = copy_of_straight
    (run / STATE_DIR / "state.json").unlink()
    shutil.copyfile(run / STATE_DIR / "epoch-000002" / "state.json", run / STATE_DIR / "state.json")
    shutil.copyfile(run / STATE_DIR / "epoch-000002" / "optimizer.npz", run / STATE_DIR / "optimizer.npz")
    for folder in (run / STATE_DIR).glob("epoch-*"):
        shutil.rmtree(folder)
    assert committed_epoch(run) == 2
    assert _start(_resume_setup(run, data, epochs=3))["resumed_from_epoch"] == 2


# ------------------------------------------------------------------------------- damaged resume files


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


DAMAGE = {
    "state {}": ("state.json", lambda p: p.write_text("{}")),
    "state []": ("state.json", lambda p: p.write_text("[]")),
    "state garbage": ("state.json", lambda p: p.write_text("{'epoch': 2,")),
    "optimizer truncated": ("optimizer.npz", _truncate),
    "optimizer random": ("optimizer.npz", _random_bytes),
    "model truncated": ("last.keras", _truncate),
    "model random": ("last.keras", _random_bytes),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_and_says_so(case, data, copy_of_straight):
    run = copy_of_straight
    name, damage = DAMAGE[case]
    damaged = run / STATE_DIR / "epoch-000002" / name
    damage(damaged)
    events = _resume_setup(run, data, epochs=3)
    assert _start(events)["resumed_from_epoch"] == 1
    notes = [m for m in _warnings(events) if str(damaged) in m]
    assert len(notes) == 1 and "resuming from epoch 1" in notes[0] and "File not found" not in notes[0], notes
    assert (run / STATE_DIR / "epoch-000002.damaged" / name).is_file()  # set aside, not destroyed
    assert _state(run)["epoch"] == 1  # the published files are epoch 1's again
    assert (run / "last.keras").read_bytes() == (run / STATE_DIR / "epoch-000001" / "last.keras").read_bytes()


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_only_checkpoint_is_one_clear_line_naming_the_file(case, data, copy_of_straight):
    run = copy_of_straight
    shutil.rmtree(run / STATE_DIR / "epoch-000001")
    name, damage = DAMAGE[case]
    damaged = run / STATE_DIR / "epoch-000002" / name
    damage(damaged)
    code, _, err = _run_main([str(data), "--resume", str(run), "--epochs", "3", "--progress", "none"])
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(damaged) in err and "no older complete checkpoint" in err and "File not found" not in err, err


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda saved: [], "not a run's settings file"),
    (lambda saved: {**saved, "config": {**saved["config"], "batch_size": "eight"}}, "batch_size must be a whole number"),
    (lambda saved: {**saved, "config": {**saved["config"], "backbone": ["grid"]}}, "backbone must be a string"),
])
def test_a_damaged_config_json_is_one_clear_line_naming_it(edit, expected, data, copy_of_straight):
    run = copy_of_straight
    path = run / "config.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    code, _, err = _run_main([str(data), "--resume", str(run), "--epochs", "3", "--progress", "none"])
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and expected in err, err


# ------------------------------------------------------------------------------- runs that learn nothing


def test_a_learning_rate_of_1e30_ends_with_a_clear_error_and_a_non_zero_exit(data, tmp_path):
    """The single-box model's loss stays finite (the losses clip), but its outputs turn NaN: caught, not saved."""
    run = tmp_path / "run"
    code, _, err = _run_main([str(data), "--out", str(run), "--backbone", "tiny", "--lr", "1e30", "--epochs", "2",
                              *CLI_ARGS, "--progress", "none"])
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "diverged" in err and "epoch 1" in err and "lower learning rate" in err, err
    assert committed_epoch(run) is None and not (run / "last.keras").exists()


def test_a_model_that_answers_the_same_for_every_picture_fails_the_run(data, tmp_path):
    """At --lr 100 the single-box model saturates: one face score for every picture, class accuracy exactly the
    majority share. After DEAD_EPOCHS such epochs the run ends with exit 1; its checkpoint is kept."""
    run = tmp_path / "run"
    code, _, err = _run_main([str(data), "--out", str(run), "--backbone", "tiny", "--lr", "100", "--epochs", "10",
                              *CLI_ARGS, "--progress", "none"])
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "not learning" in err and "same face score" in err and "class accuracy" in err, err
    assert f"checkpoints of epoch {trainer.DEAD_EPOCHS} are kept in {run}" in err, err
    assert committed_epoch(run) == trainer.DEAD_EPOCHS and _state(run)["alive"] is False


# ------------------------------------------------------------------------------- extending a run


def test_extending_a_grid_run_warns_that_its_schedule_stretches(data, copy_of_straight):
    """The grid's cosine is planned over the run's length: a run resumed with more epochs than it was started
    with cannot reproduce a straight run of that length, and says so (right after the start event)."""
    events: list[dict] = []

    def on_event(event: dict) -> None:
        events.append(event)
        if event["event"] in ("warning", "batch") and _start_seen(events):
            raise _SeenStart

    with pytest.raises(_SeenStart):
        train(TrainConfig(data=str(data), resume=str(copy_of_straight), epochs=5), on_event=on_event)
    message = events[-1].get("message", "")
    assert "learning-rate schedule" in message and "from 2 to 5 epochs" in message, events[-1]


def _start_seen(events: list[dict]) -> bool:
    return any(e["event"] == "start" for e in events)

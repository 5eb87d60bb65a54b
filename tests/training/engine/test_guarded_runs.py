"""Issue 19, outputs and waits: nothing of the user's deleted, multi-file outputs whole or absent, every
wait stoppable, settings and arguments checked where they enter.

Real folders, real subprocesses killed with real signals, real sockets on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.cli import main
from training.core.errors import TrainingError
from training.core.files import STAGING_MARKER, remove_stale_staging, remove_stale_temporaries, temporary_name

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def dead_pid() -> int:
    """The id of a process that has just ended (not reused within the test)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def users_folder(folder: Path) -> Path:
    """A folder of someone's own files that look like debris to a careless sweep."""
    files = {"notes.tmp": b"my notes", "draft.part": b"half my thesis", ".last.tmp.keras": b"my own file",
             "train_state/.optimizer.tmp.npz": b"mine too", "train_state/.x.tmp.y": b"mine", "model.keras": b"PK"}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


# ------------------------------------------------------------------------------------------ never delete what is not ours


@pytest.mark.parametrize("option", ["--resume", "--out"])
def test_an_ordinary_folder_as_the_run_folder_is_refused_and_left_untouched(tmp_path, option):
    folder = users_folder(tmp_path / "my-folder")
    before = snapshot(folder)
    code, _, err = run_cli([str(tmp_path / "data"), option, str(folder), "--progress", "none"])
    expected = "not a training run folder (no config.json" if option == "--resume" else \
        "holds files and is not a training run folder"
    assert code == 1 and err.count("\n") == 1 and str(folder) in err and expected in err, err
    assert "nothing in it was touched" in err
    assert snapshot(folder) == before  # no run.lock, nothing swept


def test_the_debris_sweep_removes_only_our_marked_files_whose_writer_ended(tmp_path):
    from training.engine.checkpoints import remove_debris

    run = users_folder(tmp_path / "run")
    (run / "config.json").write_text(json.dumps({"config": {"data": "d"}}))
    gone, alive = dead_pid(), os.getpid()
    ours_stale = [run / f".facetracker-last.keras.{gone}-0a1b2c3d.part.keras",
                  run / "train_state" / f".facetracker-state.json.{gone}-0a1b2c3d.part",
                  run / ".facetracker-best.keras.1234abcd.part.keras"]  # an older version's name: no pid
    ours_live = run / f".facetracker-history.csv.{alive}-0a1b2c3d.part"
    for path in [*ours_stale, ours_live]:
        path.write_bytes(b"half")
    remove_debris(run)
    assert not any(p.exists() for p in ours_stale) and ours_live.exists()
    left = snapshot(run)
    # An earlier version's exact temporary names, in a run folder: removed; look-alikes are not.
    assert not (run / ".last.tmp.keras").exists() and not (run / "train_state/.optimizer.tmp.npz").exists()
    for name in ("notes.tmp", "draft.part", "train_state/.x.tmp.y", "model.keras"):
        assert left[name] is not None, name
    (run / "config.json").unlink()  # no longer provably a run: nothing is touched
    stale = run / f".facetracker-x.{gone}-0a1b2c3d.part"
    stale.write_bytes(b"")
    remove_debris(run)
    assert stale.exists()


def test_stale_temporaries_and_staging_folders_are_recognised_by_marker_and_owner(tmp_path):
    gone = dead_pid()
    target = "dataset"
    stale = tmp_path / temporary_name(target).replace(f".{os.getpid()}-", f".{gone}-")
    mine = tmp_path / temporary_name(target)
    unmarked = tmp_path / f".facetracker-{target}.{gone}-0a1b2c3d.part-copy"
    other_host = tmp_path / f".facetracker-{target}.{gone}-1a1b2c3d.part"
    for folder, owner in ((stale, {"pid": gone, "host": socket.gethostname(), "target": target}),
                          (mine, {"pid": os.getpid(), "host": socket.gethostname(), "target": target}),
                          (unmarked, None),
                          (other_host, {"pid": gone, "host": "elsewhere", "target": target})):
        folder.mkdir()
        (folder / "a.jpg").write_bytes(b"x")
        if owner is not None:
            (folder / STAGING_MARKER).write_text(json.dumps(owner))
    assert remove_stale_staging(tmp_path, target) == [stale]
    assert mine.exists() and unmarked.exists() and other_host.exists() and not stale.exists()
    temp = tmp_path / f".facetracker-best.tflite.{gone}-0a1b2c3d.part.tflite"
    temp.write_bytes(b"")
    keep = tmp_path / "best.tflite.part"
    keep.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path, "best.tflite") == [temp] and keep.exists()


# ------------------------------------------------------------------------------------------ whole or absent


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "training", *argv], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _staging(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".facetracker-{name}.") and p.is_dir()]


def test_make_demo_data_killed_half_way_leaves_no_dataset_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "demo"
    process = _start(["make-demo-data", str(out), "--count", "400"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until it has written some pictures into its staging folder
        staged = _staging(tmp_path, "demo")
        if staged and len(list(staged[0].rglob("*.jpg"))) >= 20:
            break
        time.sleep(0.05)
    process.kill()
    process.wait(10)
    assert _staging(tmp_path, "demo") and not out.exists()  # half a dataset never passes for a whole one
    code, out_text, err = run_cli(["make-demo-data", str(out), "--count", "12"])
    assert code == 0, err
    assert len(list(out.rglob("*.jpg"))) == 12 and not _staging(tmp_path, "demo")
    assert not list(out.rglob(STAGING_MARKER))


def test_convert_cleans_a_dead_conversions_staging_folder_and_refuses_a_used_destination(tmp_path):
    from training.data.demo import make_demo_data

    src = make_demo_data(tmp_path / "src", count=8, width=64, height=48)
    gone = dead_pid()
    stale = tmp_path / f".facetracker-out.{gone}-0a1b2c3d.part"
    stale.mkdir()
    (stale / STAGING_MARKER).write_text(json.dumps({"pid": gone, "host": socket.gethostname(), "target": "out"}))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--to", "coco"])
    assert code == 0, err
    assert not stale.exists() and (tmp_path / "out" / "annotations").is_dir()


# ------------------------------------------------------------------------------------------ settings where they enter


@pytest.mark.parametrize(("value", "message"), [
    ("99999999999999999999", "devices must be 'all' or at most 1024, got 99999999999999999999: no machine has that"),
    ("\u00b2", "devices must be 'all' or a whole number of at least 1, got '\u00b2'"),
    ("0", "devices must be 'all' or a whole number of at least 1, got '0'"),
])
def test_odd_devices_values_are_one_line(tmp_path, value, message):
    code, _, err = run_cli([str(tmp_path), "--devices", value])
    assert code == 2 and "Traceback" not in err and message in err.strip().splitlines()[-1], err  # argparse's usage, then one line


def test_a_batch_smaller_than_the_devices_is_refused_before_tensorflow():
    from training.engine.distribute import make_strategy

    with pytest.raises(TrainingError, match=r"--batch-size 1 with --devices 2: each device needs at least one picture"):
        make_strategy("2", batch_size=1)


def _tf_config(workers: list, index=0, task_type: str = "worker") -> str:
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ("[" * 10_000 + "]" * 10_000, "TF_CONFIG is not valid JSON (its JSON is nested too deeply"),
    (_tf_config(["10.0.0.1", "10.0.0.2:12345"]), "cluster worker 0: an address must be \"host:port\", got '10.0.0.1'"),
    (_tf_config([12345, "10.0.0.2:12345"]), "cluster worker 0: an address must be a \"host:port\" string, got 12345"),
    (_tf_config(["a:1", "b:99999"]), "the port of 'b:99999' must be 1 to 65535"),
    (_tf_config(["a:1", "a:1"]), "a:1 is listed twice"),
    (_tf_config(["a:1", "b:2"], index=2), "task index 2 is not one of the cluster's 2 worker entries (0 to 1)"),
    (_tf_config(["a:1", "b:2"], index=True), "task index True is not one of"),
    (_tf_config(["a:1", "b:2"], task_type="ps"), "task type must be \"worker\""),
])
def test_tf_config_is_checked_before_tensorflow_sees_it(text, message):
    from training.engine.distribute import read_cluster

    with pytest.raises(TrainingError) as caught:
        read_cluster({"TF_CONFIG": text})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_valid_tf_config_names_every_member():
    from training.engine.distribute import read_cluster

    cluster = read_cluster({"TF_CONFIG": _tf_config(["10.0.0.1:12345", "[::1]:23456"], index=1)})
    assert cluster is not None and not cluster.is_chief and str(cluster.me) == "worker 1 ([::1]:23456)"
    assert (cluster.me.host, cluster.me.port) == ("::1", 23456)


WAITER = """
import sys
from training.cli import _InterruptWatch
from training.engine.distribute import read_cluster, wait_for_workers
with _InterruptWatch():
    try:
        wait_for_workers(read_cluster(), lambda message: print(message, flush=True), poll_s=0.1)
        print("all here", flush=True)
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}", flush=True)
        sys.exit(130)
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _waiter(workers: list[str], index: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WAITER], cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**ENV, "TF_CONFIG": _tf_config(workers, index)})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_waiting_for_one_that_never_comes_stops_on_a_signal_naming_it(signum):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    process = _waiter(workers, 0)
    line = process.stdout.readline()  # the note after a few seconds: whom it waits for
    assert line.startswith(f"waiting for worker 1 ({workers[1]}) to join"), line + process.stderr.read()
    started = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=10)
    assert time.monotonic() - started < 10 and process.returncode == 130, err
    assert f"interrupted: waiting for worker 1 ({workers[1]}) to join the cluster (TF_CONFIG)" in out


def test_workers_that_start_apart_find_each_other():
    workers = [f"127.0.0.1:{port}" for port in _free_ports(3)]
    first = _waiter(workers, 0)
    time.sleep(1.0)
    second = _waiter(workers, 2)
    time.sleep(1.0)
    third = _waiter(workers, 1)
    for process in (first, second, third):
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0 and out.strip().endswith("all here"), out + err


@pytest.mark.slow
def test_training_that_waits_for_a_missing_worker_ends_on_sigterm_within_10_s(tmp_path):
    """The whole command line, TensorFlow loaded: the wait happens before TensorFlow's own (which swallows
    SIGTERM), so the training ends, names the missing worker, and leaves no run folder behind."""
    from training.data.demo import make_demo_data

    data = make_demo_data(tmp_path / "data", count=12, width=64, height=48)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    process = subprocess.Popen([sys.executable, "-m", "training", str(data), "--out", str(tmp_path / "run"),
                                "--epochs", "1", "--batch-size", "2"], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**ENV, "TF_CONFIG": _tf_config(workers, 0)})
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "waiting for worker 1" in line or not line:
            break
    assert any(f"waiting for worker 1 ({workers[1]})" in line for line in lines), "".join(lines)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    assert time.monotonic() - started < 10 and process.returncode == 130, err
    assert f"It was waiting for worker 1 ({workers[1]}) to join the cluster (TF_CONFIG)." in err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------ the app


BAD_SAVED = ["\u00b2", "99999999999", "99999999999999999999999", "1e999", "nan", "a, b", "@Variant(garbage)", "x" * 5000]
KEYS = ["model/last", "dataset/folder", "detect/source", "detect/threshold", "detect/smoothing", "detect/loop",
        "detect/snapshot_folder", "detect/recording_folder", "window/geometry", "window/tab", "collect/count",
        "collect/interval", "collect/countdown", "train/last_run", "train/epochs", "train/batch_size",
        "train/backbone", "train/input_size", "train/learning_rate", "train/weights", "train/augment",
        "train/tutorial_exact"]


@pytest.mark.parametrize("value", BAD_SAVED)
def test_bad_saved_settings_are_dropped_with_a_note_never_a_crash(qtbot, tmp_path, value, capsys):
    from desktop import settings as keys
    from desktop.app import MainWindow
    from desktop.settings import make_settings

    ini = tmp_path / "settings.ini"
    sections: dict[str, list[str]] = {}
    for key in KEYS:
        section, name = key.split("/")
        sections.setdefault(section, []).append(f"{name}={value}")
    ini.write_text("".join(f"[{s}]\n" + "\n".join(v) + "\n" for s, v in sections.items()), encoding="utf-8")
    keys.dropped.clear()
    window = MainWindow(make_settings(ini), realtime=False)
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.wait(50)
    window.close()
    if value in ("99999999999", "99999999999999999999999", "1e999", "nan"):
        assert any("window/tab" in note or "collect/count" in note for note in keys.dropped), keys.dropped
        assert "dropped" in capsys.readouterr().err


def test_a_unicode_digit_as_the_source_is_a_missing_file_and_is_not_remembered(qtbot, tmp_path):
    from desktop import settings as keys
    from desktop.app import MainWindow, parse_args
    from desktop.settings import make_settings

    settings = make_settings(tmp_path / "settings.ini")
    settings.setValue(keys.SOURCE, "0")
    window = MainWindow(settings, source=parse_args(["--source", "\u00b2"]).source, realtime=False)
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: "\u00b2: no such file or folder" in window.detect_tab.source_banner.text(), timeout=5000)
    window.close()
    assert make_settings(tmp_path / "settings.ini").value(keys.SOURCE) == "0"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_the_window_closes_while_a_model_load_is_stuck_in_a_read(qtbot, tmp_path, monkeypatch):
    """A read that never returns (here a plain open of a named pipe, as a stalled network disk would do) holds
    only its worker thread: closing the window waits a few seconds for it, then leaves it."""
    from desktop import workers
    from desktop.app import MainWindow
    from desktop.settings import make_settings

    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)

    def stuck(path, **_options):  # the runtime and progress options of the real loader
        if path is None:
            raise RuntimeError("no classic finder needed here")
        with open(fifo, "rb") as handle:  # blocks until a writer comes
            handle.read()
        raise RuntimeError("released")

    monkeypatch.setattr(workers, "load_detector", stuck)
    window = MainWindow(make_settings(tmp_path / "settings.ini"), realtime=False)
    qtbot.addWidget(window)
    window.show()
    window.detect_tab.load_model(str(fifo))
    qtbot.wait(300)
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < workers.SHUTDOWN_WAIT_MS / 1000 + 3
    assert workers.abandoned_workers() == 1
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the thread go, so the test process ends cleanly
    qtbot.waitUntil(lambda: workers.abandoned_workers() == 0, timeout=5000)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_run_lock_that_is_a_pipe_or_a_link_is_refused_and_never_written_through(tmp_path):
    from training.engine.checkpoints import RunFolderLock

    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "run.lock")
    with pytest.raises(TrainingError, match="run.lock: is a named pipe"):
        RunFolderLock().acquire(run)
    (run / "run.lock").unlink()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (run / "run.lock").symlink_to(precious)
    with pytest.raises(TrainingError, match="run.lock: is a link, not the run's lock file"):
        RunFolderLock().acquire(run)
    assert precious.read_text() == "keep me"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_as_the_settings_file_is_one_line_not_a_hang(tmp_path):
    fifo = tmp_path / "settings.ini"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "desktop", "--settings", str(fifo), "--quit-after", "1"], cwd=REPO,
                          env={**ENV, "QT_QPA_PLATFORM": "offscreen"}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == \
        f"facetracker: error: {fifo}: is a named pipe (FIFO), not a settings file"
